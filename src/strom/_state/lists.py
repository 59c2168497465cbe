"""Argument checks shared by every ``ListState`` implementation (heap, RocksDB, TTL,
operator state): list state holds no None, as in Flink."""

from __future__ import annotations

from typing import Any

__all__ = ["checked_list"]


def checked_list(values: Any) -> list[Any]:
    """``list(values)`` for ``ListState.update`` / ``add_all``, rejecting None.

    Args:
        values: an iterable of list-state elements.

    Raises:
        ValueError: ``values`` is None or contains None.
    """
    if values is None:
        msg = "a ListState cannot be updated with None; use clear() or update([])"
        raise ValueError(msg)
    out = list(values)
    if None in out:
        for v in out:  # `None in` uses ==; confirm with identity
            if v is None:
                msg = "a ListState cannot contain None"
                raise ValueError(msg)
    return out
