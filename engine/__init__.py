"""QSuite engine: the event bus, the control plane and the trading services."""
