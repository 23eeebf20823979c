"""Hypothesis strategies for msgspec structs, derived from their type info.

A field added to an event, command or result is covered as soon as it exists; a field
type these builders do not know fails loudly instead of being skipped. Constraints
(``ge``/``le``, ``min_length``/``max_length``, ``pattern``) are honoured so every drawn
value is one the decoders accept.
"""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi
from hypothesis import strategies as st

INT64 = (-(2**63), 2**63 - 1)


def _bound(value: float | None, delta: int, default: int) -> int:
    return default if value is None else int(value) + delta


def strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    """A strategy for values of one msgspec type that msgpack round-trips exactly."""
    if isinstance(t, mi.IntType):
        low = max(INT64[0], _bound(t.ge, 0, INT64[0]), _bound(t.gt, 1, INT64[0]))
        high = min(INT64[1], _bound(t.le, 0, INT64[1]), _bound(t.lt, -1, INT64[1]))
        return st.integers(low, high)
    if isinstance(t, mi.FloatType):  # NaN never equals itself, so it cannot round-trip
        return st.floats(
            min_value=t.ge if t.ge is not None else t.gt,
            max_value=t.le if t.le is not None else t.lt,
            exclude_min=t.gt is not None,
            exclude_max=t.lt is not None,
            allow_nan=False,
        )
    if isinstance(t, mi.StrType):
        low, high = t.min_length or 0, t.max_length if t.max_length is not None else 20
        if t.pattern is not None:
            return st.from_regex(t.pattern, fullmatch=True).filter(lambda s: low <= len(s) <= high)
        return st.text(min_size=low, max_size=high)
    if isinstance(t, mi.DecimalType):
        return st.decimals(allow_nan=False, allow_infinity=False, places=6, max_value=10**12)
    if isinstance(t, mi.TupleType):
        return st.tuples(*(strategy_for(item) for item in t.item_types))
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.UnionType):
        return st.one_of([strategy_for(member) for member in t.types])
    if isinstance(t, mi.DictType):
        return st.dictionaries(strategy_for(t.key_type), strategy_for(t.value_type), max_size=4)
    if isinstance(t, (mi.ListType, mi.VarTupleType)):
        items = st.lists(strategy_for(t.item_type), max_size=4)
        return items if isinstance(t, mi.ListType) else items.map(tuple)
    if isinstance(t, (mi.SetType, mi.FrozenSetType)):
        return st.frozensets(strategy_for(t.item_type), max_size=4).map(
            frozenset if isinstance(t, mi.FrozenSetType) else set
        )
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    raise NotImplementedError(f"tests/strategies.py has no strategy for {t!r}")


def struct_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return st.builds(cls, **{f.name: strategy_for(f.type) for f in info.fields})


def all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found
