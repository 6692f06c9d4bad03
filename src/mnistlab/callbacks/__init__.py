from mnistlab.callbacks.run_config import RunConfigInCheckpoint

__all__ = ["RunConfigInCheckpoint"]
