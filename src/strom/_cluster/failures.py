"""Shipping exceptions from TaskManagers to the client with their causes and tracebacks.

Python does not pickle ``__cause__`` or ``__traceback__``, so :func:`ship_exception`
walks the cause chain and pickles each exception on its own, with its formatted frames;
:func:`rebuild_exception` re-links the chain in the client and attaches each remote
traceback as an exception note (PEP 678), so ``traceback.format_exception`` shows where
the failure happened in the TaskManager. An exception that cannot be unpickled becomes a
:class:`~strom._cluster.errors.RemoteExceptionError` with the original type and message.
"""

from __future__ import annotations

import itertools
import traceback

import cloudpickle

from strom._cluster.errors import RemoteExceptionError
from strom._cluster.rpc.messages import RemoteFailure

__all__ = ["rebuild_exception", "ship_exception"]

_MAX_CHAIN = 16  # longer cause chains are cut: the outermost errors carry the context


def ship_exception(exc: BaseException) -> RemoteFailure:
    """Capture ``exc`` and its causes (explicit ``__cause__`` or implicit context)."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen and len(chain) < _MAX_CHAIN:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ if e.__cause__ is not None else (
            None if e.__suppress_context__ else e.__context__
        )
    pickled: list[bytes | None] = []
    for item in chain:
        try:
            data: bytes | None = cloudpickle.dumps(item, 5)
            cloudpickle.loads(data)  # some exceptions pickle but cannot be rebuilt
        except Exception:
            data = None
        pickled.append(data)
    return RemoteFailure(
        chain=pickled,
        descriptions=[
            (f"{type(x).__module__}.{type(x).__qualname__}", str(x)) for x in chain
        ],
        tracebacks=["".join(traceback.format_tb(x.__traceback__)) for x in chain],
    )


def rebuild_exception(failure: RemoteFailure, origin: str) -> BaseException:
    """Rebuild the shipped exception chain in this process.

    Args:
        failure: what :func:`ship_exception` captured.
        origin: where it happened, for the traceback notes (e.g. ``"TaskManager tm-1"``).

    Returns:
        The outermost exception, its causes linked through ``__cause__``.
    """
    rebuilt: list[BaseException] = []
    for data, (type_name, text), tb in zip(
        failure.chain, failure.descriptions, failure.tracebacks
    ):
        exc: BaseException | None = None
        if data is not None:
            try:
                obj = cloudpickle.loads(data)
                exc = obj if isinstance(obj, BaseException) else None
            except Exception:
                exc = None
        if exc is None:
            exc = RemoteExceptionError(f"{type_name}: {text}", type_name)
        if tb:
            exc.add_note(f"Traceback in {origin} (most recent call last):\n{tb.rstrip()}")
        rebuilt.append(exc)
    for outer, inner in itertools.pairwise(rebuilt):
        outer.__cause__ = inner
    return rebuilt[0]
