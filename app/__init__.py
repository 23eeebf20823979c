"""QSuite composition root: CLI, settings, supervisor, logging, metrics, health, client."""

__version__ = "0.1.0"
