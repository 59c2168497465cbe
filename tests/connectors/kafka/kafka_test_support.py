"""Helpers for the Kafka tests: topics, producing, consuming, fake runtime contexts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from strom.connectors.source import ReaderOutput, SourceReaderContext, SplitEnumeratorContext

QUIET = {"log_level": 0}
"""librdkafka: no log lines on stderr (the tests check behaviour, not logs)."""


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    # the tests use old timestamps (2023): keep records whatever their age
    topic = NewTopic(name, partitions, 1, config={"retention.ms": "-1"})
    for f in admin.create_topics([topic]).values():
        f.result(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait until metadata shows every partition
        md = admin.list_topics(name, timeout=5)
        if name in md.topics and len(md.topics[name].partitions) == partitions:
            return
        time.sleep(0.02)
    raise AssertionError(f"topic {name} not visible")


def add_partitions(bootstrap: str, name: str, total: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    for f in admin.create_partitions([NewPartitions(name, total)]).values():
        f.result(10)


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[int | None, bytes | None, bytes | None, int | None]],
    transactional_id: str | None = None,
) -> None:
    """Produce ``(partition, key, value, timestamp_ms)`` records and wait for them."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "linger.ms": 1, **QUIET}
    if transactional_id:
        conf["transactional.id"] = transactional_id
    p = Producer(conf)
    if transactional_id:
        p.init_transactions(10)
        p.begin_transaction()
    errors: list[Any] = []
    for partition, key, value, ts in records:
        kwargs: dict[str, Any] = {"on_delivery": lambda e, m: errors.append(e) if e else None}
        if partition is not None:
            kwargs["partition"] = partition
        if ts is not None:
            kwargs["timestamp"] = ts
        while True:
            try:
                p.produce(topic, value, key, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
    if transactional_id:
        p.commit_transaction(10)
    assert p.flush(10) == 0
    assert not errors, errors


def consume_all(
    bootstrap: str,
    topic: str,
    isolation: str = "read_committed",
    expect: int | None = None,
    timeout_s: float = 10.0,
) -> list[Any]:
    """Read a whole topic from the start (until every partition's end) as Messages."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-test-reader",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **QUIET,
        }
    )
    try:
        md = c.list_topics(topic, timeout=5)
        parts = sorted(md.topics[topic].partitions)
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        eof: set[int] = set()
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for m in c.consume(1000, 0.1):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(int(m.partition() or 0))
                        continue
                    raise AssertionError(err)
                eof.discard(int(m.partition() or 0))
                out.append(m)
            done = len(eof) == len(parts)
            if done and (expect is None or len(out) >= expect):
                return out
        raise AssertionError(f"timed out reading {topic}: {len(out)} records, eof {eof}")
    finally:
        c.close()


def last_stable_offset(bootstrap: str, topic: str, partition: int) -> int:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-test-lso",
            "isolation.level": "read_committed",
            **QUIET,
        }
    )
    try:
        return int(c.get_watermark_offsets(TopicPartition(topic, partition), 5, False)[1])
    finally:
        c.close()


class FakeEnumeratorContext(SplitEnumeratorContext[Any]):
    """Records assignments; runs ``call_async`` callables when :meth:`run_async` is called."""

    def __init__(self, parallelism: int) -> None:
        self.parallelism = parallelism
        self.assignments: dict[int, list[Any]] = {i: [] for i in range(parallelism)}
        self.no_more: set[int] = set()
        self.calls: list[
            tuple[Callable[[], Any], Callable[[Any, BaseException | None], None], int]
        ] = []

    def current_parallelism(self) -> int:
        return self.parallelism

    def registered_readers(self) -> list[int]:
        return list(range(self.parallelism))

    def assign_split(self, split: Any, subtask_id: int) -> None:
        self.assignments[subtask_id].append(split)

    def signal_no_more_splits(self, subtask_id: int) -> None:
        self.no_more.add(subtask_id)

    def call_async(
        self,
        callable_: Callable[[], Any],
        handler: Callable[[Any, BaseException | None], None],
        initial_delay_ms: int = 0,
        period_ms: int = 0,
    ) -> None:
        self.calls.append((callable_, handler, period_ms))

    def run_async(self) -> None:
        """Run every registered callable once (periodic ones stay registered)."""
        calls, self.calls = self.calls, []
        for fn, handler, period in calls:
            try:
                result, error = fn(), None
            except Exception as e:
                result, error = None, e
            handler(result, error)
            if period > 0:
                self.calls.append((fn, handler, period))


class FakeReaderContext(SourceReaderContext):
    def __init__(self, index: int = 0, parallelism: int = 1) -> None:
        self.index = index
        self.parallelism = parallelism

    def index_of_subtask(self) -> int:
        return self.index

    def current_parallelism(self) -> int:
        return self.parallelism

    def send_split_request(self) -> None:
        pass


class SplitOutput(ReaderOutput):
    """One split's output: collects values and timestamps."""

    def __init__(self, split_id: str) -> None:
        self.split_id = split_id
        self.values: list[Any] = []
        self.timestamps: list[int] = []

    def collect(self, value: Any, timestamp_ms: int | None = None) -> None:
        self.values.append(value)
        self.timestamps.append(-1 if timestamp_ms is None else timestamp_ms)

    def collect_batch(self, values: list[Any], timestamps_ms: list[int] | None = None) -> None:
        self.values.extend(values)
        self.timestamps.extend(timestamps_ms or [-1] * len(values))


class CollectingReaderOutput(ReaderOutput):
    """A ReaderOutput with real per-split outputs (what the runtime will provide)."""

    def __init__(self) -> None:
        self.splits: dict[str, SplitOutput] = {}
        self.released: list[str] = []
        self.main = SplitOutput("main")

    def collect(self, value: Any, timestamp_ms: int | None = None) -> None:
        self.main.collect(value, timestamp_ms)

    def collect_batch(self, values: list[Any], timestamps_ms: list[int] | None = None) -> None:
        self.main.collect_batch(values, timestamps_ms)

    def create_output_for_split(self, split_id: str) -> ReaderOutput:
        return self.splits.setdefault(split_id, SplitOutput(split_id))

    def release_output_for_split(self, split_id: str) -> None:
        self.released.append(split_id)

    def all_values(self) -> list[Any]:
        return [v for s in self.splits.values() for v in s.values] + self.main.values


def poll_until(
    reader: Any, output: ReaderOutput, done: Callable[[], bool], timeout_s: float = 10.0
) -> Any:
    """Poll ``reader`` until ``done()`` or END_OF_INPUT; return the last status."""
    from strom.connectors.source import InputStatus

    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        status = reader.poll_next(output)
        if done() or status is InputStatus.END_OF_INPUT:
            return status
        if status is InputStatus.NOTHING_AVAILABLE:
            time.sleep(0.005)
    raise AssertionError("reader did not reach the expected state in time")
