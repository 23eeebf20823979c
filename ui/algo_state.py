"""Bounded view state of the Algorithms page: parent orders and how they progress, the
kinds of algorithm with their parameter fields, and recent strategy triggers.

Fed by the bridge's one bus subscription (``exec.algo.*``: ``AlgoStateChanged``,
``AlgoProgress``; ``exec.trigger.*``: ``AlgorithmTriggered``) and completed by
:meth:`AlgoBoard.sync` from the control plane (Clone pattern): ``ListAlgoKinds`` and
``ListAlgos`` once, and ``ListAlgos`` again when the bus names a parent this console does
not know (started elsewhere, or before the tab). A reply never overrides what the bus
said about a parent while the request was out (:meth:`AlgoBoard.tracking`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from engine.bus.commands import Command, Result
from engine.bus.commands.algos import (
    AlgoKind,
    AlgoKinds,
    AlgoList,
    AlgoView,
    ListAlgoKinds,
    ListAlgos,
)
from engine.bus.events import AlgoProgress, AlgorithmTriggered, AlgoState, AlgoStateChanged, Side
from engine.errors import CommandError, EngineUnreachable

MAX_PARENTS = 500
"""Parents kept; beyond it the oldest ended one goes (else the oldest)."""
MAX_HISTORIES = 50
"""Parents with a schedule-vs-actual history; beyond it the oldest unwatched ended one goes."""
MAX_POINTS = 240
"""Points per history; when full every other one goes, so it always spans the whole run."""
MAX_WATCHED = 20
MAX_TRIGGERS = 50
RETRY_S = 2.0
"""Between two loads of the same kind (a failed one, or a burst of unknown parents)."""
ZERO = Decimal(0)
ACTIVE_STATES = ("pending", "running", "paused")
ENDED_STATES = ("completed", "cancelled", "failed")

R = TypeVar("R", bound=Result)
Point = tuple[int, Decimal, Decimal | None]
"""(UTC ns, filled, what the schedule expected by then or None)."""
FieldType = Literal[
    "number", "integer", "decimal", "time", "string", "enum", "boolean", "numbers", "json"
]


# --- kinds and their parameter fields ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParamField:
    """One parameter of an algorithm kind, as its JSON schema describes it."""

    name: str
    type: FieldType
    """How the console asks for it: numbers, whole numbers, decimals (sent as strings),
    UTC times (``*_ns`` integers), text, a choice, a switch, a list of numbers, or JSON."""
    required: bool
    nullable: bool = False
    """``null`` clears it (an optional parameter without a value)."""
    default: Any = None
    has_default: bool = False
    options: tuple[str, ...] = ()
    """The choices of an ``enum``."""

    @property
    def label(self) -> str:
        """``duration_s`` → "Duration (s)", ``end_at_ns`` → "End at (UTC)"."""
        name, unit = self.name, ""
        if self.type == "time":
            name, unit = name.removesuffix("_ns"), " (UTC)"
        elif name.endswith("_s"):
            name, unit = name.removesuffix("_s"), " (s)"
        return name.replace("_", " ").capitalize() + unit


@dataclass(frozen=True, slots=True)
class KindView:
    kind: str
    version: int
    description: str
    fields: tuple[ParamField, ...]
    problem: str = ""
    """Why its schema could not be read ("" when it could)."""


def parse_params_schema(text: str) -> tuple[ParamField, ...]:
    """The fields of a kind's parameters from the JSON schema ``ListAlgoKinds`` gives;
    raises ``ValueError`` when it is not a JSON object schema."""
    try:
        schema = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(f"its parameter schema is not JSON: {exc}") from None
    if not isinstance(schema, dict) or not isinstance(schema.get("properties", {}), dict):
        raise ValueError("its parameter schema is not an object schema")
    required = set(schema.get("required", ()))
    return tuple(
        _field(name, spec if isinstance(spec, dict) else {}, name in required)
        for name, spec in schema.get("properties", {}).items()
    )


def _field(name: str, spec: dict[str, Any], required: bool) -> ParamField:
    choices = spec.get("anyOf")
    nullable = False
    if isinstance(choices, list):
        non_null = [c for c in choices if isinstance(c, dict) and c.get("type") != "null"]
        nullable = len(non_null) < len(choices)
        base = non_null[0] if len(non_null) == 1 else {}
    else:
        base = spec
    kind = _type(name, base)
    options = tuple(str(o) for o in base.get("enum", ())) if kind == "enum" else ()
    return ParamField(
        name=name,
        type=kind,
        required=required,
        nullable=nullable,
        default=spec.get("default"),
        has_default="default" in spec,
        options=options,
    )


def _type(name: str, spec: dict[str, Any]) -> FieldType:
    kind = spec.get("type")
    if "enum" in spec:
        return "enum"
    if kind == "integer":
        return "time" if name.endswith("_ns") else "integer"
    if kind == "number":
        return "number"
    if kind == "string":
        return "decimal" if spec.get("format") == "decimal" else "string"
    if kind == "boolean":
        return "boolean"
    items = spec.get("items")
    if kind == "array" and isinstance(items, dict) and items.get("type") in ("number", "integer"):
        return "numbers"
    return "json"


# --- parents -------------------------------------------------------------------------------


@dataclass(slots=True)
class ParentView:
    """One parent order: what the control plane and the bus said of it."""

    algo_id: str
    algo_type: str
    symbol: str
    side: Side
    state: AlgoState
    account: str = ""
    qty: Decimal = ZERO
    """0 while unknown (first heard of by a state change)."""
    params: dict[str, Any] | None = None
    """As validated and prepared (None until a ``ListAlgos`` or ``ShowAlgo`` reply)."""
    reason: str = ""
    actor: str = ""
    """Who made the last state change."""
    strategy: str = ""
    filled: Decimal = ZERO
    working: Decimal = ZERO
    avg_price: Decimal | None = None
    expected: Decimal | None = None
    deviation: float | None = None
    """(filled - expected) / qty: negative is behind schedule."""
    participation: float | None = None
    market_volume: Decimal = ZERO
    arrival_price: Decimal | None = None
    shortfall_bps: float | None = None
    children: int = 0
    ts_created: int = 0
    ts_started: int | None = None
    ts_finished: int | None = None
    complete: bool = False
    """True once the control plane described it (account, quantity, parameters)."""
    rev: int = 0
    """The board's version when this parent last changed (pages send changed rows only)."""

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def share(self) -> float:
        """Filled share of the quantity, 0 to 1."""
        return float(min(self.filled / self.qty, Decimal(1))) if self.qty > 0 else 0.0


@dataclass(slots=True)
class History:
    """Schedule vs actual of one parent: a bounded list of points."""

    points: list[Point] = field(default_factory=list)
    version: int = 0

    def add(self, point: Point) -> None:
        if self.points and point[0] <= self.points[-1][0]:
            return  # a copy or an older one
        if len(self.points) >= MAX_POINTS:
            self.points[:] = self.points[::2]
        self.points.append(point)
        self.version += 1


class _Client(Protocol):
    async def send(self, command: Command) -> Result: ...

    def expect(self, result: Result, kind: type[R]) -> R: ...


class ControlSource(Protocol):
    """What :meth:`AlgoBoard.sync` needs of the bridge: its control client."""

    @property
    def client(self) -> _Client: ...


@dataclass(slots=True)
class AlgoBoard:
    """Parents by id (bounded), their histories, the algorithm kinds and recent strategy
    triggers; ``apply`` takes any bus event."""

    parents: dict[str, ParentView] = field(default_factory=dict)
    histories: dict[str, History] = field(default_factory=dict)
    kinds: dict[str, KindView] = field(default_factory=dict)
    triggers: deque[AlgorithmTriggered] = field(default_factory=lambda: deque(maxlen=MAX_TRIGGERS))
    loaded: bool = False
    """True once a ``ListAlgos`` reply was merged (a late joiner is complete)."""
    kinds_loaded: bool = False
    sync_error: str = ""
    """Why the last load failed, in words ("" when it worked)."""
    version: int = 0
    """Bumped on every change of a parent: pages skip a redraw when nothing changed."""
    kinds_version: int = 0
    triggers_version: int = 0
    clock: Callable[[], float] = time.monotonic
    _unknown: set[str] = field(default_factory=set)
    _watched: dict[str, None] = field(default_factory=dict)
    _trackers: list[set[str]] = field(default_factory=list)
    _next_try: dict[str, float] = field(default_factory=dict)
    _errors: dict[str, str] = field(default_factory=dict)

    # --- the bus ---------------------------------------------------------------------------

    def apply(self, event: object) -> None:
        """Take one bus event (others are ignored)."""
        if isinstance(event, AlgoStateChanged):
            p = self._find(event.algo_id, event)
            p.account = p.account or event.account
            if _settle(p, event.state):
                p.reason, p.actor = event.reason, event.actor
                if event.state == "running" and p.ts_started is None:
                    p.ts_started = event.ts_event
                if event.state in ENDED_STATES:
                    p.ts_finished = event.ts_event
            self._touch(p)
        elif isinstance(event, AlgoProgress):
            p = self._find(event.algo_id, event)
            _settle(p, event.state)
            p.qty, p.filled = event.qty, max(p.filled, event.filled)
            p.working, p.avg_price, p.expected = event.working, event.avg_price, event.expected
            p.deviation, p.participation = event.schedule_deviation, event.participation
            p.market_volume, p.children = event.market_volume, event.children
            p.arrival_price, p.shortfall_bps = event.arrival_price, event.shortfall_bps
            self._history(p.algo_id).add((event.ts_event, event.filled, event.expected))
            self._touch(p)
        elif isinstance(event, AlgorithmTriggered):
            self.triggers.append(event)
            self.triggers_version += 1
            known = self.parents.get(event.algo_id)
            if known is None:
                self._unknown.add(event.algo_id)
            elif not known.strategy:
                known.strategy = event.strategy
                self._touch(known)

    # --- the control plane -----------------------------------------------------------------

    @contextmanager
    def tracking(self) -> Iterator[set[str]]:
        """The ids of the parents the bus changed while the block ran (wrap a request whose
        reply goes to :meth:`load`: the bus is newer for those)."""
        touched: set[str] = set()
        self._trackers.append(touched)
        try:
            yield touched
        finally:
            self._trackers.remove(touched)

    def load(self, views: list[AlgoView], touched: set[str] | frozenset[str] = frozenset()) -> None:
        """Merge control-plane views (``ListAlgos`` newest first, a command's reply): what
        they say wins, except for the state and progress of the ``touched`` parents."""
        for v in reversed(views):  # oldest first: the cap drops the oldest
            p = self.parents.get(v.algo_id)
            if p is None:
                p = self._add(ParentView(v.algo_id, v.algo_type, v.symbol, v.side, v.state))
            p.account, p.strategy = v.account, v.strategy or p.strategy
            p.ts_created, p.ts_started, p.ts_finished = v.ts_created, v.ts_started, v.ts_finished
            p.params = _json_object(v.params)
            p.filled, p.complete = max(p.filled, v.filled), True
            if v.algo_id not in touched and _settle(p, v.state):
                p.qty, p.reason, p.working, p.children = v.qty, v.reason, v.working, v.children
                p.avg_price = v.avg_price if v.avg_price is not None else p.avg_price
                p.expected = v.expected
            elif p.qty == 0:
                p.qty = v.qty
            self._unknown.discard(v.algo_id)
            self._touch(p, by_bus=False)

    def load_kinds(self, kinds: list[AlgoKind]) -> None:
        self.kinds = {}
        for k in kinds:
            try:
                fields, problem = parse_params_schema(k.params_schema), ""
            except ValueError as exc:
                fields, problem = (), f"Cannot build the form of {k.kind}: {exc}"
            self.kinds[k.kind] = KindView(k.kind, k.version, k.description, fields, problem)
        self.kinds_loaded = True
        self.kinds_version += 1

    async def sync(self, bridge: ControlSource) -> None:
        """Load what the bus alone cannot give: the kinds (once), the parents so far (once)
        and again when the bus named unknown ones. A failed load is retried after
        ``RETRY_S`` with its reason in ``sync_error``; never raises for a refusal."""
        jobs: list[tuple[str, Callable[[_Client], Any]]] = []
        if not self.kinds_loaded:
            jobs.append(("algorithm kinds", self._load_kinds))
        if not self.loaded or self._unknown:
            jobs.append(("algorithms", self._load_parents))
        for what in set(self._errors) - {what for what, _ in jobs}:
            del self._errors[what]
        now = self.clock()
        for what, job in jobs:
            if self._next_try.get(what, 0.0) > now:
                continue
            self._next_try[what] = now + RETRY_S
            try:
                await job(bridge.client)
            except EngineUnreachable as exc:
                self._errors[what] = f"Cannot load {what}: {exc}"
            except CommandError as exc:
                self._errors[what] = f"Cannot load {what} ({exc.code}): {exc.message}"
            else:
                self._errors.pop(what, None)
        self.sync_error = "; ".join(self._errors.values())

    async def _load_kinds(self, client: _Client) -> None:
        self.load_kinds(client.expect(await client.send(ListAlgoKinds()), AlgoKinds).kinds)

    async def _load_parents(self, client: _Client) -> None:
        asked = set(self._unknown)
        with self.tracking() as touched:
            reply = await client.send(ListAlgos(limit=MAX_PARENTS))
        self.load(client.expect(reply, AlgoList).algos, touched)
        self._unknown -= asked  # not among the latest: it stays as the bus described it
        self.loaded = True
        self.version += 1

    # --- the page --------------------------------------------------------------------------

    def watch(self, algo_id: str) -> None:
        """A page shows ``algo_id``'s detail: keep its history (the latest few watched)."""
        self._watched.pop(algo_id, None)
        self._watched[algo_id] = None
        while len(self._watched) > MAX_WATCHED:
            del self._watched[next(iter(self._watched))]

    def active_first(self) -> list[ParentView]:
        """The parents as the page lists them: active ones first, then newest first."""
        parents = self.parents.values()
        return sorted(parents, key=lambda p: (p.is_active, p.ts_created), reverse=True)

    # --- internals -------------------------------------------------------------------------

    def _find(self, algo_id: str, e: AlgoStateChanged | AlgoProgress) -> ParentView:
        p = self.parents.get(algo_id)
        if p is None:
            p = self._add(ParentView(algo_id, e.algo_type, e.symbol, e.side, e.state))
            p.ts_created = e.ts_event
            self._unknown.add(algo_id)
        return p

    def _add(self, p: ParentView) -> ParentView:
        self.parents[p.algo_id] = p
        if len(self.parents) > MAX_PARENTS:
            ended = (v for v in self.parents.values() if not v.is_active and v is not p)
            oldest = min(ended, key=lambda v: v.ts_created, default=None)
            gone = oldest or min(self.parents.values(), key=lambda v: v.ts_created)
            del self.parents[gone.algo_id]
            self.histories.pop(gone.algo_id, None)
            self._unknown.discard(gone.algo_id)
        return p

    def _history(self, algo_id: str) -> History:
        history = self.histories.get(algo_id)
        if history is None:
            history = self.histories[algo_id] = History()
            if len(self.histories) > MAX_HISTORIES:
                self._drop_a_history(keep=algo_id)
        return history

    def _drop_a_history(self, keep: str) -> None:
        def rank(algo_id: str) -> tuple[bool, bool, int]:
            p = self.parents.get(algo_id)
            last = self.histories[algo_id].points
            return (algo_id in self._watched, p is not None and p.is_active, last[-1][0])

        candidates = [a for a in self.histories if a != keep and self.histories[a].points]
        if candidates:
            del self.histories[min(candidates, key=rank)]

    def _touch(self, p: ParentView, *, by_bus: bool = True) -> None:
        self.version += 1
        p.rev = self.version
        if by_bus:
            for touched in self._trackers:
                touched.add(p.algo_id)


def _settle(p: ParentView, state: AlgoState) -> bool:
    """Take ``state`` unless the parent ended already (an end is final)."""
    if p.state in ENDED_STATES and state not in ENDED_STATES:
        return False
    p.state = state
    return True


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None
