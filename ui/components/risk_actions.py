"""What the Risk page sends, and the checks before it: each handler sends one command
through ``bridge.act`` as the logged-in user — the role is checked there and again by
the control plane — and answers in words (the kill switch and resume, acknowledging an
alert, the risk profiles and the compliance rules)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from engine.bus.commands.risk import (
    AcknowledgeAlert,
    AlertAcknowledged,
    ComplianceRules,
    EnableComplianceRule,
    GetRiskProfile,
    HaltTrading,
    ListComplianceRules,
    ResumeTrading,
    RiskHaltSet,
    RiskProfileView,
    SetComplianceRule,
    SetRiskProfile,
)
from engine.bus.events import RiskScope
from engine.risk.profile import DEFAULT_PROFILE
from ui.components.sources import RiskSource

SCOPES: dict[str, RiskScope] = {
    "global": "global",
    "account": "account",
    "symbol": "symbol",
    "algo": "algo",
}
RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FIXED_FIELDS = ("account", "version")


def check_halt(scope: str, key: str, reason: str) -> list[str]:
    """What is wrong with a kill-switch or resume form (in words); [] when complete."""
    problems = []
    if scope not in SCOPES:
        problems.append(f"Scope must be one of {', '.join(SCOPES)}")
    elif scope != "global" and not key.strip():
        problems.append(f"Name the {scope}")
    if not reason.strip():
        problems.append("A reason is required")
    elif len(reason.strip()) > 500:
        problems.append("The reason is longer than 500 characters")
    return problems


async def halt(bridge: RiskSource, scope: str, key: str, reason: str) -> tuple[bool, str]:
    """The kill switch: ``HaltTrading`` (operator)."""
    return await _set_halt(bridge, HaltTrading, scope, key, reason)


async def resume(bridge: RiskSource, scope: str, key: str, reason: str) -> tuple[bool, str]:
    """Lift a halt: ``ResumeTrading`` (admin)."""
    return await _set_halt(bridge, ResumeTrading, scope, key, reason)


async def _set_halt(
    bridge: RiskSource,
    command: type[HaltTrading] | type[ResumeTrading],
    scope: str,
    key: str,
    reason: str,
) -> tuple[bool, str]:
    problems = check_halt(scope, key, reason)
    if problems:
        return False, "; ".join(problems)
    sent = command(scope=SCOPES[scope], key=_key(scope, key), reason=reason.strip())
    result, why = await bridge.act(sent, RiskHaltSet)
    if result is None:
        return False, why
    bridge.risk.refresh_soon()
    return True, result.message


async def acknowledge(bridge: RiskSource, alert_id: int) -> tuple[bool, str]:
    """``AcknowledgeAlert`` (operator)."""
    result, why = await bridge.act(AcknowledgeAlert(alert_id=alert_id), AlertAcknowledged)
    if result is None:
        return False, why
    bridge.risk.acknowledged(alert_id)
    if result.already:
        return True, f"Alert {alert_id} was acknowledged before by {result.alert.acknowledged_by}"
    return True, f"Alert {alert_id} acknowledged"


def shown_limits(profile: RiskProfileView) -> dict[str, str]:
    """The profile's limits as the editor shows them ("" for no limit); an account without
    a profile shows QSuite's defaults, which a new profile starts from."""
    limits: Mapping[str, Any] = profile.limits
    if profile.version == 0:
        limits = DEFAULT_PROFILE.to_dict()
    return {k: "" if v is None else str(v) for k, v in limits.items() if k not in FIXED_FIELDS}


def profile_changes(shown: Mapping[str, str], edited: Mapping[str, str]) -> dict[str, str | None]:
    """Only the fields whose text changed; an emptied field means "no limit" (None)."""
    changes: dict[str, str | None] = {}
    for name, before in shown.items():
        after = edited.get(name, before).strip()
        if after != before.strip():
            changes[name] = after or None
    return changes


async def load_profile(bridge: RiskSource, account: str) -> tuple[RiskProfileView | None, str]:
    if not account.strip():
        return None, "Name the account"
    result, why = await bridge.act(GetRiskProfile(account=account.strip()), RiskProfileView)
    if result is not None:
        bridge.risk.load_profile(result)
    return result, why


async def save_profile(
    bridge: RiskSource, profile: RiskProfileView, edited: Mapping[str, str]
) -> tuple[RiskProfileView | None, str]:
    """``SetRiskProfile`` with the changed fields only (admin); refusals in words."""
    changes = profile_changes(shown_limits(profile), edited)
    if not changes and profile.version:
        return None, "Nothing changed"
    command = SetRiskProfile(
        account=profile.account,
        changes=changes,
        expected_version=profile.version or None,
    )
    result, why = await bridge.act(command, RiskProfileView)
    if result is None:
        return None, why
    bridge.risk.load_profile(result)
    told = ", ".join(f"{k}={v if v is not None else 'no limit'}" for k, v in changes.items())
    return result, f"Saved {result.account} version {result.version}" + (
        f": {told}" if told else ""
    )


async def load_rules(bridge: RiskSource) -> tuple[ComplianceRules | None, str]:
    return await bridge.act(ListComplianceRules(), ComplianceRules)


async def enable_rule(
    bridge: RiskSource, name: str, enabled: bool
) -> tuple[ComplianceRules | None, str]:
    """``EnableComplianceRule`` (admin)."""
    return await bridge.act(EnableComplianceRule(name=name, enabled=enabled), ComplianceRules)


def check_rule(name: str, kind: str, params: str) -> list[str]:
    problems = []
    if not RULE_NAME.match(name.strip()):
        problems.append("Name: a lowercase letter, then up to 63 lowercase letters, digits or _")
    if not kind:
        problems.append("Choose the rule's kind")
    try:
        value = json.loads(params or "{}")
    except ValueError as exc:
        problems.append(f"Parameters are not JSON: {exc}")
    else:
        if not isinstance(value, dict):
            problems.append('Parameters must be a JSON object, like {"symbols": ["AAA"]}')
    return problems


async def save_rule(
    bridge: RiskSource, name: str, kind: str, params: str, enabled: bool
) -> tuple[ComplianceRules | None, str]:
    """``SetComplianceRule`` (admin): add or change a rule by name."""
    problems = check_rule(name, kind, params)
    if problems:
        return None, "; ".join(problems)
    command = SetComplianceRule(
        name=name.strip(), kind=kind, params=params.strip() or "{}", enabled=enabled
    )
    return await bridge.act(command, ComplianceRules)


def _key(scope: str, key: str) -> str:
    return "" if scope == "global" else key.strip()
