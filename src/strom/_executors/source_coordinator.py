"""SourceCoordinator: hosts a source's SplitEnumerator on the JobManager side.

Readers' split requests and events are queued and handled on the executor's loop thread;
assignments go through a :class:`ReaderGateway`: into the reader task's mailbox when the
reader runs in this process (:class:`LocalReaderGateway`), as RPC messages to its
TaskManager otherwise, so a reader never re-enters itself. ``call_async`` runs the
callable on a worker thread and the handler back on the loop thread (Flink's
``SourceCoordinatorContext.callAsync``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from strom._runtime.task.stream_task import StreamTask
from strom.connectors.source import SplitEnumerator, SplitEnumeratorContext

__all__ = ["LocalReaderGateway", "ReaderGateway", "SourceCoordinator"]


class ReaderGateway(Protocol):
    """How a coordinator reaches the readers of its source, wherever they run."""

    def assign_splits(self, subtask: int, splits: list[Any]) -> None:
        """Hand splits to reader ``subtask``."""

    def no_more_splits(self, subtask: int) -> None:
        """Tell reader ``subtask`` there are no more splits."""

    def send_event(self, subtask: int, event: Any) -> None:
        """Deliver a custom source event to reader ``subtask``."""


class LocalReaderGateway:
    """Delivers to reader tasks of this process through their mailboxes.

    Args:
        tasks: the source's reader tasks, indexed by subtask.
    """

    def __init__(self, tasks: list[StreamTask]) -> None:
        self.tasks = tasks

    def assign_splits(self, subtask: int, splits: list[Any]) -> None:
        """Queue ``add_splits`` in the reader task's mailbox."""
        task = self.tasks[subtask]
        src = task.source
        assert src is not None
        task.mailbox.append(lambda: src.add_splits(splits))

    def no_more_splits(self, subtask: int) -> None:
        """Queue ``notify_no_more_splits``."""
        task = self.tasks[subtask]
        src = task.source
        assert src is not None
        task.mailbox.append(src.notify_no_more_splits)

    def send_event(self, subtask: int, event: Any) -> None:
        """Queue ``handle_source_event`` on the reader."""
        task = self.tasks[subtask]
        src = task.source
        assert src is not None and src.reader is not None
        reader = src.reader
        task.mailbox.append(lambda: reader.handle_source_event(event))

logger = logging.getLogger(__name__)


class SourceCoordinator(SplitEnumeratorContext[Any]):
    """Runs one source's enumerator and routes its messages.

    Args:
        source: the ``Source``.
        parallelism: number of readers.
        gateway: where assignments and events for readers go.
    """

    def __init__(self, source: Any, parallelism: int, gateway: ReaderGateway) -> None:
        self.source = source
        self.parallelism = parallelism
        self.gateway = gateway
        self.enumerator: SplitEnumerator[Any, Any] | None = None
        self.requests: deque[tuple[str, int, Any]] = deque()
        self.results: deque[Callable[[], None]] = deque()
        self.periodic: list[list[Any]] = []  # [next_due_ms, period_ms, callable, handler, busy]
        self._pool: ThreadPoolExecutor | None = None
        self._registered: list[int] = []

    # -- SplitEnumeratorContext -----------------------------------------------------------
    def current_parallelism(self) -> int:
        """Number of readers."""
        return self.parallelism

    def registered_readers(self) -> list[int]:
        """Readers registered so far."""
        return list(self._registered)

    def assign_split(self, split: Any, subtask_id: int) -> None:
        """Deliver a split to a reader."""
        self.gateway.assign_splits(subtask_id, [split])

    def signal_no_more_splits(self, subtask_id: int) -> None:
        """Tell a reader there are no more splits."""
        self.gateway.no_more_splits(subtask_id)

    def send_event_to_source_reader(self, subtask_id: int, event: Any) -> None:
        """Deliver a custom event to a reader."""
        self.gateway.send_event(subtask_id, event)

    def call_async(
        self,
        callable_: Callable[[], Any],
        handler: Callable[[Any, BaseException | None], None],
        initial_delay_ms: int = 0,
        period_ms: int = 0,
    ) -> None:
        """Run ``callable_`` on a worker thread, then ``handler`` on the loop thread."""
        due = _now_ms() + max(0, initial_delay_ms)
        self.periodic.append([due, period_ms, callable_, handler, False])

    # -- driven by the executor loop ------------------------------------------------------
    def start(self, enumerator_state: Any = None) -> None:
        """Create (or restore) and start the enumerator; register every reader."""
        if enumerator_state is None:
            self.enumerator = self.source.create_enumerator(self)
        else:
            self.enumerator = self.source.restore_enumerator(self, enumerator_state)
        assert self.enumerator is not None
        self.enumerator.start()
        for i in range(self.parallelism):
            self._registered.append(i)
            self.enumerator.add_reader(i)

    def request_split(self, subtask_id: int) -> None:
        """Queue a reader's split request (called from the reader, any thread)."""
        self.requests.append(("request", subtask_id, None))

    def send_event(self, subtask_id: int, event: Any) -> None:
        """Queue a reader's custom event."""
        self.requests.append(("event", subtask_id, event))

    def process(self, now_ms: int) -> bool:
        """Handle queued requests, finished async calls and due periodic calls."""
        enumerator = self.enumerator
        if enumerator is None:
            return False
        progressed = False
        while self.requests:
            kind, subtask, event = self.requests.popleft()
            if kind == "request":
                enumerator.handle_split_request(subtask, None)
            else:
                enumerator.handle_source_event(subtask, event)
            progressed = True
        while self.results:
            self.results.popleft()()
            progressed = True
        for entry in self.periodic:
            due, _period, fn, handler, busy = entry
            if busy or now_ms < due:
                continue
            entry[4] = True
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="strom-enumerator")
            fut = self._pool.submit(fn)
            fut.add_done_callback(functools.partial(self._done, entry=entry, handler=handler))
            progressed = True
        self.periodic = [e for e in self.periodic if e[4] or e[1] > 0 or e[0] > now_ms]
        return progressed

    def _done(self, fut: Future[Any], entry: list[Any], handler: Callable[..., None]) -> None:
        err = fut.exception()
        result = None if err is not None else fut.result()

        def run() -> None:
            entry[4] = False
            if entry[1] > 0:
                entry[0] = _now_ms() + entry[1]
            else:
                entry[0] = 1 << 62  # one-shot: never again
            handler(result, err)

        self.results.append(run)

    def has_pending(self) -> bool:
        """True if requests or results wait to be handled."""
        return bool(self.requests or self.results)

    def close(self) -> None:
        """Close the enumerator and the worker thread."""
        if self.enumerator is not None:
            try:
                self.enumerator.close()
            except Exception:
                logger.exception("closing the split enumerator failed")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000
