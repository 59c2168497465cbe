"""Run trivial key selectors as C getters.

Most key selectors are one subscript or one attribute: ``lambda r: r[0]``,
``lambda r: r["user"]``, ``lambda e: e.user_id`` or a tuple of subscripts
``lambda r: (r[0], r[2])``. A keyed job calls its selector once per record where the
stream is partitioned and again in the keyed operator, so the Python call costs twice per
record. :func:`inline_key_selector` recognises these shapes from the function's bytecode
and returns the equivalent :func:`operator.itemgetter` / :func:`operator.attrgetter`,
which computes the same key (the same ``__getitem__`` / ``__getattribute__`` calls, the
same exceptions) without a Python frame. Anything else is returned unchanged.

This plays the part of Flink's field-expression keys (``keyBy(0)``, ``keyBy("user")``),
which are extracted without calling user code; the user's function stays in the job graph.
"""

from __future__ import annotations

import dis
import operator
import types
from collections.abc import Callable
from typing import Any

__all__ = ["inline_key_selector"]

_SKIP = frozenset(("RESUME", "CACHE", "NOP", "EXTENDED_ARG"))


def _ops(code: types.CodeType) -> list[tuple[str, Any]]:
    return [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in _SKIP]


def _subscript_items(ops: list[tuple[str, Any]], arg: str) -> list[Any] | None:
    """``[c1, c2, ...]`` if ``ops`` is ``arg[c1], arg[c2], ...`` (constants), else None."""
    items = []
    if len(ops) % 3:
        return None
    for j in range(0, len(ops), 3):
        (o1, a1), (o2, a2), (o3, _) = ops[j : j + 3]
        if o1 != "LOAD_FAST" or a1 != arg or o2 != "LOAD_CONST" or o3 != "BINARY_SUBSCR":
            return None
        if not isinstance(a2, int | str) or isinstance(a2, bool):
            return None
        items.append(a2)
    return items


def inline_key_selector(fn: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """The C getter equivalent to a trivial key selector, else ``fn`` itself.

    Recognised (a plain one-argument function or lambda without defaults, closures or
    decorators): ``r[c]``, ``r.name`` and ``(r[c1], r[c2], ...)`` with ``c`` an int or str
    constant. The getter computes exactly what the function computes (same lookups, same
    exceptions), only without the Python frame.

    Args:
        fn: a key selector ``record -> key`` (or None).

    Returns:
        ``operator.itemgetter`` / ``operator.attrgetter`` or ``fn`` unchanged.
    """
    if type(fn) is not types.FunctionType:
        return fn
    code = fn.__code__
    if (code.co_argcount != 1 or code.co_kwonlyargcount or code.co_posonlyargcount
            or code.co_flags & (0x04 | 0x08 | 0x20 | 0x80 | 0x100 | 0x200)  # *a **k gen coro
            or code.co_freevars or code.co_cellvars):
        return fn
    ops = _ops(code)
    if not ops or ops[-1][0] != "RETURN_VALUE":
        return fn
    body = ops[:-1]
    arg = code.co_varnames[0]
    if len(body) == 2 and body[0] == ("LOAD_FAST", arg) and body[1][0] == "LOAD_ATTR":
        name = body[1][1]
        if isinstance(name, str) and "." not in name:
            return operator.attrgetter(name)
        return fn
    if body and body[-1][0] == "BUILD_TUPLE":
        items = _subscript_items(body[:-1], arg)
        if items is not None and len(items) == body[-1][1] and len(items) >= 2:
            return operator.itemgetter(*items)
        return fn
    items = _subscript_items(body, arg)
    if items is not None and len(items) == 1:
        return operator.itemgetter(items[0])
    return fn
