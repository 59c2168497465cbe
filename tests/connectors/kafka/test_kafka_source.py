"""KafkaSource against a real broker: enumeration, reading, offsets, bounded mode, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kafka_test_support import (
    QUIET,
    CollectingReaderOutput,
    FakeEnumeratorContext,
    FakeReaderContext,
    add_partitions,
    poll_until,
    produce,
)

from strom.connectors.kafka import (
    DeserializationErrorPolicy,
    DeserializationFailureRouter,
    JsonDeserializationSchema,
    KafkaDeserializationFailure,
    KafkaPartitionSplit,
    KafkaRecord,
    KafkaRecordDeserializationSchema,
    KafkaSource,
    OffsetResetStrategy,
    OffsetsInitializer,
    SimpleStringSchema,
)
from strom.connectors.kafka._enumerator import split_owner
from strom.connectors.source import InputStatus
from strom.datastream.environment import StreamExecutionEnvironment
from strom.datastream.output_tag import OutputTag
from strom.datastream.watermark import MIN_WATERMARK_MS, WatermarkOutput, WatermarkStrategy
from strom.errors import ConfigurationError, ConnectorError, DeserializationError, JobExecutionError
from strom.testing import TestingSink

pytestmark = pytest.mark.kafka

BASE_TS = 1_700_000_000_000


def fill(bootstrap: str, topic: str, partitions: int, per_partition: int, start: int = 0) -> None:
    """Value ``p{partition}-{i}``, timestamp BASE_TS + i, i in [start, start + per_partition)."""
    produce(
        bootstrap,
        topic,
        [
            (p, f"k{i}".encode(), f"p{p}-{i}".encode(), BASE_TS + i)
            for p in range(partitions)
            for i in range(start, start + per_partition)
        ],
    )


def builder(bootstrap: str, topic: str) -> Any:
    return (
        KafkaSource.builder()
        .set_bootstrap_servers(bootstrap)
        .set_topics(topic)
        .set_value_only_deserializer(SimpleStringSchema())
        .set_properties(QUIET)
    )


def enumerate_splits(source: KafkaSource, parallelism: int) -> tuple[Any, FakeEnumeratorContext]:
    ctx = FakeEnumeratorContext(parallelism)
    enumerator = source.create_enumerator(ctx)
    enumerator.start()
    for i in range(parallelism):
        enumerator.add_reader(i)
    ctx.run_async()
    return enumerator, ctx


def read_all(source: KafkaSource, splits: list[KafkaPartitionSplit], expect: int) -> Any:
    reader = source.create_reader(FakeReaderContext())
    reader.add_splits(splits)
    reader.start()
    out = CollectingReaderOutput()
    poll_until(reader, out, lambda: len(out.all_values()) >= expect)
    return reader, out


def wait_committed(bootstrap: str, group: str, tps: list[tuple[str, int]], offset: int) -> None:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **QUIET})
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = c.committed([TopicPartition(t, p) for t, p in tps], 5)
            if all(tp.offset == offset for tp in got):
                return
            time.sleep(0.02)
        raise AssertionError(f"offsets of {group} not committed: {got}")
    finally:
        c.close()


# -- enumeration -------------------------------------------------------------------------------


def test_enumerator_assigns_partitions_evenly_and_discovers_new_ones(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(4)
    source = (
        builder(kafka_bootstrap, topic).set_property("partition.discovery.interval.ms", 50).build()
    )
    enumerator, ctx = enumerate_splits(source, 2)
    assigned = {r: sorted(s.partition for s in ss) for r, ss in ctx.assignments.items()}
    assert sorted(p for ps in assigned.values() for p in ps) == [0, 1, 2, 3]
    assert [len(ps) for ps in assigned.values()] == [2, 2]  # even
    for reader, parts in assigned.items():  # Flink's ownership formula
        assert all(split_owner(topic, p, 2) == reader for p in parts)
    assert not ctx.no_more  # periodic discovery: more splits may come
    assert enumerator.snapshot_state(1).assigned_partitions == tuple((topic, p) for p in range(4))

    fill(kafka_bootstrap, topic, 4, 3)
    add_partitions(kafka_bootstrap, topic, 6)
    fill_new = [(p, None, b"new", BASE_TS) for p in (4, 5)]
    produce(kafka_bootstrap, topic, fill_new)
    ctx.run_async()
    new = [s for ss in ctx.assignments.values() for s in ss if s.partition >= 4]
    assert sorted(s.partition for s in new) == [4, 5]
    assert all(s.starting_offset == 0 for s in new)  # new partitions start at earliest
    for s in new:
        assert s in ctx.assignments[split_owner(topic, s.partition, 2)]
    ctx.run_async()  # nothing new: nothing assigned twice
    assert sum(len(ss) for ss in ctx.assignments.values()) == 6
    enumerator.close()


def test_enumerator_restores_and_bounded_signals_no_more_splits(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(3)
    fill(kafka_bootstrap, topic, 3, 5)
    source = builder(kafka_bootstrap, topic).set_bounded(OffsetsInitializer.latest()).build()
    assert source.partition_discovery_interval_ms == 0
    enumerator, ctx = enumerate_splits(source, 4)
    splits = [s for ss in ctx.assignments.values() for s in ss]
    assert sorted((s.partition, s.starting_offset, s.stopping_offset) for s in splits) == [
        (0, 0, 5),
        (1, 0, 5),
        (2, 0, 5),
    ]
    assert ctx.no_more == {0, 1, 2, 3}
    state = enumerator.snapshot_state(7)
    enumerator.close()
    # a restored enumerator knows what was assigned and assigns nothing twice
    ctx2 = FakeEnumeratorContext(4)
    restored = source.restore_enumerator(ctx2, state)
    restored.start()
    ctx2.run_async()
    assert sum(len(ss) for ss in ctx2.assignments.values()) == 0
    assert ctx2.no_more == {0, 1, 2, 3}
    # splits of a failed reader come back and are reassigned
    restored.add_splits_back(ctx.assignments[split_owner(topic, 0, 4)], 0)
    assert [s.partition for s in ctx2.assignments[split_owner(topic, 0, 4)]] == [0]
    restored.close()


def test_topic_pattern_and_explicit_partitions(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    a = new_topic(2)
    source = (
        KafkaSource.builder()
        .set_bootstrap_servers(kafka_bootstrap)
        .set_topic_pattern(a[:-6] + ".*")
        .set_value_only_deserializer(SimpleStringSchema())
        .build()
    )
    assert source.test_connection() == [(a, 0), (a, 1)]
    only = (
        KafkaSource.builder()
        .set_bootstrap_servers(kafka_bootstrap)
        .set_partitions([(a, 1)])
        .set_value_only_deserializer(SimpleStringSchema())
        .build()
    )
    assert only.test_connection() == [(a, 1)]
    missing = builder(kafka_bootstrap, "no-such-topic-x").build()
    with pytest.raises(ConnectorError, match="do not exist"):
        missing.test_connection()


# -- reading, snapshots, offsets -----------------------------------------------------------------


def test_reader_emits_per_partition_with_kafka_timestamps_and_resumes_exactly(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(4)
    fill(kafka_bootstrap, topic, 4, 50)
    source = builder(kafka_bootstrap, topic).set_property("max.poll.records", 30).build()
    _, ctx = enumerate_splits(source, 1)
    splits = ctx.assignments[0]

    reader, out = read_all(source, splits, 60)
    # every partition's records went to its own split output, in order, with Kafka time
    for split_id, o in out.splits.items():
        p = int(split_id.rsplit("-", 1)[1])
        n = len(o.values)
        assert o.values == [f"p{p}-{i}" for i in range(n)]
        assert o.timestamps == [BASE_TS + i for i in range(n)]
    assert out.main.values == []
    first = out.all_values()
    snapshot = reader.snapshot_state(1)
    assert sorted(s.split_id() for s in snapshot) == [f"{topic}-{p}" for p in range(4)]
    assert sum(s.starting_offset for s in snapshot) == len(first)
    reader.close()

    # a fresh reader restored from the snapshot resumes exactly at the offsets
    restored, out2 = read_all(source, snapshot, 200 - len(first))
    rest = out2.all_values()
    assert sorted(first + rest) == sorted(f"p{p}-{i}" for p in range(4) for i in range(50))
    assert restored.snapshot_state(2) == [s.with_starting_offset(50) for s in snapshot]
    restored.close()


@pytest.mark.parametrize("mode", ["earliest", "latest", "committed", "timestamp", "offsets"])
def test_starting_offsets(mode: str, kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic(2)
    fill(kafka_bootstrap, topic, 2, 10)  # i in 0..9, timestamps BASE_TS + i
    group = f"g-{topic}"
    if mode == "committed":
        # commit offsets through a reader's checkpoint completion (monitoring commits)
        src = builder(kafka_bootstrap, topic).set_group_id(group).build()
        _, ctx = enumerate_splits(src, 1)
        reader = src.create_reader(FakeReaderContext())
        reader.add_splits([s.with_starting_offset(3) for s in ctx.assignments[0]])
        reader.snapshot_state(5)
        reader.notify_checkpoint_complete(5)
        wait_committed(kafka_bootstrap, group, [(topic, 0), (topic, 1)], 3)  # async commit
        reader.close()
    initializer = {
        "earliest": OffsetsInitializer.earliest(),
        "latest": OffsetsInitializer.latest(),
        "committed": OffsetsInitializer.committed_offsets(),
        "timestamp": OffsetsInitializer.timestamp(BASE_TS + 7),
        "offsets": OffsetsInitializer.offsets({(topic, 0): 4}, OffsetResetStrategy.LATEST),
    }[mode]
    source = (
        builder(kafka_bootstrap, topic)
        .set_group_id(group)
        .set_starting_offsets(initializer)
        .build()
    )
    _, ctx = enumerate_splits(source, 1)
    starts = {s.partition: s.starting_offset for s in ctx.assignments[0]}
    expected_starts = {
        "earliest": {0: 0, 1: 0},
        "latest": {0: 10, 1: 10},
        "committed": {0: 3, 1: 3},
        "timestamp": {0: 7, 1: 7},
        "offsets": {0: 4, 1: 10},
    }[mode]
    assert starts == expected_starts
    fill(kafka_bootstrap, topic, 2, 2, start=10)  # two more per partition
    expected = sorted(f"p{p}-{i}" for p, s in starts.items() for i in range(s, 12))
    _, out = read_all(source, ctx.assignments[0], len(expected))
    assert sorted(out.all_values()) == expected


def test_committed_offsets_without_reset_fails_clearly(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1)
    with pytest.raises(ConfigurationError, match="set_group_id"):
        builder(kafka_bootstrap, topic).set_starting_offsets(
            OffsetsInitializer.committed_offsets()
        ).build()
    source = (
        builder(kafka_bootstrap, topic)
        .set_group_id(f"never-{topic}")
        .set_starting_offsets(OffsetsInitializer.committed_offsets())
        .build()
    )
    ctx = FakeEnumeratorContext(1)
    enumerator = source.create_enumerator(ctx)
    enumerator.start()
    with pytest.raises(ConnectorError, match="no committed offset") as info:
        ctx.run_async()
    assert isinstance(info.value.__cause__, ConfigurationError)
    enumerator.close()


# -- event time ------------------------------------------------------------------------------


class _WatermarkCollector(WatermarkOutput):
    def __init__(self) -> None:
        self.watermark = MIN_WATERMARK_MS
        self.idle = False

    def emit_watermark(self, watermark: Any) -> None:
        self.idle = False
        self.watermark = max(self.watermark, watermark.timestamp_ms)

    def mark_idle(self) -> None:
        self.idle = True

    def mark_active(self) -> None:
        self.idle = False


def test_per_partition_watermarks_with_one_idle_partition(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    """Per-split generators (as the runtime builds them) over the reader's split outputs:
    an empty partition goes idle and does not hold back the combined watermark."""
    topic = new_topic(3)
    produce(
        kafka_bootstrap,
        topic,
        [(p, None, b"x", BASE_TS + 1000 * p + i) for p in (0, 1) for i in range(5)],
    )  # partition 2 stays empty
    source = builder(kafka_bootstrap, topic).build()
    _, ctx = enumerate_splits(source, 1)
    now = [0]
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_idleness(100)
    gens = {s.split_id(): strategy.create_watermark_generator() for s in ctx.assignments[0]}
    for g in gens.values():
        g._clock = lambda: now[0]  # type: ignore[attr-defined]  # manual idleness clock
    wm_out = {sid: _WatermarkCollector() for sid in gens}
    _, out = read_all(source, ctx.assignments[0], 10)
    for sid, o in out.splits.items():
        gens[sid].on_events(o.values, o.timestamps, wm_out[sid])

    def combined() -> int:
        for sid, g in gens.items():
            g.on_periodic_emit(wm_out[sid])
        active = [o.watermark for o in wm_out.values() if not o.idle]
        return min(active)

    assert combined() == MIN_WATERMARK_MS  # the empty partition holds time back...
    now[0] = 500
    assert combined() == BASE_TS + 4 - 1  # ...until it is idle: min over active partitions
    assert wm_out[f"{topic}-2"].idle
    assert out.splits[f"{topic}-1"].timestamps == [BASE_TS + 1000 + i for i in range(5)]


# -- end to end through env.execute() ---------------------------------------------------------


def test_bounded_source_through_execute(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(4)
    fill(kafka_bootstrap, topic, 4, 250)
    # a transaction at the end leaves a commit marker after the last record
    produce(kafka_bootstrap, topic, [(0, None, b"p0-250", BASE_TS)], transactional_id=f"t-{topic}")
    source = builder(kafka_bootstrap, topic).set_bounded(OffsetsInitializer.latest()).build()
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    sink = TestingSink()
    env.from_source(source, WatermarkStrategy.for_monotonous_timestamps(), "kafka").map(
        str.upper
    ).sink_to(sink)
    env.execute("bounded-kafka")
    assert sorted(sink.results) == sorted(
        [f"P{p}-{i}" for p in range(4) for i in range(250)] + ["P0-250"]
    )
    assert all(t is not None and t >= BASE_TS for t in sink.timestamps)
    produce(kafka_bootstrap, topic, [(1, None, b"late", BASE_TS)])  # after the stop: not read


def test_deserialization_failure_fails_the_job_naming_the_record(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, [(0, None, b'{"a": 1}', None), (0, None, b"{bad", None)])
    source = (
        builder(kafka_bootstrap, topic)
        .set_value_only_deserializer(JsonDeserializationSchema())
        .set_bounded(OffsetsInitializer.latest())
        .build()
    )
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_source(source, None, "kafka").sink_to(TestingSink())
    with pytest.raises(JobExecutionError) as info:
        env.execute()
    cause = info.value.__cause__
    assert isinstance(cause, DeserializationError)
    text = str(cause)
    assert f"topic {topic!r} partition 0 offset 1" in text
    assert "DeserializationErrorPolicy.EMIT_FAILURE" in text


class _HeaderAware(KafkaRecordDeserializationSchema[dict[str, Any]]):
    def deserialize(self, record: KafkaRecord, out: list[dict[str, Any]]) -> None:
        out.append(
            {
                "value": json.loads(record.value or b"null"),
                "key": record.key,
                "partition": record.partition,
                "offset": record.offset,
                "ts": record.timestamp_ms,
            }
        )


def test_deserialization_failures_routed_to_side_output(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(2)
    produce(
        kafka_bootstrap,
        topic,
        [
            (0, b"a", b'{"n": 1}', BASE_TS),
            (0, b"b", b"oops", BASE_TS + 1),
            (1, b"c", b'{"n": 2}', BASE_TS + 2),
        ],
    )
    source = (
        builder(kafka_bootstrap, topic)
        .set_deserializer(_HeaderAware())
        .set_deserialization_error_policy(DeserializationErrorPolicy.EMIT_FAILURE)
        .set_bounded(OffsetsInitializer.latest())
        .build()
    )
    tag = OutputTag("bad-records")
    env = StreamExecutionEnvironment.get_execution_environment()
    good = env.from_source(source, None, "kafka").process(DeserializationFailureRouter(tag))
    good_sink, bad_sink = TestingSink(), TestingSink()
    good.sink_to(good_sink)
    good.get_side_output(tag).sink_to(bad_sink)
    env.execute()
    assert sorted(
        (r["value"]["n"], r["key"], r["partition"], r["ts"]) for r in good_sink.results
    ) == [(1, b"a", 0, BASE_TS), (2, b"c", 1, BASE_TS + 2)]
    [failure] = bad_sink.results
    assert isinstance(failure, KafkaDeserializationFailure)
    assert (failure.record.topic, failure.record.partition, failure.record.offset) == (topic, 0, 1)
    assert failure.record.value == b"oops" and failure.error_type == "JSONDecodeError"


def test_unbounded_source_reports_nothing_available_and_end_after_bounded_splits(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1)
    source = builder(kafka_bootstrap, topic).build()
    reader = source.create_reader(FakeReaderContext())
    out = CollectingReaderOutput()
    assert reader.poll_next(out) is InputStatus.NOTHING_AVAILABLE
    reader.add_splits([KafkaPartitionSplit(topic, 0, 0, 0)])  # exhausted bounded split
    reader.notify_no_more_splits()
    assert reader.poll_next(out) is InputStatus.END_OF_INPUT
    assert out.released == [f"{topic}-0"]
    reader.close()
