"""Risk configuration and alerts in the database: ``risk_profiles``, ``compliance_rules``,
``alerts`` (and ``audit_log`` for every edit and acknowledgement).

Profiles
    One row per account. The table has columns for the classic limits; every other
    :class:`~engine.risk.profile.RiskProfile` field is stored in ``extra`` under its
    field name (Decimals as strings), e.g. ``{"max_parent_qty": "100000",
    "reducing_at": 0.8}``. Other keys of ``extra`` belong to custom checks and are left
    alone. :func:`save_profile` validates, bumps ``version`` (optimistic lock: pass
    ``expected_version`` to refuse a concurrent edit) and writes an audit entry in the
    same transaction. An invalid stored row is *not* loaded (its account then has no
    profile, so its orders are denied) and is reported in ``problems``.
Defaults
    :data:`DEFAULT_PROFILE` documents QSuite's defaults (see
    :mod:`engine.risk.profile`). They are never applied silently: an account without a
    row has no profile unless the gate is built with ``default_profile=DEFAULT_PROFILE``
    on purpose (missing configuration fails closed).
Rules
    :func:`load_rules` builds every row through the registry; a row that cannot be built
    (e.g. a plugin kind this process has not registered) becomes a
    :class:`~engine.risk.rules.BrokenRule` that denies every order (fail closed) and is
    reported. The registry, not the table, decides which kinds are valid:
    :func:`save_rule` stores any kind it knows (built-ins such as ``trading_window``
    and plugins) and refuses others naming the known ones; the table's CHECK only keeps
    out kinds no registry accepts.
Alerts
    :func:`save_alert` stores an ``AlertRaised`` with its ``details`` (JSON; alerts
    stored before migration 0004 have theirs appended to the message instead);
    :func:`acknowledge_alert` records who and when (once; an unknown id is
    ``not_found``); :func:`alerts` lists them newest first, all or only the open ones
    (:func:`unacknowledged_alerts`).
Halts
    There is no table for the kill switch: :func:`record_state_change` appends each
    ``RiskStateChanged`` to ``audit_log`` (action ``RiskStateChanged``, target
    ``<scope>:<key>``) and :func:`load_halts` replays it, so halts and runaway disables
    survive a restart (daily-loss states are recomputed from P&L instead).

``target`` is an engine (a write commits before returning) or a connection (the write
joins the caller's transaction).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import Connection, Engine, Row, Table, insert, null, select, update

from app.database import writer
from engine.bus.events import AlertRaised, RiskStateChanged
from engine.errors import CommandError, ErrorCode
from engine.persistence.decimals import plain_decimal
from engine.persistence.models import Alert, AuditEntry, ComplianceRule, RiskProfile
from engine.persistence.models.base import utcnow
from engine.risk import compliance
from engine.risk.profile import DEFAULT_PROFILE, RiskProfileError
from engine.risk.profile import RiskProfile as Profile
from engine.risk.registry import REGISTRY, ComplianceRegistry
from engine.risk.rules import BrokenRule
from engine.risk.state import HaltRecord

__all__ = [
    "DEFAULT_PROFILE",
    "ProfileLoad",
    "RuleLoad",
    "StoredAlert",
    "StoredHalt",
    "acknowledge_alert",
    "alerts",
    "audit",
    "get_alert",
    "load_halts",
    "load_profiles",
    "load_rules",
    "record_state_change",
    "save_alert",
    "save_profile",
    "save_rule",
    "set_rule_enabled",
    "unacknowledged_alerts",
]

_PROFILES: Table = RiskProfile.__table__  # type: ignore[assignment]
_RULES: Table = ComplianceRule.__table__  # type: ignore[assignment]
_ALERTS: Table = Alert.__table__  # type: ignore[assignment]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
_ROWCOUNT = {"preserve_rowcount": True}

#: Profile fields with a column of their own; the rest go into ``extra``.
COLUMNS = (
    "max_order_qty",
    "max_order_notional",
    "max_position_qty",
    "max_position_notional",
    "daily_loss_limit",
    "max_participation",
    "price_collar_pct",
    "max_orders_per_s",
)
_EXTRA = tuple(
    f for f in msgspec.structs.fields(Profile) if f.name not in {*COLUMNS, "account", "version"}
)
EXTRA_FIELDS = tuple(f.name for f in _EXTRA)
STATE_ACTION = "RiskStateChanged"


class ProfileLoad(NamedTuple):
    profiles: dict[str, Profile]
    problems: list[str]
    """One sentence per row that was not loaded (or loaded with ignored keys)."""


class RuleLoad(NamedTuple):
    rules: list[compliance.ComplianceRule[Any]]
    """Every stored rule, enabled or not, broken ones as :class:`BrokenRule`."""
    problems: list[str]


class StoredAlert(NamedTuple):
    id: int
    severity: str
    kind: str
    message: str
    account: str | None
    symbol: str | None
    algo_id: str | None
    created_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    details: dict[str, str]
    """Empty when the alert had none (or was stored before its details had a column)."""


_ALERT_QUERY = select(*(_ALERTS.c[name] for name in StoredAlert._fields))


class StoredHalt(NamedTuple):
    record: HaltRecord
    runaway: bool
    """An algorithm disabled by the runaway check (else a kill-switch halt)."""


# --- profiles ----------------------------------------------------------------------------


def load_profiles(target: Engine | Connection) -> ProfileLoad:
    """Every valid stored profile by account, and what was wrong with the others."""
    profiles: dict[str, Profile] = {}
    problems: list[str] = []
    t = _PROFILES.c
    query = select(t.account, t.version, t.extra, *(t[name] for name in COLUMNS))
    with _connection(target, write=False) as conn:
        rows = conn.execute(query.order_by(t.account)).mappings().all()
    for row in rows:
        data: dict[str, Any] = {
            name: plain_decimal(v) if isinstance(v := row[name], Decimal) else v for name in COLUMNS
        }
        extra = dict(row["extra"] or {})
        data.update({name: extra[name] for name in EXTRA_FIELDS if name in extra})
        data.update(account=row["account"], version=row["version"])
        try:
            profiles[row["account"]] = Profile.from_dict(data)
        except RiskProfileError as exc:
            problems.append(f"{exc}; the account has no profile (its orders are denied)")
    return ProfileLoad(profiles, problems)


def save_profile(
    target: Engine | Connection,
    profile: Profile | dict[str, Any],
    *,
    actor: str,
    expected_version: int | None = None,
    command_id: str | None = None,
) -> Profile:
    """Validate and store ``profile`` (a new row, or the next version of the account's
    row); returns it with its stored version. Raises
    :class:`~engine.risk.profile.RiskProfileError` (invalid; audited as ``denied``) or
    ``CommandError(conflict)`` when the stored version is not ``expected_version``."""
    account = profile.account if isinstance(profile, Profile) else profile.get("account")
    try:
        valid = profile if isinstance(profile, Profile) else Profile.from_dict(profile)
    except RiskProfileError as exc:
        _denied(target, actor, "SaveRiskProfile", account, command_id, profile, exc)
        raise
    try:
        return _save_profile(target, valid, actor, expected_version, command_id)
    except CommandError as exc:
        _denied(target, actor, "SaveRiskProfile", account, command_id, valid.to_dict(), exc)
        raise


def _save_profile(
    target: Engine | Connection,
    valid: Profile,
    actor: str,
    expected_version: int | None,
    command_id: str | None,
) -> Profile:
    with _connection(target, write=True) as conn:
        t = _PROFILES.c
        current = conn.execute(
            select(t.version, t.extra).where(t.account == valid.account)
        ).one_or_none()
        if expected_version is not None and (
            current is None or current.version != expected_version
        ):
            stored = "no stored profile" if current is None else f"version {current.version}"
            raise CommandError(
                ErrorCode.CONFLICT,
                f"risk profile {valid.account} is at {stored}, not {expected_version}: "
                "reload it and edit again",
            )
        data = valid.to_dict()
        values: dict[str, Any] = {name: getattr(valid, name) for name in COLUMNS}
        kept = (
            {k: v for k, v in (current.extra or {}).items() if k not in EXTRA_FIELDS}
            if current
            else {}
        )
        values["extra"] = {**kept, **{name: data[name] for name in EXTRA_FIELDS}}
        values.update(updated_at=utcnow(), updated_by=actor)
        if current is None:
            version = 1
            conn.execute(insert(_PROFILES).values(account=valid.account, version=version, **values))
        else:
            version = current.version + 1
            changed = conn.execute(
                update(_PROFILES)
                .where(t.account == valid.account, t.version == current.version)
                .values(version=version, **values),
                execution_options=_ROWCOUNT,
            ).rowcount
            if changed != 1:
                raise CommandError(
                    ErrorCode.CONFLICT, f"risk profile {valid.account} changed meanwhile; retry"
                )
        saved = msgspec.structs.replace(valid, version=version)
        audit(conn, actor, "SaveRiskProfile", valid.account, command_id, saved.to_dict(), "ok")
        return saved


# --- compliance rules --------------------------------------------------------------------


def load_rules(target: Engine | Connection, registry: ComplianceRegistry = REGISTRY) -> RuleLoad:
    """Every stored rule, built through ``registry`` (broken ones fail closed)."""
    t = _RULES.c
    with _connection(target, write=False) as conn:
        rows = conn.execute(select(t.name, t.kind, t.params, t.enabled).order_by(t.id)).all()
    rules: list[compliance.ComplianceRule[Any]] = []
    problems: list[str] = []
    for name, kind, params, enabled in rows:
        try:
            rules.append(registry.create(kind, name=name, enabled=enabled, **dict(params or {})))
        except Exception as exc:
            problem = f"{exc}"
            problems.append(
                f"compliance rule {name} ({kind}) cannot be built: {problem}; it denies every "
                "order until fixed or disabled"
            )
            rules.append(BrokenRule(name, kind, problem))
            rules[-1].enabled = bool(enabled)
    return RuleLoad(rules, problems)


def save_rule(
    target: Engine | Connection,
    *,
    name: str,
    kind: str,
    params: dict[str, Any],
    enabled: bool = True,
    actor: str,
    command_id: str | None = None,
    registry: ComplianceRegistry = REGISTRY,
) -> compliance.ComplianceRule[Any]:
    """Validate and store a rule (by ``name``: insert or update); returns the built
    rule. Raises ``CommandError(invalid)`` for a kind ``registry`` does not know (the
    message names the known kinds) or ``ComplianceParamsError`` for bad ``params``;
    both are audited as ``denied``."""
    payload = {"name": name, "kind": kind, "params": params, "enabled": enabled}
    try:
        known = registry.kinds()
        if kind not in known:
            raise CommandError(
                ErrorCode.INVALID,
                f"unknown compliance rule kind {kind!r}; known kinds: {', '.join(known)} "
                "(a plugin kind must be registered in this process first)",
            )
        rule = registry.create(kind, name=name, enabled=enabled, **params)
    except Exception as exc:
        _denied(target, actor, "SaveComplianceRule", name, command_id, payload, exc)
        raise
    with _connection(target, write=True) as conn:
        stored = msgspec.to_builtins(rule.params)
        t = _RULES.c
        values = {"kind": kind, "params": stored, "enabled": enabled, "updated_at": utcnow()}
        changed = conn.execute(
            update(_RULES).where(t.name == name).values(**values), execution_options=_ROWCOUNT
        ).rowcount
        if not changed:
            conn.execute(insert(_RULES).values(name=name, **values))
        audit(
            conn, actor, "SaveComplianceRule", name, command_id, {**payload, "params": stored}, "ok"
        )
        return rule


def set_rule_enabled(
    target: Engine | Connection,
    name: str,
    enabled: bool,
    *,
    actor: str,
    command_id: str | None = None,
) -> bool:
    """Enable or disable the stored rule ``name``; False when there is none."""
    t = _RULES.c
    with _connection(target, write=True) as conn:
        changed = conn.execute(
            update(_RULES).where(t.name == name).values(enabled=enabled, updated_at=utcnow()),
            execution_options=_ROWCOUNT,
        ).rowcount
        action = "EnableComplianceRule" if enabled else "DisableComplianceRule"
        result = "ok" if changed else "denied"
        audit(
            conn, actor, action, name, command_id, {}, result, None if changed else "no such rule"
        )
        return bool(changed)


# --- alerts ------------------------------------------------------------------------------


def save_alert(target: Engine | Connection, alert: AlertRaised) -> int:
    """Store ``alert`` with its details; returns its id."""
    details = {str(k): str(v) for k, v in alert.details.items()}
    row = {
        "severity": alert.severity,
        "kind": alert.kind[:64],
        "message": alert.message,
        "details": details or null(),  # SQL NULL, not a JSON null
        "account": alert.account[:32] or None,
        "symbol": alert.symbol[:32] or None,
        "algo_id": alert.algo_id[:64] or None,
        "created_at": _datetime(alert.ts_event),
    }
    with _connection(target, write=True) as conn:
        return int(conn.execute(insert(_ALERTS).values(**row).returning(_ALERTS.c.id)).scalar_one())


def acknowledge_alert(
    target: Engine | Connection,
    alert_id: int,
    *,
    actor: str,
    at: datetime | None = None,
    command_id: str | None = None,
) -> bool:
    """Record that ``actor`` acknowledged the alert (at ``at``, default now).

    Returns True when this call acknowledged it, False when it was acknowledged before:
    then nothing changes (the first acknowledgement stands) and the attempt is audited
    as ``denied``. Raises ``CommandError(not_found)`` for an unknown ``alert_id`` (also
    audited) and ``CommandError(invalid)`` without an actor.
    """
    if not (isinstance(actor, str) and actor.strip()):
        raise CommandError(ErrorCode.INVALID, "acknowledging an alert needs the actor")
    t = _ALERTS.c
    action, what = "AcknowledgeAlert", str(alert_id)
    with _connection(target, write=True) as conn:
        changed = conn.execute(
            update(_ALERTS)
            .where(t.id == alert_id, t.acknowledged_at.is_(None))
            .values(acknowledged_by=actor, acknowledged_at=at or utcnow()),
            execution_options=_ROWCOUNT,
        ).rowcount
        if changed:
            audit(conn, actor, action, what, command_id, {}, "ok")
            return True
        first = conn.execute(
            select(t.acknowledged_by, t.acknowledged_at).where(t.id == alert_id)
        ).one_or_none()
        if first is not None:
            detail = f"already acknowledged by {first.acknowledged_by} at {first.acknowledged_at}"
            audit(conn, actor, action, what, command_id, {}, "denied", detail)
            return False
    error = CommandError(ErrorCode.NOT_FOUND, f"there is no alert {alert_id}")
    _denied(target, actor, action, what, command_id, {}, error)
    raise error


def alerts(
    target: Engine | Connection,
    *,
    open_only: bool,
    limit: int | None,
    account: str | None = None,
    severity: str | None = None,
) -> list[StoredAlert]:
    """Stored alerts, newest first: only the unacknowledged ones when ``open_only``,
    else acknowledged ones too; at most ``limit`` (None: all); only of ``account`` /
    ``severity`` when given. Raises ``CommandError(invalid)`` for a negative limit."""
    if limit is not None and limit < 0:
        raise CommandError(ErrorCode.INVALID, f"alert limit must be 0 or more, not {limit}")
    t = _ALERTS.c
    query = _ALERT_QUERY
    if open_only:
        query = query.where(t.acknowledged_at.is_(None))
    if account is not None:
        query = query.where(t.account == account)
    if severity is not None:
        query = query.where(t.severity == severity)
    query = query.order_by(t.created_at.desc(), t.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with _connection(target, write=False) as conn:
        return [_stored_alert(row) for row in conn.execute(query)]


def get_alert(target: Engine | Connection, alert_id: int) -> StoredAlert | None:
    """The alert ``alert_id``, acknowledged or not; None when there is none."""
    with _connection(target, write=False) as conn:
        row = conn.execute(_ALERT_QUERY.where(_ALERTS.c.id == alert_id)).one_or_none()
    return None if row is None else _stored_alert(row)


def unacknowledged_alerts(
    target: Engine | Connection,
    *,
    account: str | None = None,
    severity: str | None = None,
    limit: int | None = 100,
) -> list[StoredAlert]:
    """Alerts nobody acknowledged, newest first (of ``account``, of ``severity``):
    :func:`alerts` with ``open_only=True``."""
    return alerts(target, open_only=True, limit=limit, account=account, severity=severity)


# --- halts ---------------------------------------------------------------------------------


def record_state_change(
    target: Engine | Connection, event: RiskStateChanged, *, command_id: str | None = None
) -> None:
    """Append a ``RiskStateChanged`` to the audit log (see :func:`load_halts`)."""
    payload = {
        "scope": event.scope,
        "key": event.key,
        "state": event.state,
        "reason": event.reason,
        "message": event.message,
        "ts": event.ts_event,
    }
    with _connection(target, write=True) as conn:
        audit(
            conn,
            event.actor or "risk",
            STATE_ACTION,
            f"{event.scope}:{event.key}",
            command_id,
            payload,
            "ok",
        )


def load_halts(target: Engine | Connection) -> list[StoredHalt]:
    """Kill-switch halts and runaway disables in force by the audit log (the latest of
    ``kill_switch`` / ``runaway`` / ``resumed`` per scope and key decides), oldest first;
    give them to :meth:`~engine.risk.tracker.RiskTracker.restore_halt`."""
    t = _AUDIT.c
    query = select(t.actor, t.payload).where(t.action == STATE_ACTION).order_by(t.id)
    latest: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    with _connection(target, write=False) as conn:
        for actor, payload in conn.execute(query):
            if payload.get("reason") in ("kill_switch", "runaway", "resumed"):
                latest[(payload["scope"], payload.get("key", ""))] = (actor, payload)
    halts = []
    for (scope, key), (actor, payload) in latest.items():
        if payload["reason"] == "resumed" or payload.get("state") != "HALTED":
            continue
        runaway = payload["reason"] == "runaway"
        reason = str(payload.get("message", ""))
        fields = {
            "scope": scope,
            "key": key,
            "actor": actor,
            "reason": f"runaway: {reason}" if runaway else reason,
            "since_ns": int(payload.get("ts", 0)),
        }
        try:
            halts.append(StoredHalt(msgspec.convert(fields, HaltRecord), runaway))
        except msgspec.ValidationError:
            continue  # not a scope this version knows: nothing to restore
    return sorted(halts, key=lambda h: h.record.since_ns)


# --- internals -----------------------------------------------------------------------------


def audit(
    conn: Connection,
    actor: str,
    action: str,
    target: str | None,
    command_id: str | None,
    payload: Any,
    result: str,
    detail: str | None = None,
) -> None:
    """Append one entry to ``audit_log`` in ``conn``'s transaction (``result``: ``ok`` or
    ``denied``, ``detail`` why); ``payload`` is stored as JSON (Decimals as strings)."""
    body = payload if isinstance(payload, dict) else {"value": repr(payload)}
    conn.execute(
        insert(_AUDIT).values(
            ts=utcnow(),
            actor=(actor or "unknown")[:64],
            action=action,
            target=None if target is None else str(target)[:128],
            command_id=command_id,
            payload=_json_safe(body),
            result=result,
            detail=None if detail is None else detail[:512],
        )
    )


def _denied(
    target: Engine | Connection,
    actor: str,
    action: str,
    what: str | None,
    command_id: str | None,
    payload: Any,
    exc: Exception,
) -> None:
    """Audit a refused edit in a transaction of its own (the edit's is rolled back)."""
    with _connection(target, write=True) as conn:
        audit(conn, actor, action, what, command_id, payload, "denied", str(exc))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return repr(value)


def _stored_alert(row: Row[Any]) -> StoredAlert:
    return StoredAlert(**{**row._asdict(), "details": dict(row.details or {})})


def _datetime(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC) if ts_ns > 0 else utcnow()


@contextmanager
def _connection(target: Engine | Connection, *, write: bool) -> Iterator[Connection]:
    if isinstance(target, Connection):
        yield target
    else:
        with writer(target).begin() if write else target.connect() as conn:
            yield conn
