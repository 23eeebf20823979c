"""Hot-path counters and gauges, exported to Prometheus only when scraped.

Loops increment plain Python attributes (``cell.value += 1`` costs tens of
nanoseconds); :mod:`app.metrics` turns every registered cell into a ``qsuite_*``
metric family at scrape time. Tests and the health heartbeat read the same cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class Cell:
    """One labelled time series: a counter (only goes up) or a gauge."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value


@dataclass(slots=True)
class Family:
    name: str
    help: str
    kind: str  # "counter" or "gauge"
    cells: dict[tuple[tuple[str, str], ...], Cell] = field(default_factory=dict)


class StatsRegistry:
    """All the cells of one process."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}

    def _cell(self, kind: str, name: str, help: str, labels: dict[str, str]) -> Cell:
        if not name.startswith("qsuite_"):
            raise ValueError(f"metric {name!r} must be named qsuite_*")
        if kind == "counter" and not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = Family(name, help, kind)
        elif family.kind != kind:
            raise ValueError(f"metric {name!r} is already a {family.kind}")
        key = tuple(sorted(labels.items()))
        cell = family.cells.get(key)
        if cell is None:
            cell = family.cells[key] = Cell(name, key)
        return cell

    def counter(self, name: str, help: str, **labels: str) -> Cell:
        return self._cell("counter", name, help, labels)

    def gauge(self, name: str, help: str, **labels: str) -> Cell:
        return self._cell("gauge", name, help, labels)

    def families(self) -> Iterator[Family]:
        return iter(list(self._families.values()))

    def snapshot(self) -> dict[str, float]:
        """Flat ``name{k=v}`` → value map (for heartbeats and ``GetStatus``)."""
        out: dict[str, float] = {}
        for family in self.families():
            for cell in list(family.cells.values()):
                label = ",".join(f"{k}={v}" for k, v in cell.labels)
                out[f"{family.name}{{{label}}}" if label else family.name] = cell.value
        return out

    def total(self, name: str) -> float:
        family = self._families.get(name)
        return sum(c.value for c in family.cells.values()) if family else 0.0


#: The registry of this process. Components take a registry in their constructor and
#: default to this one; tests pass their own.
STATS = StatsRegistry()
