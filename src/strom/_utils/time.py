"""Duration helpers: public APIs take ``timedelta`` or int milliseconds; internals use int ms."""

from __future__ import annotations

from datetime import timedelta

from strom.errors import ConfigurationError

__all__ = ["to_millis"]

_ONE_MILLISECOND = timedelta(milliseconds=1)


def to_millis(duration: timedelta | int, *, name: str = "duration") -> int:
    """Convert a public duration argument to non-negative int milliseconds.

    Public Strom APIs accept a duration either as a ``datetime.timedelta`` or as an
    ``int`` number of milliseconds. A ``timedelta`` is truncated to whole milliseconds,
    as Flink's ``Duration.toMillis()`` does (so ``timedelta(microseconds=1500)`` is 1).

    Args:
        duration: a ``timedelta`` or an ``int`` of milliseconds, ``>= 0``.
        name: the parameter's name, used in the error message.

    Returns:
        The duration in milliseconds.

    Raises:
        ConfigurationError: ``duration`` is negative, or is not a ``timedelta`` or an
            ``int`` (``bool`` and ``float`` are rejected: ``True`` is not a duration,
            and a float leaves the unit ambiguous).
    """
    if type(duration) is int:
        millis = duration
    elif isinstance(duration, timedelta):
        millis = duration // _ONE_MILLISECOND
        if duration < timedelta(0):
            millis = -1  # reported below; floor division would hide e.g. -1 microsecond
    else:
        if isinstance(duration, float):
            hint = f"; pass timedelta(seconds={duration!r}) or int milliseconds"
        else:
            hint = ""
        msg = (
            f"{name} must be a datetime.timedelta or an int number of milliseconds, "
            f"got {type(duration).__name__} {duration!r}{hint}"
        )
        raise ConfigurationError(msg)
    if millis < 0:
        msg = f"{name} must not be negative, got {duration!r}"
        raise ConfigurationError(msg)
    return millis
