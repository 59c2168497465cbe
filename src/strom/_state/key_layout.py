"""Byte layout of keyed state entries in RocksDB (and in RocksDB-format snapshots).

Every entry key is::

    key group (2 bytes, big-endian) | varint len | key bytes | varint len | namespace bytes
        [ | suffix ]

where key and namespace bytes come from :class:`~strom._state.serializers.KeySerializer`
and the suffix is empty for value, reducing and aggregating state, the 8-byte big-endian
sequence number of the element for list state (one entry per element, in insertion order)
and the serialized user key for map state (one entry per mapping). The length prefixes
make ``(key group, key, namespace)`` an unambiguous prefix, so all elements of one list or
map are one contiguous prefix scan, and the key-group prefix makes a key-group range one
contiguous range scan (Flink's layout, with varint instead of Flink's ambiguity markers).

Entry values are the state's value serializer output; TTL-enabled states prepend the
8-byte last-access timestamp (:class:`~strom._state.serializers.TtlSerializer`), and map
values carry a null flag (:class:`~strom._state.serializers.NullableSerializer`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from strom._state.serializers import KeySerializer, decode_varint, encode_varint

__all__ = [
    "KEY_SERIALIZER",
    "VOID_NAMESPACE_BYTES",
    "decode_entries",
    "encode_entries",
    "key_group_prefix",
    "key_part",
    "len_prefixed",
    "namespace_part",
    "prefix_end",
    "split_entry_key",
]

KEY_SERIALIZER = KeySerializer()
"""The serializer of keys, namespaces and map user keys."""

_VARINT1 = [bytes((n,)) for n in range(0x80)]
_KG_PREFIX = [kg.to_bytes(2, "big") for kg in range(1 << 15)]  # max_parallelism <= 32768


def len_prefixed(data: bytes) -> bytes:
    """``varint(len(data)) + data``."""
    n = len(data)
    return (_VARINT1[n] if n < 0x80 else encode_varint(n)) + data


VOID_NAMESPACE_BYTES = len_prefixed(KEY_SERIALIZER.serialize(None))
"""The length-prefixed encoding of the VOID namespace (``None``)."""


def key_group_prefix(key_group: int) -> bytes:
    """The 2-byte big-endian prefix of a key group."""
    return _KG_PREFIX[key_group]


def key_part(key_group: int, key: Any) -> bytes:
    """``key group | varint len | key bytes`` of ``key``."""
    return _KG_PREFIX[key_group] + len_prefixed(KEY_SERIALIZER.serialize(key))


def namespace_part(namespace: Any) -> bytes:
    """``varint len | namespace bytes`` of ``namespace``."""
    if namespace is None:
        return VOID_NAMESPACE_BYTES
    return len_prefixed(KEY_SERIALIZER.serialize(namespace))


def split_entry_key(data: bytes, start: int = 2) -> tuple[Any, Any, bytes]:
    """Decode ``(key, namespace, suffix bytes)`` from an entry key.

    Args:
        data: the entry key.
        start: where the key's length prefix starts (2 after the key group; 0 for the
            entries of RocksDB-format snapshots, which omit the key group).
    """
    n, pos = decode_varint(data, start)
    key = KEY_SERIALIZER.deserialize(data[pos : pos + n])
    pos += n
    m, pos = decode_varint(data, pos)
    ns = KEY_SERIALIZER.deserialize(data[pos : pos + m])
    return key, ns, data[pos + m :]


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``
    (None if there is none, i.e. the prefix is all ``0xff``)."""
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return None


def encode_entries(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Pack ``(entry key, entry value)`` pairs into one blob (``varint len | key |
    varint len | value`` per entry): the compact form of RocksDB-format snapshots, one
    bytes object per key group and state instead of three objects per entry."""
    buf = bytearray()
    for k, v in entries:
        n = len(k)
        buf += _VARINT1[n] if n < 0x80 else encode_varint(n)
        buf += k
        n = len(v)
        buf += _VARINT1[n] if n < 0x80 else encode_varint(n)
        buf += v
    return bytes(buf)


def decode_entries(blob: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Unpack what :func:`encode_entries` packed."""
    pos = 0
    end = len(blob)
    while pos < end:
        n, pos = decode_varint(blob, pos)
        k = blob[pos : pos + n]
        pos += n
        n, pos = decode_varint(blob, pos)
        yield k, blob[pos : pos + n]
        pos += n
