"""Execution algorithms: the interface (:mod:`engine.algos.base`), the registry, the
built-in algorithms and the engine that works parent orders in the execution process."""

from engine.algos import iceberg, pov, sniper, twap, vwap  # noqa: F401  (register the built-ins)
