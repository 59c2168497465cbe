"""The fault-injection job of the recovery tests and its exact expected output.

``build(env, out, n, ...)`` adds a bounded job over ``n`` records to ``env``:

    DataGeneratorSource(i -> (key, event time, value))   (rate limited, uid "gen")
      -> key_by(key) -> Marks: a KeyedProcessFunction with a ValueState counter and
         event-time timers; forwards every record, emits ("count", key, c) for every
         MARK-th record of a key and ("timer", key, t) for every timer (side output)
      -> key_by(key) -> tumbling event-time windows of WINDOW_MS, aggregate count + sum
         -> ("win", key, window start, count, sum)
      union side output -> exactly-once FileSink (JSON lines)

Every output line is a deterministic function of the input (timers and windows fire on
watermarks, which never overtake a channel's records; the counter markers depend on the
number of records per key only), at any parallelism, so the committed output of any run,
failures or not, must equal :func:`expected` exactly as a multiset. The module is importable by the
TaskManagers (``sys.path`` is shipped), so functions here are pickled by reference.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from strom.connectors import DataGeneratorSource
from strom.connectors.file import Encoder, FileSink
from strom.datastream import (
    AggregateFunction,
    KeyedProcessFunction,
    MapFunction,
    OutputTag,
    RuntimeContext,
    StreamExecutionEnvironment,
    ValueStateDescriptor,
    WatermarkStrategy,
)
from strom.datastream.window import ProcessWindowFunction, TumblingEventTimeWindows

KEYS = 50
MARK = 200  # a ("count", key, c) line every MARK records of a key
BUCKET_MS = 10_000  # one event-time timer per key and bucket, at the bucket's end
WINDOW_MS = 5_000

MARKS = OutputTag("marks")


def event_time(i: int, n: int) -> int:
    """Event time of record ``i`` (ms): its index, so every reader's records are in event
    time order at any parallelism (a reader reads its splits one after the other, in
    index order), and no record is ever late."""
    return i


class Generator:
    """``i -> (key, event time ms, value)``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, i: int) -> tuple[int, int, int]:
        return i % KEYS, event_time(i, self.n), i % 97


def timestamp_of(record: tuple[int, int, int], _previous: int | None = None) -> int:
    return record[1]


def key_of(record: tuple[Any, ...]) -> int:
    return int(record[0])


class Marks(KeyedProcessFunction[int, Any, Any]):
    """Counts records per key in a ValueState and sets one timer per key and bucket."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        c = (self.count.value() or 0) + 1
        self.count.update(c)
        ctx.timer_service().register_event_time_timer(
            value[1] - value[1] % BUCKET_MS + BUCKET_MS - 1
        )
        if c % MARK == 0:
            ctx.output(MARKS, ("count", value[0], c))
        yield value

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        ctx.output(MARKS, ("timer", ctx.get_current_key(), timestamp))
        return iter(())


class FailAt(MapFunction[Any, Any]):
    """Raises at record index ``at`` in the attempts ``< attempts`` (all if None)."""

    def __init__(self, n: int, at: int, attempts: int | None = 1) -> None:
        self.at_time = event_time(at, n)
        self.attempts = attempts

    def open(self, runtime_context: RuntimeContext) -> None:
        self.attempt = runtime_context.get_attempt_number()

    def map(self, value: Any) -> Any:
        if value[1] == self.at_time and (self.attempts is None or self.attempt < self.attempts):
            msg = f"injected failure at {value} in attempt {self.attempt}"
            raise RuntimeError(msg)
        return value


class CountSum(AggregateFunction[Any, tuple[int, int], tuple[int, int]]):
    """``(count, sum of value)``."""

    def create_accumulator(self) -> tuple[int, int]:
        return 0, 0

    def add(self, value: Any, accumulator: tuple[int, int]) -> tuple[int, int]:
        return accumulator[0] + 1, accumulator[1] + value[2]

    def get_result(self, accumulator: tuple[int, int]) -> tuple[int, int]:
        return accumulator

    def merge(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        return a[0] + b[0], a[1] + b[1]


class WithStart(ProcessWindowFunction[Any, Any, Any, Any]):
    """``("win", key, window start, count, sum)``."""

    def process(self, key: Any, context: Any, elements: Any) -> Iterator[Any]:
        start = context.window().start
        for count, total in elements:
            yield "win", key, start, count, total


def build(
    env: StreamExecutionEnvironment,
    out: Path,
    n: int,
    rate: float | None = None,
    fail: FailAt | None = None,
    out_of_orderness_ms: int = 0,
) -> None:
    """Add the job to ``env`` (the caller configures parallelism, backend, checkpoints).

    Args:
        env: the environment.
        out: the FileSink's base path.
        n: number of records.
        rate: the source's total rate limit (records/s), None for unlimited.
        fail: a failure-injecting map after the source (uid "fail"), if any.
        out_of_orderness_ms: the watermark bound. 0 (monotonous timestamps) is exact as
            long as each reader reads its splits in index order; a reader that gets
            several restored splits after a rescale may read a later one first (splits
            go to readers in request order), which needs a bound of ``n``.
    """
    if out_of_orderness_ms:
        strategy = WatermarkStrategy.for_bounded_out_of_orderness(
            timedelta(milliseconds=out_of_orderness_ms)
        ).with_timestamp_assigner(timestamp_of)
    else:
        strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(
            timestamp_of
        )
    source = DataGeneratorSource(Generator(n), n, rate)
    stream = env.from_source(source, strategy, "gen").uid("gen")
    if fail is not None:
        stream = stream.map(fail).uid("fail")
    marked = (
        stream
        .key_by(key_of)
        .process(Marks()).uid("marks")
    )
    windows = (
        marked.key_by(key_of)
        .window(TumblingEventTimeWindows.of(WINDOW_MS))
        .aggregate(CountSum(), window_function=WithStart()).uid("windows")
    )
    sink = FileSink.for_row_format(str(out), Encoder.json_lines_encoder()).build()
    windows.union(marked.get_side_output(MARKS)).sink_to(sink).uid("sink")


@functools.lru_cache(maxsize=4)
def expected(n: int) -> Counter[tuple[Any, ...]]:
    """The exact output of the job over ``n`` records (that of a failure-free run;
    cached: do not modify)."""
    rows: Counter[tuple[Any, ...]] = Counter()
    per_key = [0] * KEYS
    windows: dict[tuple[int, int], list[int]] = {}
    timers: set[tuple[int, int]] = set()
    gen = Generator(n)
    for i in range(n):
        k, t, v = gen(i)
        per_key[k] += 1
        if per_key[k] % MARK == 0:
            rows["count", k, per_key[k]] += 1
        timers.add((k, t - t % BUCKET_MS + BUCKET_MS - 1))
        acc = windows.setdefault((k, t - t % WINDOW_MS), [0, 0])
        acc[0] += 1
        acc[1] += v
    for k, t in timers:
        rows["timer", k, t] += 1
    for (k, start), (count, total) in windows.items():
        rows["win", k, start, count, total] += 1
    return rows


def committed(out: Path) -> Counter[tuple[Any, ...]]:
    """Rows of the committed (visible) part files under ``out``."""
    rows: Counter[tuple[Any, ...]] = Counter()
    if not out.exists():
        return rows
    for f in out.rglob("*"):
        if f.is_file() and not any(p.startswith(".") for p in f.relative_to(out).parts):
            for line in f.read_text().splitlines():
                rows[tuple(json.loads(line))] += 1
    return rows
