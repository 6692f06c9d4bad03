"""One flow per entry point: train, evaluate, predict, export, serve."""
