"""Control-plane transport: ordered message connections between JM and TMs.

:class:`Connection` is the seam the Ray executor will implement with actor calls;
:class:`SocketConnection` frames cloudpickled messages (``!I`` length + payload) over a
Unix or TCP socket, and :class:`InProcessConnection` pairs two endpoints in one process
for tests (the "mock transport" of the style guide). Data records never use this path
except for the small client-bound streams (collect sink, TestingSink).
"""

from __future__ import annotations

import abc
import logging
import queue
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import cloudpickle

__all__ = ["Connection", "InProcessConnection", "SocketConnection"]

logger = logging.getLogger(__name__)

_LEN = struct.Struct("!I")

OnMessage = Callable[[Any], None]
OnClosed = Callable[[BaseException | None], None]


class Connection(abc.ABC):
    """A bidirectional, ordered stream of messages to one peer.

    ``send`` may be called from any thread; messages are delivered to ``on_message`` on
    one reader thread in send order, and ``on_closed`` is called once when the peer goes
    away (None for a clean close, else the error).
    """

    @abc.abstractmethod
    def send(self, message: Any) -> None:
        """Send a message.

        Raises:
            ConnectionError: the connection is closed or broken.
        """

    @abc.abstractmethod
    def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        """Start delivering received messages."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent)."""


class SocketConnection(Connection):
    """Length-prefixed cloudpickle frames over a connected stream socket.

    Args:
        sock: the connected socket.
        name: thread name suffix for logs.
    """

    def __init__(self, sock: socket.socket, name: str = "") -> None:
        self.sock = sock
        self.name = name
        self._lock = threading.Lock()
        self._closed = False

    def send(self, message: Any) -> None:
        """Pickle and send a message (thread-safe)."""
        payload = cloudpickle.dumps(message, 5)
        data = _LEN.pack(len(payload)) + payload
        with self._lock:
            if self._closed:
                msg = f"connection {self.name} is closed"
                raise ConnectionError(msg)
            self.sock.sendall(data)

    def recv(self) -> Any:
        """Receive one message (blocking); None at EOF."""
        head = self._read_exactly(_LEN.size)
        if head is None:
            return None
        (n,) = _LEN.unpack(head)
        body = self._read_exactly(n)
        if body is None:
            return None
        return cloudpickle.loads(body)

    def _read_exactly(self, n: int) -> bytes | None:
        buf = bytearray(n)
        mv = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(mv[got:])
            if k == 0:
                return None
            got += k
        return bytes(buf)

    def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        """Deliver messages on a daemon reader thread."""

        def loop() -> None:
            error: BaseException | None = None
            try:
                while True:
                    msg = self.recv()
                    if msg is None:
                        break
                    on_message(msg)
            except BaseException as e:
                error = e
            self._closed = True
            on_closed(None if isinstance(error, OSError) and self._closed_by_us else error)

        self._closed_by_us = False
        threading.Thread(target=loop, name=f"strom-rpc-{self.name}", daemon=True).start()

    def close(self) -> None:
        """Shut the socket down; the reader thread sees EOF."""
        self._closed_by_us = True
        with self._lock:
            self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class InProcessConnection(Connection):
    """One endpoint of an in-process pair (messages are pickled, as on the wire)."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.peer: InProcessConnection | None = None
        self._closed = False

    @staticmethod
    def pair() -> tuple[InProcessConnection, InProcessConnection]:
        """Two connected endpoints."""
        a, b = InProcessConnection(), InProcessConnection()
        a.peer, b.peer = b, a
        return a, b

    def send(self, message: Any) -> None:
        """Deliver a pickled copy to the peer."""
        if self._closed or self.peer is None or self.peer._closed:
            msg = "in-process connection is closed"
            raise ConnectionError(msg)
        self.peer.inbox.put(cloudpickle.dumps(message, 5))

    def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        """Deliver messages on a daemon thread."""

        def loop() -> None:
            while True:
                item = self.inbox.get()
                if item is None:
                    on_closed(None)
                    return
                on_message(cloudpickle.loads(item))

        threading.Thread(target=loop, name="strom-rpc-inprocess", daemon=True).start()

    def close(self) -> None:
        """Close both ends."""
        if not self._closed:
            self._closed = True
            self.inbox.put(None)
            if self.peer is not None and not self.peer._closed:
                self.peer.close()
