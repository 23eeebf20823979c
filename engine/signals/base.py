"""The signal-rule interface (version :data:`INTERFACE_VERSION`).

A rule turns per-bar indicator values into trading signals. It never computes an
indicator: it declares what it needs in :attr:`SignalRule.required`, a mapping of its own
input names to :class:`IndicatorSpec` (indicator, parameters, output, in TA-Lib's
spelling), and the analysis process feeds it one :class:`RuleInput` per closed bar with
the current *and previous* bar's values of exactly those outputs (NaN while an indicator
warms up). The rule answers with zero or more :class:`RuleSignal` (kind, strength,
details); :class:`~engine.signals.engine.SignalEngine` turns them into
:class:`~engine.bus.events.SignalRaised` events stamped with the bar.

Contract for rule authors (built-in rules and plugins alike):

- ``on_bar`` is called once per closed bar, in time order; any state a rule keeps is
  O(its lookback), and :meth:`SignalRule.state` returns it as plain JSON-able data
  (dicts, lists, str, int, float, None; never NaN) that :meth:`SignalRule.restore` takes
  back, so a restarted process continues exactly where the snapshot was taken.
- A "cross" needs the previous and current values to be finite: NaN never fires.
- At most one signal per kind per bar; the signal belongs to the bar of ``ctx.ts``.
- Parameters are a frozen :class:`RuleParams` struct; invalid values raise
  :class:`RuleParamsError` whose message starts with the rule name, e.g.
  ``"ma_cross: fast (200) must be < slow (50)"``.
- Exceptions are allowed to escape ``on_bar``: the engine disables the rule for that
  symbol and records why (a failing rule never stops the others).

Interface versions: 1 — this module. A rule states the version it was written for in
``INTERFACE_VERSION``; the registry refuses rules of another version.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar, cast

import msgspec

from engine.errors import QSuiteError

#: The version of this interface; bumped when a change breaks existing rules.
INTERFACE_VERSION = 1

ParamValue = int | float | str
#: The name of the output of a single-output indicator (``rsi``, ``sma``, ``ema`` …).
SINGLE_OUTPUT = "value"


class RuleParamsError(QSuiteError, ValueError):
    """Invalid parameters of a signal rule; the message names the rule and the field."""


class IndicatorSpec(NamedTuple):
    """One output of one indicator instance, e.g. ``rsi(timeperiod=14).value``.

    Names and parameters are TA-Lib's, lower case, with TA-Lib's defaults left out
    (``rsi``/``sma``/``ema`` with ``timeperiod``; ``macd`` with ``fastperiod, slowperiod,
    signalperiod`` → ``macd, macdsignal, macdhist``; ``bbands`` with ``timeperiod, nbdevup,
    nbdevdn`` → ``upperband, middleband, lowerband``). Output names are TA-Lib's for
    indicators with several outputs; a single output is called :data:`SINGLE_OUTPUT`
    (``value``, as in the ``indicator_values`` table; TA-Lib calls it ``real``). Build with
    :meth:`of`; the parameters are kept sorted so equal specs compare and hash equal.
    """

    indicator: str
    params: tuple[tuple[str, ParamValue], ...]
    output: str

    @classmethod
    def of(cls, indicator: str, params: Mapping[str, ParamValue], output: str) -> IndicatorSpec:
        return cls(indicator, tuple(sorted(params.items())), output)

    @property
    def params_dict(self) -> dict[str, ParamValue]:
        return dict(self.params)

    @property
    def params_key(self) -> str:
        """Canonical parameters, ``k=v`` sorted and joined by ``,`` (as in the
        ``indicator_values`` table), e.g. ``timeperiod=14``."""
        return ",".join(f"{k}={v}" for k, v in self.params)

    @property
    def key(self) -> str:
        """A readable unique key, e.g. ``rsi(timeperiod=14).value``."""
        return f"{self.indicator}({self.params_key}).{self.output}"


class RuleInput(msgspec.Struct, frozen=True, kw_only=True):
    """What a rule sees at one closed bar.

    ``current`` and ``previous`` map the rule's input names (the keys of its
    :attr:`SignalRule.required`) to the indicator values at this bar and at the bar
    before (NaN when warming up, missing, or when there is no previous bar).
    ``prev_close`` is the previous bar's close (NaN at the first bar).
    """

    symbol: str
    interval: str
    ts: int
    """Open time of the bar, UTC ns."""
    open: float
    high: float
    low: float
    close: float
    volume: float
    prev_close: float = math.nan
    current: Mapping[str, float] = {}
    previous: Mapping[str, float] = {}

    def now(self, name: str) -> float:
        """Current value of input ``name`` (NaN if absent)."""
        return self.current.get(name, math.nan)

    def before(self, name: str) -> float:
        """Previous bar's value of input ``name`` (NaN if absent)."""
        return self.previous.get(name, math.nan)


class RuleSignal(msgspec.Struct, frozen=True, kw_only=True):
    """A signal as a rule reports it; the engine adds symbol, interval, bar time and rule."""

    kind: str
    """1 to 32 characters, e.g. ``oversold_entry``."""
    strength: float
    """0 … 1 by the rule's documented measure."""
    details: dict[str, float | str] = {}


class RuleParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every rule's parameter struct.

    Field constraints go into ``Annotated[…, msgspec.Meta(ge=…, description=…)]`` (they
    are checked by :func:`parse_params` and listed in the schema); checks across fields go
    into ``__post_init__`` and raise ``ValueError`` with a message naming the fields, e.g.
    ``"fast (200) must be < slow (50)"``.
    """


P = TypeVar("P", bound=RuleParams)


def parse_params(
    rule: str, params_type: type[P], params: RuleParams | None, overrides: Mapping[str, Any]
) -> P:
    """``params`` (or the defaults) with ``overrides`` applied, validated.

    Values may be strings (from a CLI or a TOML file): ``"30"`` is accepted for a number.
    Raises :class:`RuleParamsError` ``"<rule>: <what is wrong>"``.
    """
    raw: dict[str, Any] = msgspec.to_builtins(params) if params is not None else {}
    raw.update(overrides)
    try:
        return msgspec.convert(raw, params_type, strict=False)
    except msgspec.ValidationError as exc:
        raise RuleParamsError(f"{rule}: {exc}") from None


class SignalRule(ABC, Generic[P]):
    """A signal rule: subclass, set the class attributes and implement :meth:`on_bar`.

    Construct with a params struct and/or keyword overrides::

        RsiCrossRule(lower=25)  or  RsiCrossRule(RsiCrossParams(lower=25))
    """

    INTERFACE_VERSION: ClassVar[int] = INTERFACE_VERSION
    name: ClassVar[str]
    """Registry name; also the ``rule`` of every signal (``[a-z0-9_]``, ≤ 64 chars)."""
    version: ClassVar[int] = 1
    """Version of the rule's logic and state; a snapshot of another version is discarded."""
    params_type: ClassVar[type[RuleParams]]
    kinds: ClassVar[tuple[str, ...]] = ()
    """Every ``kind`` the rule can raise (for listings and chart legends)."""
    description: ClassVar[str] = ""

    def __init__(self, params: P | None = None, /, **overrides: Any) -> None:
        self.params: P = cast(P, parse_params(self.name, self.params_type, params, overrides))

    @property
    @abstractmethod
    def required(self) -> Mapping[str, IndicatorSpec]:
        """Input name → the indicator output the rule needs at every bar."""

    @property
    @abstractmethod
    def indicator(self) -> str:
        """The ``indicator`` label of its signals, e.g. ``rsi_14``, ``macd_12_26_9``."""

    @abstractmethod
    def on_bar(self, ctx: RuleInput) -> list[RuleSignal]:
        """Signals at the bar of ``ctx`` (usually none)."""

    def state(self) -> dict[str, Any]:
        """The rule's running state as JSON-able data (stateless rules: ``{}``)."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state` of the same rule version and
        parameters); ``{}`` means "start fresh"."""

    def reset(self) -> None:
        """Forget all running state, as if no bar had been seen."""
        self.restore({})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


def crossed_above(prev_a: float, prev_b: float, a: float, b: float) -> bool:
    """``a`` crossed above ``b`` between two bars: ``prev_a <= prev_b`` and ``a > b``, all
    four finite."""
    return finite(prev_a, prev_b, a, b) and prev_a <= prev_b and a > b


def crossed_below(prev_a: float, prev_b: float, a: float, b: float) -> bool:
    """``a`` crossed below ``b``: ``prev_a >= prev_b`` and ``a < b``, all four finite."""
    return finite(prev_a, prev_b, a, b) and prev_a >= prev_b and a < b


def check_fast_slow(fast: int, slow: int) -> None:
    """The usual cross-field check of two periods (for ``__post_init__``)."""
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be < slow ({slow})")


def finite(*values: float) -> bool:
    """All ``values`` are finite (no NaN, no infinity)."""
    return all(math.isfinite(v) for v in values)


def clamp01(value: float) -> float:
    """``value`` limited to 0 … 1 (NaN → 0)."""
    return 0.0 if not value > 0.0 else min(1.0, value)
