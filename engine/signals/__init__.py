"""Signal rules and the per-symbol signal engine (see :mod:`engine.signals.base` for the
rule interface, :mod:`engine.signals.rules` for the built-in rules,
:mod:`engine.signals.engine` for de-duplication and failure handling and
:mod:`engine.signals.store` for persistence)."""

from engine.signals.base import (
    INTERFACE_VERSION,
    IndicatorSpec,
    RuleInput,
    RuleParams,
    RuleParamsError,
    RuleSignal,
    SignalRule,
)
from engine.signals.engine import RuleStatus, SeenPredicate, SignalEngine, SignalKey
from engine.signals.registry import (
    REGISTRY,
    RuleInfo,
    RuleRegistry,
    UnknownRuleError,
    create,
    describe,
    register,
)

__all__ = [
    "INTERFACE_VERSION",
    "REGISTRY",
    "IndicatorSpec",
    "RuleInfo",
    "RuleInput",
    "RuleParams",
    "RuleParamsError",
    "RuleRegistry",
    "RuleSignal",
    "RuleStatus",
    "SeenPredicate",
    "SignalEngine",
    "SignalKey",
    "SignalRule",
    "UnknownRuleError",
    "create",
    "describe",
    "register",
]
