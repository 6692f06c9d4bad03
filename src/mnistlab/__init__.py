"""Lightning + Hydra experiments for MNIST-style image classification."""
