"""The torch-free core beneath every other layer: errors, ranks, a run's results and run dir, file writes,
config checks and resolvers, and the entry points' one-line errors. Nothing here imports torch or Lightning
(tests/core/test_layers.py), so that the entry points start without them."""
