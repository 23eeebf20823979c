"""The operator's side of the risk gate: the control commands of
:mod:`engine.bus.commands.risk`, served by the execution process.

- ``HaltTrading`` / ``ResumeTrading``: the kill switch (a resume needs a reason; the
  control plane lets only admins send it); each state change is audited and alerted by
  :class:`~engine.risk.service.RiskService`'s outbox.
- ``GetRiskStatus``: the gate's snapshot with the number of unacknowledged alerts.
- ``ListAlerts`` / ``AcknowledgeAlert``: the stored alerts; acknowledging one also closes
  it in the status.
- ``GetRiskProfile`` / ``SetRiskProfile``: limits edited field by field (a new profile
  starts from QSuite's defaults), validated as a whole, versioned and audited.
- ``ListComplianceRules`` / ``SetComplianceRule`` / ``EnableComplianceRule``.

Every edit is written to the database first and takes effect in the gate at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from loguru import logger

from engine.bus.commands.risk import (
    AcknowledgeAlert,
    AlertAcknowledged,
    AlertList,
    AlertRow,
    ComplianceRules,
    EnableComplianceRule,
    GetRiskProfile,
    GetRiskStatus,
    HaltTrading,
    ListAlerts,
    ListComplianceRules,
    ResumeTrading,
    RiskHaltSet,
    RiskProfileView,
    RiskStatus,
    RuleKind,
    RuleRow,
    SetComplianceRule,
    SetRiskProfile,
)
from engine.errors import CommandError, ErrorCode
from engine.risk import store
from engine.risk.compliance import ComplianceParamsError
from engine.risk.profile import DEFAULT_PROFILE, RiskProfile, RiskProfileError, for_account
from engine.risk.registry import REGISTRY, UnknownComplianceRuleError
from engine.risk.service import RiskService, scope_text
from engine.service import ServiceContext

NO_LIMIT = frozenset({"", "none", "null", "off"})
"""Texts that mean "no limit" in a profile edit."""
FIXED_FIELDS = frozenset({"account", "version"})


class RiskControl:
    """The risk commands of the execution process, on ``risk``'s gate and database."""

    def __init__(self, risk: RiskService) -> None:
        self.risk = risk
        self.gate = risk.gate
        self.engine = risk.engine
        self._log = logger.bind(component="risk")

    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        for command, handler in (
            (HaltTrading, self._halt),
            (ResumeTrading, self._resume),
            (GetRiskStatus, self._status),
            (ListAlerts, self._alerts),
            (AcknowledgeAlert, self._acknowledge),
            (GetRiskProfile, self._profile),
            (SetRiskProfile, self._set_profile),
            (ListComplianceRules, self._rules),
            (SetComplianceRule, self._set_rule),
            (EnableComplianceRule, self._enable_rule),
        ):
            ctx.register_command(command, handler)

    def _now(self) -> int:
        return self._ctx.clock.time_ns()

    def _halt(self, cmd: HaltTrading) -> RiskHaltSet:
        actor = _actor(cmd.actor)
        if not cmd.reason.strip():
            raise CommandError(ErrorCode.INVALID, "a halt needs a reason (--reason)")
        before = {(h.scope, h.key) for h in self.gate.halts()}
        cancels = self.gate.halt(
            cmd.scope, cmd.key, actor=actor, reason=cmd.reason, now_ns=self._now()
        )
        self.risk.flush()
        what = scope_text(cmd.scope, cmd.key)
        self._log.bind(actor=actor, command_id=cmd.command_id).warning(
            "Kill switch: {} HALTED by {}: {} ({} working orders cancelled)",
            what,
            actor,
            cmd.reason,
            len(cancels),
        )
        return RiskHaltSet(
            scope=cmd.scope,
            key=cmd.key,
            state="HALTED",
            changed=(cmd.scope, cmd.key) not in before,
            cancels=[c.client_order_id for c in cancels],
            message=f"{what} halted: {len(cancels)} working orders cancelled; new "
            "risk-increasing orders are denied until resumed",
        )

    def _resume(self, cmd: ResumeTrading) -> RiskHaltSet:
        actor = _actor(cmd.actor)
        changed = self.gate.resume(
            cmd.scope, cmd.key, actor=actor, reason=cmd.reason, now_ns=self._now()
        )
        self.risk.flush()
        what = scope_text(cmd.scope, cmd.key)
        if changed:
            self._log.bind(actor=actor, command_id=cmd.command_id).warning(
                "Risk: {} resumed by {}: {}", what, actor, cmd.reason
            )
        return RiskHaltSet(
            scope=cmd.scope,
            key=cmd.key,
            state="ACTIVE",
            changed=changed,
            cancels=[],
            message=f"{what} resumed" if changed else f"{what} was not halted",
        )

    def _status(self, cmd: GetRiskStatus) -> RiskStatus:
        status = self.gate.status(self._now())
        if cmd.account is not None:
            accounts = [a for a in status.accounts if a.account == cmd.account]
            if not accounts and self.gate.profile(cmd.account) is None:
                raise CommandError(
                    ErrorCode.NOT_FOUND,
                    f"the risk gate knows no account {cmd.account} (no profile, no orders)",
                )
            status = msgspec.structs.replace(status, accounts=accounts)
        open_alerts = store.unacknowledged_alerts(self.engine, account=cmd.account, limit=None)
        return msgspec.structs.replace(status, unacknowledged=len(open_alerts))

    def _alerts(self, cmd: ListAlerts) -> AlertList:
        rows = store.alerts(
            self.engine, open_only=cmd.open_only, limit=cmd.limit, account=cmd.account
        )
        return AlertList(alerts=[_alert_row(row) for row in rows])

    def _acknowledge(self, cmd: AcknowledgeAlert) -> AlertAcknowledged:
        actor = _actor(cmd.actor)
        changed = store.acknowledge_alert(
            self.engine, cmd.alert_id, actor=actor, command_id=cmd.command_id
        )
        row = store.get_alert(self.engine, cmd.alert_id)
        if row is None:
            raise CommandError(ErrorCode.NOT_FOUND, f"no alert {cmd.alert_id}")
        if changed and row.account:
            self.gate.acknowledge_alert(row.account, row.kind)
        return AlertAcknowledged(alert=_alert_row(row), already=not changed)

    def _profile(self, cmd: GetRiskProfile) -> RiskProfileView:
        profile = self.gate.profile(cmd.account)
        if profile is None:
            return RiskProfileView(account=cmd.account, version=0, limits={})
        return _profile_view(profile)

    def _set_profile(self, cmd: SetRiskProfile) -> RiskProfileView:
        actor = _actor(cmd.actor)
        current = self.gate.profile(cmd.account) or for_account(DEFAULT_PROFILE, cmd.account)
        data = current.to_dict()
        for name, value in cmd.changes.items():
            if name not in data or name in FIXED_FIELDS:
                known = ", ".join(sorted(set(data) - FIXED_FIELDS))
                raise CommandError(
                    ErrorCode.INVALID, f"{name!r} is not a risk limit; the limits are: {known}"
                )
            data[name] = None if value is None or value.strip().lower() in NO_LIMIT else value
        try:
            saved = store.save_profile(
                self.engine,
                data,
                actor=actor,
                expected_version=cmd.expected_version,
                command_id=cmd.command_id,
            )
        except RiskProfileError as exc:
            raise CommandError(ErrorCode.INVALID, str(exc)) from None
        self.gate.set_profile(saved)
        self._log.bind(actor=actor, command_id=cmd.command_id).warning(
            "Risk profile of {} changed by {} (version {}): {}",
            saved.account,
            actor,
            saved.version,
            ", ".join(f"{k}={v}" for k, v in sorted(cmd.changes.items())),
        )
        return _profile_view(saved)

    def _rules(self, _cmd: ListComplianceRules) -> ComplianceRules:
        return ComplianceRules(
            rules=[
                RuleRow(
                    name=rule.name,
                    kind=rule.kind,
                    version=rule.version,
                    enabled=rule.enabled,
                    params=msgspec.json.encode(rule.params).decode(),
                )
                for rule in self.gate.rules
            ],
            kinds=[
                RuleKind(
                    kind=info.kind,
                    stage=info.stage,
                    reason=info.reason,
                    description=info.description,
                    params_schema=msgspec.json.encode(info.params).decode(),
                )
                for info in REGISTRY.describe()
            ],
        )

    def _set_rule(self, cmd: SetComplianceRule) -> ComplianceRules:
        actor = _actor(cmd.actor)
        try:
            params = msgspec.json.decode(cmd.params)
        except msgspec.DecodeError as exc:
            raise CommandError(ErrorCode.INVALID, f"params are not JSON: {exc}") from None
        if not isinstance(params, dict):
            raise CommandError(ErrorCode.INVALID, "params must be a JSON object")
        try:
            rule = store.save_rule(
                self.engine,
                name=cmd.name,
                kind=cmd.kind,
                params=params,
                enabled=cmd.enabled,
                actor=actor,
                command_id=cmd.command_id,
            )
        except (ComplianceParamsError, UnknownComplianceRuleError) as exc:
            raise CommandError(ErrorCode.INVALID, str(exc)) from None
        rules = [r for r in self.gate.rules if r.name != cmd.name]
        self.gate.set_rules([*rules, rule])
        self._log.bind(actor=actor, command_id=cmd.command_id).warning(
            "Compliance rule {} ({}) set by {}: {} {}",
            cmd.name,
            cmd.kind,
            actor,
            "enabled" if cmd.enabled else "disabled",
            cmd.params,
        )
        return self._rules(ListComplianceRules())

    def _enable_rule(self, cmd: EnableComplianceRule) -> ComplianceRules:
        actor = _actor(cmd.actor)
        if not store.set_rule_enabled(
            self.engine, cmd.name, cmd.enabled, actor=actor, command_id=cmd.command_id
        ):
            raise CommandError(
                ErrorCode.NOT_FOUND,
                f"no compliance rule {cmd.name}; `qsuite ctl risk rules` lists them",
            )
        self.gate.enable_rule(cmd.name, cmd.enabled)
        self._log.bind(actor=actor, command_id=cmd.command_id).warning(
            "Compliance rule {} {} by {}", cmd.name, "enabled" if cmd.enabled else "disabled", actor
        )
        return self._rules(ListComplianceRules())


def _actor(actor: str) -> str:
    if not actor.strip():
        raise CommandError(ErrorCode.INVALID, "say who you are (the command's actor)")
    return actor


def _profile_view(profile: RiskProfile) -> RiskProfileView:
    limits = profile.to_dict()
    for name in FIXED_FIELDS:
        limits.pop(name, None)
    return RiskProfileView(account=profile.account, version=profile.version, limits=limits)


def _alert_row(row: store.StoredAlert) -> AlertRow:
    return AlertRow(
        id=row.id,
        severity=row.severity,  # type: ignore[arg-type]
        kind=row.kind,
        message=row.message,
        account=row.account or "",
        symbol=row.symbol or "",
        algo_id=row.algo_id or "",
        details=dict(row.details or {}),
        ts=_ns(row.created_at),
        acknowledged_by=row.acknowledged_by or "",
        acknowledged_ts=None if row.acknowledged_at is None else _ns(row.acknowledged_at),
    )


def _ns(at: datetime) -> int:
    """A stored UTC timestamp (naive on SQLite) in ns."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return int(aware.timestamp()) * 1_000_000_000 + aware.microsecond * 1_000
