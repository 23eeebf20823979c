"""Prometheus endpoint of a process: every ``qsuite_*`` cell of :mod:`engine.stats`.

Cells are read at scrape time, so hot paths only touch plain attributes. The endpoint
listens on ``metrics.host`` (loopback by default: not open to the world).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from engine.errors import OperationalError
from engine.stats import StatsRegistry


class StatsCollector:
    """Exposes a :class:`StatsRegistry` as Prometheus metric families."""

    def __init__(self, stats: StatsRegistry) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        for family in self._stats.families():
            cells = list(family.cells.values())
            label_names = [k for k, _ in cells[0].labels] if cells else []
            metric: Any
            if family.kind == "counter":
                # prometheus_client appends _total itself
                metric = CounterMetricFamily(
                    family.name[: -len("_total")], family.help, labels=label_names
                )
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=label_names)
            for cell in cells:
                metric.add_metric([v for _, v in cell.labels], cell.value)
            yield metric


def start_metrics_server(
    stats: StatsRegistry, host: str, port: int, setting: str
) -> tuple[Any, int]:
    """Serve /metrics; returns (server, bound port). ``setting`` names the port key for errors."""
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats))
    registry.register(ProcessCollector(namespace="qsuite", registry=None))
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise OperationalError(
            f"Cannot serve metrics on {host}:{port}: {exc}. Free the port or change `{setting}`."
        ) from None
    return server, int(server.server_port)
