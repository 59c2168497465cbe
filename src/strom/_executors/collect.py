"""CollectSink: hands a job's records to ``execute_and_collect``'s iterator.

Batches go through a bounded queue (back-pressure on the job when the consumer is slow);
closing the iterator makes the writer drop further records and cancels the job. A
CollectSink shipped to a TaskManager keeps only its id: its writers stream batches back
over the JobManager connection (``strom._executors.client_link``), and a full queue
blocks that connection, which back-pressures the writing TaskManager.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
from strom.datastream.execution import JobClient

__all__ = ["CollectSink"]

_QUEUE_BATCHES = 64  # bounds memory when the consumer iterates slower than the job produces
_DONE = object()


class _CollectWriter(SinkWriter[Any, None]):
    def __init__(self, sink: CollectSink) -> None:
        self.sink = sink

    def write(self, value: Any, timestamp_ms: int | None) -> None:
        self.write_batch([value], None)

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        sink = self.sink
        if sink.remote:
            from strom._executors import client_link

            client_link.deliver(sink.sink_id, list(values), None)
        else:
            sink.receive(values, None)


class CollectSink(Sink[Any, None]):
    """A sink whose records are read by :meth:`iterate` on the client thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(_QUEUE_BATCHES)
        self.closed = threading.Event()
        self.sink_id = uuid.uuid4().hex
        self.remote = False
        from strom._executors import client_link

        client_link.register(self.sink_id, self)

    def __getstate__(self) -> dict[str, Any]:
        return {"sink_id": self.sink_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.remote = True

    def receive(self, values: list[Any], timestamps_ms: list[int | None] | None) -> None:
        """Queue a batch for the iterator; blocks while the queue is full (back-pressure)
        and drops the batch once the iterator was closed."""
        q, closed = self.queue, self.closed
        while not closed.is_set():
            try:
                q.put(values, timeout=0.05)
                return
            except queue.Full:
                continue

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
        """A writer feeding the queue."""
        return _CollectWriter(self)

    def iterate(self, client: JobClient, limit: int | None) -> Iterator[Any]:
        """Yield records until the job ends (or ``limit`` records); re-raise job failures."""
        done = getattr(client, "is_done", None)
        n = 0
        try:
            if limit == 0:
                return
            while True:
                try:
                    batch = self.queue.get(timeout=0.05)
                except queue.Empty:
                    if done is not None and done() and self.queue.empty():
                        client.get_job_execution_result()  # raises the failure, if any
                        return
                    continue
                for v in batch:
                    yield v
                    n += 1
                    if limit is not None and n >= limit:
                        return
        finally:
            self.closed.set()
            if done is not None and not done():
                client.cancel()
                try:
                    client.get_job_execution_result(timeout=10)
                except Exception:  # the cancellation error is expected here
                    pass
