"""The Kafka fault-injection job of ``test_kafka_e2e`` and its exact expected output.

``load(bootstrap, topic, n)`` writes ``n`` records to a 4-partition topic: record ``i``
goes to partition ``i % PARTITIONS`` with key ``i % KEYS``, value ``i % 97`` and Kafka
timestamp ``BASE_MS + i`` (so every partition is in event-time order). ``build`` adds

    KafkaSource (bounded, per-partition watermarks from the Kafka timestamp)
      -> Throttle (rate limit, so the run lasts long enough for the kills)
      -> key_by(key) -> tumbling event-time windows of WINDOW_MS, count + sum
      -> KafkaSink (JSON ``[key, window start, count, sum]``)

Every window result is a deterministic function of the input, so a ``read_committed``
reader of the output must see exactly :func:`expected`. The module is importable by the
TaskManagers (``sys.path`` is shipped), so functions here are pickled by reference.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from kafka_test_support import QUIET, produce

from strom.connectors.kafka import (
    DeliveryGuarantee,
    DeserializationSchema,
    JsonSerializationSchema,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
    OffsetsInitializer,
)
from strom.datastream import (
    AggregateFunction,
    MapFunction,
    RuntimeContext,
    StreamExecutionEnvironment,
    WatermarkStrategy,
)
from strom.datastream.window import ProcessWindowFunction, TumblingEventTimeWindows

PARTITIONS = 4
KEYS = 20
WINDOW_MS = 1_000
BASE_MS = 1_700_000_000_000  # a whole number of windows: window starts are BASE_MS + k * 1000


def record(i: int) -> tuple[int, int, int]:
    """``(key, event time ms, value)`` of record ``i``."""
    return i % KEYS, BASE_MS + i, i % 97


def load(bootstrap: str, topic: str, n: int) -> None:
    def records() -> Any:
        for i in range(n):
            k, t, v = record(i)
            yield i % PARTITIONS, str(k).encode(), f"{k},{v}".encode(), t

    produce(bootstrap, topic, records())


class KeyValue(DeserializationSchema[tuple[int, int]]):
    """``b"k,v"`` -> ``(k, v)``."""

    def deserialize(self, message: bytes | None) -> tuple[int, int] | None:
        if message is None:
            return None
        k, v = message.split(b",")
        return int(k), int(v)


def key_of(kv: tuple[int, int]) -> int:
    return kv[0]


class Throttle(MapFunction[Any, Any]):
    """Passes records through at most ``rate`` records/s (per subtask and attempt)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def open(self, runtime_context: RuntimeContext) -> None:
        self.start = time.monotonic()
        self.seen = 0

    def map(self, value: Any) -> Any:
        self.seen += 1
        if self.seen % 100 == 0:
            ahead = self.seen / self.rate - (time.monotonic() - self.start)
            if ahead > 0:
                time.sleep(ahead)
        return value


class CountSum(AggregateFunction[Any, tuple[int, int], tuple[int, int]]):
    def create_accumulator(self) -> tuple[int, int]:
        return 0, 0

    def add(self, value: Any, accumulator: tuple[int, int]) -> tuple[int, int]:
        return accumulator[0] + 1, accumulator[1] + value[1]

    def get_result(self, accumulator: tuple[int, int]) -> tuple[int, int]:
        return accumulator

    def merge(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        return a[0] + b[0], a[1] + b[1]


class WithStart(ProcessWindowFunction[Any, Any, Any, Any]):
    """``[key, window start, count, sum]``."""

    def process(self, key: Any, context: Any, elements: Any) -> Any:
        start = context.window().start
        for count, total in elements:
            yield [key, start, count, total]


def result_key(r: list[int]) -> bytes:
    return str(r[0]).encode()


def build(
    env: StreamExecutionEnvironment,
    bootstrap: str,
    src: str,
    dst: str,
    guarantee: DeliveryGuarantee,
    transactional_id_prefix: str,
    rate_per_subtask: float,
) -> None:
    source = (
        KafkaSource.builder()
        .set_bootstrap_servers(bootstrap)
        .set_topics(src)
        .set_value_only_deserializer(KeyValue())
        .set_starting_offsets(OffsetsInitializer.earliest())
        .set_bounded(OffsetsInitializer.latest())
        .set_properties(QUIET)
        .build()
    )
    sink = (
        KafkaSink.builder()
        .set_bootstrap_servers(bootstrap)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(dst)
            .set_key_serialization_schema(result_key)
            .set_value_serialization_schema(JsonSerializationSchema())
            .build()
        )
        .set_delivery_guarantee(guarantee)
        .set_transactional_id_prefix(transactional_id_prefix)
        .set_kafka_producer_config({"linger.ms": 2, **QUIET})
        .build()
    )
    # the Kafka timestamp is the event time; watermarks per partition
    strategy = WatermarkStrategy.for_monotonous_timestamps()
    (
        env.from_source(source, strategy, "kafka-in")
        .uid("kafka-in")
        .map(Throttle(rate_per_subtask))
        .uid("throttle")
        .key_by(key_of)
        .window(TumblingEventTimeWindows.of(WINDOW_MS))
        .aggregate(CountSum(), window_function=WithStart())
        .uid("windows")
        .sink_to(sink)
        .uid("kafka-out")
    )


def expected(n: int) -> Counter[tuple[int, int, int, int]]:
    """Every window result once: ``(key, window start, count, sum)``."""
    acc: dict[tuple[int, int], list[int]] = {}
    for i in range(n):
        k, t, v = record(i)
        a = acc.setdefault((k, t - t % WINDOW_MS), [0, 0])
        a[0] += 1
        a[1] += v
    return Counter((k, start, c, s) for (k, start), (c, s) in acc.items())
