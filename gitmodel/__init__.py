"""git-model: version machine-learning checkpoints in Git."""

__version__ = "0.1.0"
