"""Pre-trade risk and compliance: the gate every order passes before the venue.

- :mod:`engine.risk.profile` — :class:`RiskProfile` (per-account limits, validated) and
  :data:`DEFAULT_PROFILE`;
- :mod:`engine.risk.decision` — :class:`RiskOrder`, :class:`Decision`, :class:`Reason`;
- :mod:`engine.risk.gate` — :class:`RiskGate`, the check path (its order is documented
  there), with :mod:`engine.risk.sanity` (step 1) and :mod:`engine.risk.view` (what
  compliance rules see);
- :mod:`engine.risk.tracker` — what the gate learns (fills, marks, working orders),
  daily-loss states, the kill switch, the outbox of events and cancels;
- :mod:`engine.risk.compliance`, :mod:`engine.risk.rules`, :mod:`engine.risk.registry` —
  compliance-rule plugins;
- :mod:`engine.risk.status` — the operator snapshot; :mod:`engine.risk.alerts` — open
  alerts without floods;
- :mod:`engine.risk.store` — profiles, rules, alerts and halts in the database.

Use in the execution process (one thread; the gate is not thread-safe)::

    gate = RiskGate(load_profiles(db).profiles.values(), load_rules(db).rules,
                    instruments=specs)
    for halt in load_halts(db):
        gate.restore_halt(halt.record, runaway=halt.runaway)

    decision = gate.check(order, now_ns)        # every new order (check_modify: replaces)
    if decision.allowed:
        gate.on_submitted(order, now_ns)        # then send it
    # execution reports: on_fill / on_modified / on_done; quotes: on_mark; tape:
    # on_market_volume; algorithms: check_parent + on_parent_accepted / on_parent_done
    out = gate.drain()                          # after each of these calls:
    # publish out.events (OrderDenied, RiskStateChanged, AlertRaised, with their topics;
    # store RiskStateChanged with store.record_state_change, alerts with save_alert)
    # and cancel out.cancels
"""

from engine.risk.compliance import (
    INTERFACE_VERSION,
    ComplianceParams,
    ComplianceParamsError,
    ComplianceRule,
    RiskView,
    Violation,
)
from engine.risk.decision import (
    CancelRequest,
    Decision,
    NearBreach,
    OpenOrder,
    Reason,
    RiskOrder,
    denied_event,
)
from engine.risk.gate import GateSettings, Outbox, RiskGate
from engine.risk.profile import DEFAULT_PROFILE, RiskProfile, RiskProfileError
from engine.risk.registry import REGISTRY, ComplianceRegistry, create, describe, register
from engine.risk.status import RiskStatus

__all__ = [
    "DEFAULT_PROFILE",
    "INTERFACE_VERSION",
    "REGISTRY",
    "CancelRequest",
    "ComplianceParams",
    "ComplianceParamsError",
    "ComplianceRegistry",
    "ComplianceRule",
    "Decision",
    "GateSettings",
    "NearBreach",
    "OpenOrder",
    "Outbox",
    "Reason",
    "RiskGate",
    "RiskOrder",
    "RiskProfile",
    "RiskProfileError",
    "RiskStatus",
    "RiskView",
    "Violation",
    "create",
    "denied_event",
    "describe",
    "register",
]
