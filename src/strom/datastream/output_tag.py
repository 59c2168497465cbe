"""OutputTag: names a side output of an operator (Flink's ``OutputTag``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strom.errors import InvalidProgramError

__all__ = ["OutputTag"]


@dataclass(frozen=True)
class OutputTag:
    """Identifies a side output stream by name.

    Emit with ``ctx.output(tag, value)`` inside a process function; read with
    ``stream.get_side_output(tag)``. Two tags with the same name are the same output.

    Args:
        tag_id: the side output's name (non-empty str).
        type_info: optional type hint of its records (kept for PyFlink compatibility).

    Raises:
        InvalidProgramError: the name is empty or not a str.
    """

    tag_id: str
    type_info: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.tag_id, str) or not self.tag_id:
            msg = f"OutputTag needs a non-empty str name, got {self.tag_id!r}"
            raise InvalidProgramError(msg)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputTag) and other.tag_id == self.tag_id

    def __hash__(self) -> int:
        return hash(("OutputTag", self.tag_id))

    @property
    def name(self) -> str:
        """The side output's name."""
        return self.tag_id
