"""Storage: the SQLAlchemy models of every table and the bulk bar store.

Engines, sessions and migrations are created by the composition root
(:mod:`app.database`); this package only describes tables and how to read and write
them.
"""

from engine.persistence.bars import (
    BAR_COLUMNS,
    BarRow,
    count_bars,
    latest_ts,
    load_bars,
    upsert_bars,
)
from engine.persistence.models import Base

__all__ = [
    "BAR_COLUMNS",
    "BarRow",
    "Base",
    "count_bars",
    "latest_ts",
    "load_bars",
    "upsert_bars",
]
