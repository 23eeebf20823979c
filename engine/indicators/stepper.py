"""The per-bar function of an indicator bank, generated for its indicators.

For RSI and MACD it reads::

    def run(bar):
        try:
            ts, o, h, lo, c, v = bar
            if ts <= last[0]:
                return stale(bar)
            if not (c - c == 0.0):      # NaN or ±inf in an input in use
                return partial(bar, True)
        except Exception as exc:        # not a bar
            return bad(bar, exc)
        last[0] = ts                    # update only, not preview
        try:
            d0 = {'value': f0(c)}       # f0: the RSI stream's update
        except Exception as exc:
            d0 = failed(0, exc)
        try:
            x1_0, x1_1, x1_2 = f1(c)
            d1 = {'macd': x1_0, 'macdsignal': x1_1, 'macdhist': x1_2}
        except Exception as exc:
            d1 = failed(1, exc)
        return {'rsi_14': d0, 'macd_12_26_9': d1}

Straight-line code with constant keys is the cheapest way CPython has to call each
stream and build the result dicts; a loop over the indicators costs about as much
again. The bank binds these functions as its ``update``/``preview``/``step``
attributes, so a call costs no extra frame. Banks with the same indicators share the
compiled code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from engine.indicators.slot import Slot

Values = dict[str, dict[str, float]]


@functools.lru_cache(maxsize=256)
def _code(source: str) -> Any:
    """Banks with the same indicators share the compiled per-bar code."""
    return compile(source, "<indicator bank>", "exec")


def compile_step(
    slots: list[Slot],
    commit: bool,
    last: list[int],
    stale: Callable[[Any], Any],
    partial: Callable[[Any, bool], Any],
    failed: Callable[[int, Exception], Any],
    bad: Callable[[Any, Exception], Any],
    *,
    packed: bool = True,
) -> Callable[[Any], Any]:
    """The per-bar function of a bank over ``slots``: ``update`` if ``commit``, else
    ``preview``. Keys and output names are validated (``[A-Za-z0-9_\\-=^~]``) and
    embedded with ``repr``.

    ``packed`` returns ``{key: {output: value}}``; otherwise a tuple with each
    indicator's native result in slot order (a float, or a tuple of floats for several
    outputs), which skips building the dicts. ``stale``, ``partial``, ``failed`` and
    ``bad`` (a malformed bar) must answer in the same shape."""
    used = sorted({f for s in slots for f in s.fields})
    fields = ("o", "h", "lo", "c", "v")
    fns = [f"f{n}" for n in range(len(slots))]
    body = [
        f"def factory(last, stale, partial, failed, bad, {', '.join([*fns, ''])}):",
        "  def run(bar):",
        "    try:",
        "      ts, o, h, lo, c, v = bar",
        "      if ts <= last[0]:",
        "        return stale(bar)",
    ]
    if used:
        check = " and ".join(f"{fields[i - 1]} - {fields[i - 1]} == 0.0" for i in used)
        body += [f"      if not ({check}):", f"        return partial(bar, {commit})"]
    body += ["    except Exception as exc:", "      return bad(bar, exc)"]
    if commit:
        body.append("    last[0] = ts")
    result = []
    for n, slot in enumerate(slots):
        args = ", ".join(fields[i - 1] for i in slot.fields)
        body.append("    try:")
        if not packed:
            body.append(f"        d{n} = f{n}({args})")
            body += ["    except Exception as exc:", f"        d{n} = failed({n}, exc)"]
            result.append(f"d{n}")
            continue
        if len(slot.outputs) == 1:
            body.append(f"        d{n} = {{{slot.outputs[0]!r}: f{n}({args})}}")
        else:
            names = [f"x{n}_{j}" for j in range(len(slot.outputs))]
            body.append(f"        {', '.join(names)} = f{n}({args})")
            pairs = ", ".join(f"{o!r}: {x}" for o, x in zip(slot.outputs, names, strict=True))
            body.append(f"        d{n} = {{{pairs}}}")
        body += ["    except Exception as exc:", f"        d{n} = failed({n}, exc)"]
        result.append(f"{slot.key!r}: d{n}")
    if packed:
        body += [f"    return {{{', '.join(result)}}}", "  return run"]
    else:
        body += [f"    return ({''.join(r + ', ' for r in result)})", "  return run"]
    namespace: dict[str, Any] = {}
    exec(_code("\n".join(body)), namespace)  # our own code over validated names
    streams = [s.update_fn if commit else s.peek_fn for s in slots]
    run: Callable[[Any], Any] = namespace["factory"](last, stale, partial, failed, bad, *streams)
    return run
