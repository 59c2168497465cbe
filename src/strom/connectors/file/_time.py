"""Duration conversion shared by the file connectors' builders."""

from __future__ import annotations

import datetime

from strom.errors import ConfigurationError

__all__ = ["to_millis"]


def to_millis(value: datetime.timedelta | int, what: str) -> int:
    """Convert a positive ``timedelta`` or int milliseconds to int milliseconds.

    Args:
        value: the duration.
        what: the option's name, for the error message.

    Raises:
        ConfigurationError: not a timedelta/int, or not positive.
    """
    if isinstance(value, datetime.timedelta):
        millis = value // datetime.timedelta(milliseconds=1)
    elif isinstance(value, int) and not isinstance(value, bool):
        millis = value
    else:
        msg = f"{what} must be a datetime.timedelta or int milliseconds, got {value!r}."
        raise ConfigurationError(msg)
    if millis <= 0:
        msg = f"{what} must be positive, got {value!r}."
        raise ConfigurationError(msg)
    return millis
