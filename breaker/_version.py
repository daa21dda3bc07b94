"""The package's version, in one place (heartbeats report it; ``vix-breaker --version`` prints it)."""

__version__ = "0.1.0"
