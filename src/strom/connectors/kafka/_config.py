"""Shared librdkafka configuration helpers for the Kafka source and sink."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from strom.errors import ConfigurationError

__all__ = ["STROM_ONLY_KEYS", "client_config", "java_string_hash", "parse_bool", "parse_int"]

STROM_ONLY_KEYS = frozenset(
    {
        "partition.discovery.interval.ms",
        "commit.offsets.on.checkpoint",
        "max.poll.records",
        "client.id.prefix",
    }
)
"""Source/sink properties that Strom interprets itself (Flink's names); they are not
passed to librdkafka."""


def client_config(
    bootstrap_servers: str, properties: Iterable[tuple[str, Any]], **overrides: Any
) -> dict[str, Any]:
    """Build a librdkafka configuration: user properties, then Strom's required settings.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``.
        properties: user ``set_property`` pairs (Strom-only keys are dropped).
        **overrides: settings Strom must control; ``None`` values are skipped; keys use
            ``_`` for ``.``.
    """
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    for k, v in properties:
        if k not in STROM_ONLY_KEYS:
            conf[k] = v
    for k, v in overrides.items():
        if v is not None:
            conf[k.replace("_", ".")] = v
    return conf


def parse_int(props: Mapping[str, Any], key: str, default: int) -> int:
    """Read an int property (int or decimal string).

    Raises:
        ConfigurationError: not an int.
    """
    if key not in props:
        return default
    v = props[key]
    try:
        if isinstance(v, bool):
            raise ValueError
        return int(v)
    except (TypeError, ValueError) as e:
        msg = f"property {key!r} must be an integer, got {v!r}"
        raise ConfigurationError(msg) from e


def parse_bool(props: Mapping[str, Any], key: str, default: bool) -> bool:
    """Read a bool property (bool or ``"true"``/``"false"``).

    Raises:
        ConfigurationError: not a bool.
    """
    if key not in props:
        return default
    v = props[key]
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    msg = f"property {key!r} must be true or false, got {v!r}"
    raise ConfigurationError(msg)


def java_string_hash(s: str) -> int:
    """Java's ``String.hashCode`` (32-bit signed), for Flink-compatible partition ownership.

    Python's ``hash()`` is salted per process, so it cannot be used to agree on owners.
    """
    h = 0
    data = s.encode("utf-16-be")  # Java strings are UTF-16 code units
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h
