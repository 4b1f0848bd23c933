"""hwnas: hardware-aware neural architecture search on measured GPU latency."""

__version__ = "0.1.0"
