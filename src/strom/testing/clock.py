"""ManualClock: a processing-time clock that tests move by hand."""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """Processing time in epoch ms that only changes when told to.

    Args:
        start_ms: the initial time.
    """

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> int:
        """Move forward by ``ms``; return the new time."""
        self.now_ms += ms
        return self.now_ms

    def set(self, ms: int) -> None:
        """Set the time (must not go backwards).

        Raises:
            ValueError: ``ms`` is earlier than now.
        """
        if ms < self.now_ms:
            msg = f"ManualClock cannot go back from {self.now_ms} to {ms}"
            raise ValueError(msg)
        self.now_ms = ms
