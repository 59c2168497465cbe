"""A minimal Kafka-protocol client for the transaction coordinator (recovery only).

librdkafka (confluent-kafka) cannot resume a transaction that another producer instance
started, which exactly-once recovery needs: a checkpoint holds *pre-committed*
transactions whose producer died with its process, and they must be committed after the
restart. Flink's Java connector does this by injecting the producer id and epoch into a
fresh producer (``FlinkKafkaInternalProducer.resumeTransaction``) and sending
``EndTxn``. This module speaks just enough of the Kafka wire protocol to do the same:

- ``FindCoordinator`` (v1): which broker coordinates a transactional id;
- ``DescribeTransactions`` (v0, Kafka >= 3.0): state, producer id and epoch of a
  transactional id;
- ``EndTxn`` (v1): commit (or abort) that transaction with its producer id and epoch;
- ``InitProducerId`` (v1): fence a transactional id (aborting its open transaction) and
  learn its new epoch; epoch 0 means the id was never used before.

Only PLAINTEXT and SSL listeners are supported (no SASL). Every call retries the
transient coordinator errors (loading, moved, concurrent transactions) until a deadline.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from strom.errors import ConfigurationError, ConnectorError

__all__ = [
    "KafkaProtocolError",
    "TransactionCoordinatorClient",
    "TransactionDescription",
]

logger = logging.getLogger(__name__)

R = TypeVar("R")
"""What a parsed response yields."""

# Kafka API keys and the versions used (all verified against the broker's ApiVersions).
_API_FIND_COORDINATOR = 10
_API_INIT_PRODUCER_ID = 22
_API_END_TXN = 26
_API_DESCRIBE_TRANSACTIONS = 65
_COORDINATOR_TYPE_TRANSACTION = 1

# Kafka error codes handled here (org.apache.kafka.common.protocol.Errors).
NONE = 0
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
CONCURRENT_TRANSACTIONS = 51
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105

_RETRIABLE = frozenset(
    {
        COORDINATOR_LOAD_IN_PROGRESS,
        COORDINATOR_NOT_AVAILABLE,
        NOT_COORDINATOR,
        CONCURRENT_TRANSACTIONS,
    }
)
_RETRY_BACKOFF_S = 0.02  # first back-off; doubles up to _RETRY_BACKOFF_MAX_S
_RETRY_BACKOFF_MAX_S = 0.5  # Kafka's retry.backoff.max.ms is 1 s; recovery is latency-bound
_MAX_FRAME_BYTES = 64 * 1024 * 1024  # refuse absurd frames (a non-Kafka peer on the port)


class KafkaProtocolError(ConnectorError):
    """The broker answered a transaction request with a non-retriable error code.

    Attributes:
        error_code: the Kafka error code (``org.apache.kafka.common.protocol.Errors``).
    """

    def __init__(self, message: str, error_code: int) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True)
class TransactionDescription:
    """What ``DescribeTransactions`` reports for one transactional id.

    Attributes:
        transactional_id: the id.
        state: ``Empty``, ``Ongoing``, ``PrepareCommit``, ``PrepareAbort``,
            ``CompleteCommit``, ``CompleteAbort``, ``Dead`` or ``PrepareEpochFence``.
        producer_id: the producer id bound to the transactional id.
        producer_epoch: its current epoch.
    """

    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int


class _Writer:
    """Big-endian Kafka primitive encoder."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def int8(self, v: int) -> _Writer:
        self.parts.append(struct.pack(">b", v))
        return self

    def int16(self, v: int) -> _Writer:
        self.parts.append(struct.pack(">h", v))
        return self

    def int32(self, v: int) -> _Writer:
        self.parts.append(struct.pack(">i", v))
        return self

    def int64(self, v: int) -> _Writer:
        self.parts.append(struct.pack(">q", v))
        return self

    def string(self, v: str | None) -> _Writer:
        if v is None:
            return self.int16(-1)
        b = v.encode()
        self.int16(len(b))
        self.parts.append(b)
        return self

    def uvarint(self, v: int) -> _Writer:
        out = bytearray()
        while True:
            byte = v & 0x7F
            v >>= 7
            if v:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                break
        self.parts.append(bytes(out))
        return self

    def compact_string(self, v: str) -> _Writer:
        b = v.encode()
        self.uvarint(len(b) + 1)
        self.parts.append(b)
        return self

    def bytes(self) -> bytes:
        return b"".join(self.parts)


class _Reader:
    """Big-endian Kafka primitive decoder."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _unpack(self, fmt: str, size: int) -> Any:
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return v

    def int16(self) -> int:
        return int(self._unpack(">h", 2))

    def int32(self) -> int:
        return int(self._unpack(">i", 4))

    def int64(self) -> int:
        return int(self._unpack(">q", 8))

    def string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        v = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return v

    def uvarint(self) -> int:
        shift = 0
        result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def compact_string(self) -> str | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        v = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return v

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.pos += self.uvarint()  # size, then skip the value


class _Connection:
    """One blocking socket to one broker, with request/response framing."""

    def __init__(
        self, host: str, port: int, timeout_s: float, ssl_context: ssl.SSLContext | None
    ) -> None:
        sock = socket.create_connection((host, port), timeout=timeout_s)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.correlation_id = 0

    def request(self, api_key: int, version: int, body: bytes, flexible: bool) -> _Reader:
        self.correlation_id += 1
        header = (
            _Writer()
            .int16(api_key)
            .int16(version)
            .int32(self.correlation_id)
            .string("strom-txn-recovery")
        )
        if flexible:
            header.uvarint(0)  # request header v2: no tagged fields
        payload = header.bytes() + body
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", self._read(4))[0]
        if not 0 <= size <= _MAX_FRAME_BYTES:
            msg = f"invalid Kafka response frame size {size}: is this port a Kafka listener?"
            raise ConnectorError(msg)
        r = _Reader(self._read(size))
        if r.int32() != self.correlation_id:
            msg = "Kafka response correlation id mismatch"
            raise ConnectorError(msg)
        if flexible:
            r.skip_tagged_fields()  # response header v1
        return r

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                msg = "Kafka broker closed the connection"
                raise ConnectionError(msg)
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:  # pragma: no cover - closing a dead socket
            pass


def _parse_bootstrap(servers: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for item in servers.split(","):
        item = item.strip()
        if not item:
            continue
        if "://" in item:
            item = item.split("://", 1)[1]
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            msg = f"bootstrap server {item!r} is not 'host:port'"
            raise ConfigurationError(msg)
        out.append((host.strip("[]"), int(port)))
    if not out:
        msg = "bootstrap.servers is empty"
        raise ConfigurationError(msg)
    return out


class TransactionCoordinatorClient:
    """Talks to the transaction coordinator of transactional ids (see the module docstring).

    Args:
        config: the librdkafka producer configuration; ``bootstrap.servers``,
            ``security.protocol`` (PLAINTEXT or SSL) and ``ssl.ca.location`` are used.
        timeout_s: how long one public call may take, retries included (seconds).

    Raises:
        ConfigurationError: a SASL security protocol (not supported here).
    """

    def __init__(self, config: dict[str, Any], timeout_s: float = 30.0) -> None:
        self._bootstrap = _parse_bootstrap(str(config.get("bootstrap.servers", "")))
        protocol = str(config.get("security.protocol", "plaintext")).lower()
        if protocol not in ("plaintext", "ssl"):
            msg = (
                f"Kafka exactly-once recovery supports security.protocol PLAINTEXT or SSL, "
                f"not {protocol!r}: pre-committed transactions could not be committed after a"
                " restart. Use DeliveryGuarantee.AT_LEAST_ONCE on this cluster."
            )
            raise ConfigurationError(msg)
        self._ssl: ssl.SSLContext | None = None
        if protocol == "ssl":
            self._ssl = ssl.create_default_context(cafile=config.get("ssl.ca.location"))
        self._timeout_s = timeout_s
        self._connections: dict[tuple[str, int], _Connection] = {}
        self._coordinators: dict[str, tuple[str, int]] = {}

    # -- public calls -----------------------------------------------------------------------
    def describe_transaction(self, transactional_id: str) -> TransactionDescription | None:
        """Return the state of ``transactional_id``, or None if the broker never saw it.

        Raises:
            KafkaProtocolError: a non-retriable error (e.g. not authorised).
            ConnectorError: the coordinator could not be reached before the timeout.
        """
        body = (
            _Writer().uvarint(2).compact_string(transactional_id).uvarint(0).bytes()
        )  # compact array of one id, then no tagged fields

        def parse(r: _Reader) -> tuple[int, TransactionDescription | None]:
            r.int32()  # throttle_time_ms
            n = r.uvarint() - 1
            if n != 1:
                msg = f"DescribeTransactions returned {n} states for one id"
                raise ConnectorError(msg)
            error = r.int16()
            tid = r.compact_string() or transactional_id
            state = r.compact_string() or ""
            r.int32()  # transaction_timeout_ms
            r.int64()  # transaction_start_time_ms
            pid = r.int64()
            epoch = r.int16()
            if error == TRANSACTIONAL_ID_NOT_FOUND:
                return NONE, None
            return error, TransactionDescription(tid, state, pid, epoch)

        return self._call(
            transactional_id,
            _API_DESCRIBE_TRANSACTIONS,
            0,
            body,
            True,
            parse,
            "describe the transaction",
        )

    def end_transaction(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool
    ) -> None:
        """Commit (``commit=True``) or abort the open transaction of ``transactional_id``.

        Idempotent for a transaction already completed the same way.

        Raises:
            KafkaProtocolError: e.g. ``PRODUCER_FENCED`` (a newer producer took the id) or
                ``INVALID_TXN_STATE`` (the transaction was completed the other way).
            ConnectorError: the coordinator could not be reached before the timeout.
        """
        body = (
            _Writer()
            .string(transactional_id)
            .int64(producer_id)
            .int16(producer_epoch)
            .int8(1 if commit else 0)
            .bytes()
        )

        def parse(r: _Reader) -> tuple[int, None]:
            r.int32()  # throttle_time_ms
            return r.int16(), None

        self._call(
            transactional_id,
            _API_END_TXN,
            1,
            body,
            False,
            parse,
            "commit the transaction" if commit else "abort the transaction",
        )

    def init_producer_id(
        self, transactional_id: str, transaction_timeout_ms: int
    ) -> tuple[int, int]:
        """Fence ``transactional_id`` (aborting its open transaction); return (pid, epoch).

        Epoch 0 means the id was never used before this call.

        Raises:
            KafkaProtocolError: a non-retriable error.
            ConnectorError: the coordinator could not be reached before the timeout.
        """
        body = _Writer().string(transactional_id).int32(transaction_timeout_ms).bytes()

        def parse(r: _Reader) -> tuple[int, tuple[int, int]]:
            r.int32()  # throttle_time_ms
            error = r.int16()
            return error, (r.int64(), r.int16())

        return self._call(
            transactional_id,
            _API_INIT_PRODUCER_ID,
            1,
            body,
            False,
            parse,
            "fence the transactional id",
        )

    def close(self) -> None:
        """Close every connection."""
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    # -- plumbing ---------------------------------------------------------------------------
    def _call(
        self,
        transactional_id: str,
        api_key: int,
        version: int,
        body: bytes,
        flexible: bool,
        parse: Callable[[_Reader], tuple[int, R]],
        what: str,
    ) -> R:
        deadline = time.monotonic() + self._timeout_s
        backoff = _RETRY_BACKOFF_S
        last: str = "no attempt"
        while True:
            try:
                conn = self._coordinator(transactional_id)
                error, result = parse(conn.request(api_key, version, body, flexible))
            except (OSError, struct.error) as e:
                last = f"{type(e).__name__}: {e}"
                self.close()
            else:
                if error == NONE:
                    return result
                if error not in _RETRIABLE:
                    msg = (
                        f"Kafka refused to {what} for transactional id {transactional_id!r}:"
                        f" error code {error}"
                    )
                    raise KafkaProtocolError(msg, error)
                last = f"error code {error}"
                if error in (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE):
                    self._coordinators.pop(transactional_id, None)
            if time.monotonic() + backoff > deadline:
                msg = (
                    f"could not {what} for transactional id {transactional_id!r} within "
                    f"{self._timeout_s:.0f} s (last: {last})"
                )
                raise ConnectorError(msg)
            time.sleep(backoff)
            backoff = min(backoff * 2, _RETRY_BACKOFF_MAX_S)

    def _connect(self, address: tuple[str, int]) -> _Connection:
        conn = self._connections.get(address)
        if conn is None:
            conn = _Connection(address[0], address[1], self._timeout_s, self._ssl)
            self._connections[address] = conn
        return conn

    def _coordinator(self, transactional_id: str) -> _Connection:
        address = self._coordinators.get(transactional_id)
        if address is None:
            address = self._find_coordinator(transactional_id)
            self._coordinators[transactional_id] = address
        return self._connect(address)

    def _find_coordinator(self, transactional_id: str) -> tuple[str, int]:
        body = _Writer().string(transactional_id).int8(_COORDINATOR_TYPE_TRANSACTION).bytes()
        errors: list[str] = []
        for address in self._bootstrap:
            try:
                r = self._connect(address).request(_API_FIND_COORDINATOR, 1, body, False)
            except OSError as e:
                self._connections.pop(address, None)
                errors.append(f"{address[0]}:{address[1]}: {e}")
                continue
            r.int32()  # throttle_time_ms
            error = r.int16()
            r.string()  # error_message
            r.int32()  # node_id
            host = r.string() or address[0]
            port = r.int32()
            if error != NONE:
                errors.append(f"{address[0]}:{address[1]}: error code {error}")
                if error in _RETRIABLE:
                    continue
                msg = f"FindCoordinator for {transactional_id!r} failed: error code {error}"
                raise KafkaProtocolError(msg, error)
            return host, port
        msg = f"no transaction coordinator for {transactional_id!r}: {'; '.join(errors)}"
        raise OSError(msg)
