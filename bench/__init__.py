"""bench: a pose-robust face recognition benchmark (DREAM and friends)."""

__version__ = "0.1.0"
