"""QSuite operator console (NiceGUI)."""
