"""Composition of the analysis process (imported only by it: TA-Lib loads here)."""

from __future__ import annotations

from loguru import logger

from app import database
from app.settings import Settings
from engine.analysis import AnalysisService
from engine.indicators.plugins import load_plugins
from engine.indicators.registry import default_registry


def build_analysis(settings: Settings) -> AnalysisService:
    registry = default_registry()
    report = load_plugins(registry, settings.analysis.plugins)  # logs its own failures
    if report.loaded:
        logger.info("Indicator plugins loaded: {}", ", ".join(report.loaded))
    return AnalysisService(
        settings.analysis, engine=database.open_database(settings), registry=registry
    )
