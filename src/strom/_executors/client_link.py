"""Client-bound record streams: how sinks hand records to objects in the client process.

``execute_and_collect``'s :class:`~strom._executors.collect.CollectSink` and
``strom.testing.TestingSink`` keep their records in the client. In-process they append
directly. Shipped to a TaskManager, their writers call :func:`deliver`, which the
TaskManager routes over its JobManager connection as ``ClientData`` messages (in order,
ahead of the subtask's ``TaskFinished``); the JobManager calls :func:`dispatch`, which
finds the receiver registered under that id.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["ClientReceiver", "deliver", "dispatch", "install_remote_sender", "register"]


class ClientReceiver(Protocol):
    """An object in the client process that accepts records from remote writers."""

    def receive(self, values: list[Any], timestamps: list[int | None] | None) -> None:
        """Take a batch; may block to back-pressure the sender."""


RemoteSender = Callable[[str, list[Any], "list[int | None] | None"], None]

_receivers: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_lock = threading.Lock()
_remote_sender: RemoteSender | None = None


def register(receiver_id: str, receiver: ClientReceiver) -> None:
    """Register a receiver in this (client) process; held weakly."""
    with _lock:
        _receivers[receiver_id] = receiver


def install_remote_sender(sender: RemoteSender | None) -> None:
    """Route :func:`deliver` to the JobManager (called once in a TaskManager)."""
    global _remote_sender
    _remote_sender = sender


def deliver(
    receiver_id: str, values: list[Any], timestamps: list[int | None] | None
) -> None:
    """Send records to the receiver ``receiver_id`` wherever this writer runs."""
    sender = _remote_sender
    if sender is not None:
        sender(receiver_id, values, timestamps)
    else:
        dispatch(receiver_id, values, timestamps)


def dispatch(
    receiver_id: str, values: list[Any], timestamps: list[int | None] | None
) -> None:
    """Hand records to a registered receiver (dropped if it was garbage collected)."""
    with _lock:
        receiver = _receivers.get(receiver_id)
    if receiver is not None:
        receiver.receive(values, timestamps)
