"""The analysis process: streaming indicators and signals per (symbol, interval)."""

from engine.analysis.service import AnalysisService

__all__ = ["AnalysisService"]
