"""inline_key_selector: trivial selectors become C getters computing the same keys and
raising the same exceptions; everything else stays the user's function."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest

from strom._runtime.key_selectors import inline_key_selector


class Rec:
    def __init__(self, user: str) -> None:
        self.user = user


def key_first(r: Any) -> Any:
    return r[0]


OFFSET = 1


@pytest.mark.parametrize(
    ("fn", "records", "getter"),
    [
        (lambda r: r[0], [(1, "a"), [2, "b"], {0: "zero"}, "xy"], operator.itemgetter(0)),
        (key_first, [(1, "a")], operator.itemgetter(0)),
        (lambda r: r[-1], [(1, "a"), "xyz"], operator.itemgetter(-1)),
        (lambda r: r["user"], [{"user": "u1", "n": 1}], operator.itemgetter("user")),
        (lambda r: r.user, [Rec("u2")], operator.attrgetter("user")),
        (lambda r: (r[0], r[2]), [(1, 2, 3), "abc"], operator.itemgetter(0, 2)),
    ],
)
def test_inlined_getters_compute_the_same_keys(
    fn: Callable[[Any], Any], records: list[Any], getter: Any
) -> None:
    fast = inline_key_selector(fn)
    assert type(fast) is type(getter) and repr(fast) == repr(getter)
    assert fast is not None
    for r in records:
        assert fast(r) == fn(r)


@pytest.mark.parametrize(
    ("fn", "bad"),
    [
        (lambda r: r[3], (1, 2)),  # IndexError
        (lambda r: r["k"], {"x": 1}),  # KeyError
        (lambda r: r.user, 42),  # AttributeError
        (lambda r: r[0], None),  # TypeError
    ],
)
def test_inlined_getters_raise_what_the_function_raises(fn: Any, bad: Any) -> None:
    fast = inline_key_selector(fn)
    assert fast is not fn
    with pytest.raises(Exception) as slow_err:
        fn(bad)
    with pytest.raises(type(slow_err.value)):
        fast(bad)


def _closure() -> Callable[[Any], Any]:
    i = 0
    return lambda r: r[i]


@pytest.mark.parametrize(
    "fn",
    [
        lambda r: r[0] + 1,
        lambda r: r[OFFSET],  # a global: may change
        _closure(),
        lambda r, d=0: r[d],
        lambda *a: a[0],
        lambda r: (r[0],),
        lambda r: r[True],
        lambda r: r.a.b,
        lambda r: str(r),
        lambda r: r,
        operator.itemgetter(1),
        len,
    ],
)
def test_other_selectors_are_kept(fn: Any) -> None:
    assert inline_key_selector(fn) is fn


def test_none_passes_through() -> None:
    assert inline_key_selector(None) is None
