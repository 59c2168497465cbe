"""Typing shims for Python 3.11 (``typing.override`` arrived in 3.12)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

__all__ = ["override"]

_F = TypeVar("_F", bound=Any)
"""A decorated method."""

if TYPE_CHECKING:
    from typing_extensions import override
else:

    def override(method: _F) -> _F:
        """Mark ``method`` as overriding a base method (checked by mypy; no-op at run time)."""
        return method
