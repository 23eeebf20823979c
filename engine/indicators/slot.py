"""One indicator inside an :class:`~engine.indicators.bank.IndicatorBank`: its open
stream, or the bars it collects until it has enough to open one; and the row-masking
that gives non-finite bars the same meaning in batch as in streaming."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.indicators.base import INPUTS, Array, Indicator, IndicatorStream, InsufficientHistory


class Slot:
    """One indicator in a bank: its stream, or the bars it collects until it opens."""

    def __init__(self, indicator: Indicator, on_open: Callable[[], None]) -> None:
        self.indicator = indicator
        self.on_open = on_open
        """Called when the stream opens during streaming (the bank rebuilds its step)."""
        self.key = indicator.key
        self.outputs = indicator.outputs
        self.fields = tuple(INPUTS.index(i) + 1 for i in indicator.inputs)  # Bar index
        self.need = indicator.warmup + 1
        self.limit = 4 * self.need + 64  # give up opening after this many bars
        self.stream: IndicatorStream | None = None
        self.buffer: list[list[float]] = [[] for _ in self.fields]
        nan = float("nan")
        self.nan: Any = nan if len(self.outputs) == 1 else (nan,) * len(self.outputs)

    @property
    def update_fn(self) -> Callable[..., Any]:
        return self.stream.update if self.stream is not None else self.collect

    @property
    def peek_fn(self) -> Callable[..., Any]:
        return self.stream.peek if self.stream is not None else self.peek_warming

    def reset(self) -> None:
        self.stream = None
        self.buffer = [[] for _ in self.fields]

    def warm(self, columns: tuple[Array, ...], fill: bool) -> tuple[Array, ...] | None:
        """Open on the finite rows of ``columns``; the batch outputs over them if
        ``fill`` (NaN at non-finite rows)."""
        self.reset()
        n = len(columns[0])
        mask = finite_rows(columns)
        rows = columns if mask is None else tuple(c[mask] for c in columns)
        out: tuple[Array, ...] | None = None
        if len(rows[0]) >= self.need:
            try:
                if fill:
                    self.stream, out = self.indicator.stream_and_fill(*rows)
                else:
                    self.stream = self.indicator.stream(*rows)
            except InsufficientHistory:
                pass
        if self.stream is None:
            self.buffer = [c.tolist() for c in rows]
            if fill:
                out = batch_rows(self.indicator, rows)
        if out is not None and mask is not None:
            out = scatter(out, mask, n)
        return out

    def collect(self, *values: float) -> Any:
        """Streaming during warm-up: keep the bar; open once there are enough."""
        for column, value in zip(self.buffer, values, strict=True):
            column.append(value)
        count = len(self.buffer[0])
        if count < self.need:
            return self.nan
        try:
            self.stream = self.indicator.stream(
                *(np.array(c, dtype=np.float64) for c in self.buffer)
            )
        except InsufficientHistory:
            if count >= self.limit:
                raise RuntimeError(f"stream did not open after {count} bars") from None
            return self.nan
        self.buffer = []
        self.on_open()
        return self.stream.value

    def peek_warming(self, *values: float) -> Any:
        """A forming bar during warm-up: the value it would open with, else NaN."""
        if len(self.buffer[0]) + 1 < self.need:
            return self.nan
        columns = (
            np.array([*c, v], dtype=np.float64) for c, v in zip(self.buffer, values, strict=True)
        )
        try:
            return self.indicator.stream(*columns).value
        except InsufficientHistory:
            return self.nan

    def pack(self, value: Any) -> dict[str, float]:
        if len(self.outputs) == 1:
            return {self.outputs[0]: value}
        return dict(zip(self.outputs, value, strict=True))


def finite_rows(columns: tuple[Array, ...]) -> Any:
    """None when every row is finite (the common case, checked with one sum per
    column), else the boolean mask of finite rows."""
    if all(math.isfinite(c.sum()) for c in columns):
        return None
    mask = np.logical_and.reduce([np.isfinite(c) for c in columns])
    return None if mask.all() else mask


def batch_rows(indicator: Indicator, rows: tuple[Array, ...]) -> tuple[Array, ...]:
    if len(rows[0]) == 0:
        return tuple(np.empty(0) for _ in indicator.outputs)
    return indicator.batch(*rows)


def scatter(arrays: tuple[Array, ...], mask: Any, n: int) -> tuple[Array, ...]:
    out = []
    for a in arrays:
        full = np.full(n, np.nan)
        full[mask] = a
        out.append(full)
    return tuple(out)
