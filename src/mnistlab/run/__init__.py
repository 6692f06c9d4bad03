"""What a run is built from and kept by, beneath the commands: its parts (build.py), its resume, its
interruptions, and a trained model loaded for use."""
