"""Event-time windows: assigners, triggers, evictors, lateness, merging (exact outputs)."""

from __future__ import annotations

import random
import sys
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from strom.datastream import (
    AggregateFunction,
    KeyedProcessFunction,
    OutputTag,
    StreamExecutionEnvironment,
    Watermark,
    WatermarkStrategy,
)
from strom.datastream.window import (
    ContinuousEventTimeTrigger,
    CountEvictor,
    CountTrigger,
    EventTimeSessionWindows,
    ProcessAllWindowFunction,
    ProcessWindowFunction,
    PurgingTrigger,
    SlidingEventTimeWindows,
    TimeWindow,
    TumblingEventTimeWindows,
)
from strom.testing import TestingSink, TestingSource

# explicit watermarks only: timestamps come from the records, watermarks from the markers
EXPLICIT = WatermarkStrategy.no_watermarks().with_timestamp_assigner(lambda e: e[1])


def run(env: StreamExecutionEnvironment, stream: Any, late: Any = None) -> tuple[list, list]:
    sink, late_sink = TestingSink(), TestingSink()
    stream.sink_to(sink)
    if late is not None:
        late.sink_to(late_sink)
    env.execute()
    return (
        sorted(zip(sink.results, sink.timestamps), key=repr),
        sorted(late_sink.results, key=repr),
    )


class CountSum(AggregateFunction):
    def create_accumulator(self) -> list:
        return [0, 0]

    def add(self, value: Any, acc: list) -> list:
        acc[0] += 1
        acc[1] += value[2]
        return acc

    def get_result(self, acc: list) -> tuple:
        return (acc[0], acc[1])

    def merge(self, a: list, b: list) -> list:
        return [a[0] + b[0], a[1] + b[1]]


class WithWindow(ProcessWindowFunction):
    def process(self, key: Any, context: Any, elements: Any) -> Any:
        w = context.window()
        for e in elements:
            yield (key, w.start, w.end, e)


def src(env: StreamExecutionEnvironment, items: list) -> Any:
    return env.from_source(TestingSource(items, batch_size=2), EXPLICIT, "events")


def test_tumbling_reduce_and_aggregate(env: StreamExecutionEnvironment) -> None:
    items = [("a", 1, 1), ("b", 2, 10), ("a", 9, 2), ("a", 10, 4), ("b", 15, 20), ("a", 25, 8)]
    s = src(env, items).key_by(lambda e: e[0]).window(TumblingEventTimeWindows.of(10))
    out, _ = run(env, s.reduce(lambda x, y: (x[0], max(x[1], y[1]), x[2] + y[2])))
    assert out == sorted(
        [
            (("a", 9, 3), 9),
            (("a", 10, 4), 19),
            (("a", 25, 8), 29),
            (("b", 2, 10), 9),
            (("b", 15, 20), 19),
        ],
        key=repr,
    )
    env2 = StreamExecutionEnvironment.get_execution_environment()
    env2.set_parallelism(env.get_parallelism())
    s2 = src(env2, items).key_by(lambda e: e[0]).window(TumblingEventTimeWindows.of(10))
    out2, _ = run(env2, s2.aggregate(CountSum(), WithWindow()))
    assert [v for v, _ in out2] == sorted(
        [
            ("a", 0, 10, (2, 3)),
            ("a", 10, 20, (1, 4)),
            ("a", 20, 30, (1, 8)),
            ("b", 0, 10, (1, 10)),
            ("b", 10, 20, (1, 20)),
        ],
        key=repr,
    )


def test_tumbling_with_offset_and_timedelta() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("k", 1000, 1), ("k", 2999, 1), ("k", 3000, 1), ("k", 4999, 5)]
    s = (
        src(env, items)
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(timedelta(seconds=2), timedelta(seconds=1)))
    )
    out, _ = run(env, s.aggregate(CountSum()))
    assert out == [((2, 2), 2999), ((2, 6), 4999)]


def test_sliding_windows(env: StreamExecutionEnvironment) -> None:
    items = [("a", 1, 1), ("a", 6, 2), ("a", 12, 4)]
    s = src(env, items).key_by(lambda e: e[0]).window(SlidingEventTimeWindows.of(10, 5))
    out, _ = run(env, s.aggregate(CountSum(), WithWindow()))
    assert [v for v, _ in out] == sorted(
        [
            ("a", -5, 5, (1, 1)),
            ("a", 0, 10, (2, 3)),
            ("a", 5, 15, (2, 6)),
            ("a", 10, 20, (1, 4)),
        ],
        key=repr,
    )


def test_session_windows_merge(env: StreamExecutionEnvironment) -> None:
    items = [("a", 1, 1), ("a", 4, 2), ("b", 5, 7), ("a", 20, 4), ("a", 12, 8), ("a", 40, 16)]
    s = src(env, items).key_by(lambda e: e[0]).window(EventTimeSessionWindows.with_gap(5))
    out, _ = run(env, s.aggregate(CountSum(), WithWindow()))
    # a: 1,4 -> [1,9); 12 -> [12,17); 20 -> [20,25) ... 12 and 20 are 8 apart: separate
    assert [v for v, _ in out] == sorted(
        [
            ("a", 1, 9, (2, 3)),
            ("a", 12, 17, (1, 8)),
            ("a", 20, 25, (1, 4)),
            ("a", 40, 45, (1, 16)),
            ("b", 5, 10, (1, 7)),
        ],
        key=repr,
    )


def test_session_windows_bridge_and_dynamic_gap() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("a", 1, 1), ("a", 10, 2), ("a", 5, 4)]  # 5 bridges [1,6) and [10,15)
    s = src(env, items).key_by(lambda e: e[0]).window(EventTimeSessionWindows.with_gap(5))
    out, _ = run(env, s.process(WithWindow()))
    assert [v for v, _ in out] == sorted(
        [("a", 1, 15, ("a", 1, 1)), ("a", 1, 15, ("a", 10, 2)), ("a", 1, 15, ("a", 5, 4))], key=repr
    )
    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("a", 0, 3), ("a", 2, 1), ("a", 6, 1)]
    s = (
        src(env, items)
        .key_by(lambda e: e[0])
        .window(EventTimeSessionWindows.with_dynamic_gap(lambda e: e[2]))
    )
    out, _ = run(env, s.aggregate(CountSum(), WithWindow()))
    assert [v for v, _ in out] == [("a", 0, 3, (2, 4)), ("a", 6, 7, (1, 1))]


def test_allowed_lateness_refires_and_late_side_output(env: StreamExecutionEnvironment) -> None:
    late = OutputTag("late")
    items = [
        ("a", 1, 1),
        ("a", 5, 2),
        Watermark(12),  # fires [0,10) with 3
        ("a", 3, 4),  # late but within lateness 5: re-fires with 7
        Watermark(20),  # cleanup of [0,10) at 9 + 5 = 14
        ("a", 4, 8),  # too late: side output
        ("a", 25, 16),
    ]
    s = (
        src(env, items)
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(10))
        .allowed_lateness(5)
        .side_output_late_data(late)
    )
    main = s.reduce(lambda x, y: (x[0], x[1], x[2] + y[2]))
    out, late_out = run(env, main, main.get_side_output(late))
    assert out == sorted([(("a", 1, 3), 9), (("a", 1, 7), 9), (("a", 25, 16), 29)], key=repr)
    assert late_out == [("a", 4, 8)]


def test_late_data_dropped_without_side_output() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("a", 1, 1), Watermark(50), ("a", 2, 2), ("a", 55, 3)]
    s = src(env, items).key_by(lambda e: e[0]).window(TumblingEventTimeWindows.of(10))
    out, _ = run(env, s.reduce(lambda x, y: (x[0], x[1], x[2] + y[2])))
    assert out == [(("a", 1, 1), 9), (("a", 55, 3), 59)]


def test_count_windows(env: StreamExecutionEnvironment) -> None:
    data = [("k", i) for i in range(1, 8)]
    out = list(
        env.from_collection(data)
        .key_by(lambda e: e[0])
        .count_window(3)
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .execute_and_collect()
    )
    assert sorted(out) == [("k", 6), ("k", 15)]
    env2 = StreamExecutionEnvironment.get_execution_environment()

    class Collect(ProcessWindowFunction):
        def process(self, key: Any, ctx: Any, elements: Any) -> Any:
            yield [e[1] for e in elements]

    out = list(
        env2.from_collection(data)
        .key_by(lambda e: e[0])
        .count_window(3, 2)
        .process(Collect())
        .execute_and_collect()
    )
    assert out == [[1, 2], [2, 3, 4], [4, 5, 6]]


def test_custom_triggers_and_evictor() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("a", t, t) for t in range(0, 10)]
    s = (
        src(env, items)
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(100))
        .trigger(PurgingTrigger.of(CountTrigger.of(4)))
    )
    out, _ = run(env, s.reduce(lambda x, y: (x[0], y[1], x[2] + y[2])))
    # purging count trigger fires every 4 elements; the rest stays unfired in the window
    assert [v for v, _ in out] == [("a", 3, 6), ("a", 7, 22)]

    env = StreamExecutionEnvironment.get_execution_environment()
    s = (
        src(env, items)
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(100))
        .evictor(CountEvictor.of(3))
    )

    class Last(ProcessWindowFunction):
        def process(self, key: Any, ctx: Any, elements: Any) -> Any:
            yield [e[1] for e in elements]

    out, _ = run(env, s.process(Last()))
    assert out == [([7, 8, 9], 99)]


def test_continuous_event_time_trigger() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("a", 1, 1), ("a", 12, 2), Watermark(15), ("a", 25, 4), Watermark(30), ("a", 35, 8)]
    s = (
        src(env, items)
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(100))
        .trigger(ContinuousEventTimeTrigger.of(10))
    )
    out, _ = run(env, s.reduce(lambda x, y: (x[0], x[1], x[2] + y[2])))
    # fires at 10 (sum 3), 20 and 30 (7), 40..90 and at the window end 99 (15)
    assert sorted(v[2] for v, _ in out) == [3, 7, 7] + [15] * 7


def test_window_all() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)

    class Total(ProcessAllWindowFunction):
        def process(self, context: Any, elements: Any) -> Any:
            yield (context.window().start, sum(e[2] for e in elements))

    items = [("a", 1, 1), ("b", 2, 2), ("c", 11, 4)]
    out, _ = run(env, src(env, items).window_all(TumblingEventTimeWindows.of(10)).process(Total()))
    assert [v for v, _ in out] == [(0, 3), (10, 4)]


def test_window_state_and_timestamps_of_results() -> None:
    from strom.datastream import ValueStateDescriptor

    class Firings(ProcessWindowFunction):
        def process(self, key: Any, ctx: Any, elements: Any) -> Any:
            per_window = ctx.window_state().get_state(ValueStateDescriptor("fired"))
            total = ctx.global_state().get_state(ValueStateDescriptor("total"))
            n = (per_window.value() or 0) + 1
            per_window.update(n)
            total.update((total.value() or 0) + 1)
            yield (ctx.window().start, n, total.value(), len(list(elements)))

    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("a", 1, 1), Watermark(10), ("a", 2, 1), ("a", 15, 1)]
    s = (
        src(env, items)
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(10))
        .allowed_lateness(100)
    )
    out, _ = run(env, s.process(Firings()))
    assert out == sorted([((0, 1, 1, 1), 9), ((0, 2, 2, 2), 9), ((10, 1, 3, 1), 19)], key=repr)


def test_event_time_timers_in_keyed_process_function(env: StreamExecutionEnvironment) -> None:
    class Timeout(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: Any) -> Any:
            ctx.timer_service().register_event_time_timer(value[1] + 10)
            ctx.timer_service().register_event_time_timer(value[1] + 10)  # deduplicated
            if value[2] < 0:
                ctx.timer_service().delete_event_time_timer(value[1] + 10)
            return None

        def on_timer(self, timestamp: int, ctx: Any) -> Any:
            yield (ctx.get_current_key(), timestamp, ctx.time_domain().name)

    items = [("a", 1, 1), ("b", 3, 1), ("a", 5, -1), Watermark(12), ("b", 30, 1)]
    out, _ = run(env, src(env, items).key_by(lambda e: e[0]).process(Timeout()))
    assert out == sorted(
        [
            (("a", 11, "EVENT_TIME"), 11),
            (("b", 13, "EVENT_TIME"), 13),
            (("b", 40, "EVENT_TIME"), 40),
        ],
        key=repr,
    )


def test_out_of_order_stream_matches_sorted_counts() -> None:
    """Issue acceptance: a stream shuffled within 2 s with a 2 s bound gives the same
    10 s window counts as the sorted stream, and nothing is late."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared" / "bench" / "peers"))
    rng = random.Random(3)
    base = [(f"u{i % 50}", 1_700_000_000_000 + i * 7, 1) for i in range(20_000)]
    shuffled = sorted(base, key=lambda e: e[1] + rng.randint(0, 1999))  # disorder < 2 s
    expected = Counter((e[0], e[1] - e[1] % 10_000) for e in base)
    late = OutputTag("late")
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        timedelta(seconds=2)
    ).with_timestamp_assigner(lambda e: e[1])
    env.configure("pipeline.auto-watermark-interval", 1)
    s = (
        env.from_source(TestingSource(shuffled, batch_size=100), strategy, "ooo")
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(timedelta(seconds=10)))
        .side_output_late_data(late)
    )
    main = s.aggregate(CountSum(), WithWindow())
    out, late_out = run(env, main, main.get_side_output(late))
    got = {(k, start): c for (k, start, _end, (c, _s)), _ts in out}
    assert got == dict(expected)
    assert late_out == []
    counts: defaultdict[tuple, int] = defaultdict(int)
    for (k, start, _e, _r), _ in out:
        counts[(k, start)] += 1
    assert set(counts.values()) == {1}  # every window fired exactly once


def test_assign_timestamps_and_watermarks_mid_pipeline() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("a", 1, 1), ("a", 12, 2), ("a", 3, 4)]
    s = env.from_collection(items)
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(lambda e: e[1])
    s = s.assign_timestamps_and_watermarks(strategy)
    w = s.key_by(lambda e: e[0]).window(TumblingEventTimeWindows.of(10))
    out, _ = run(env, w.aggregate(CountSum()))
    assert out == sorted([((2, 5), 9), ((1, 2), 19)], key=repr)


def test_time_window_helpers() -> None:
    assert TimeWindow.get_window_start_with_offset(17, 0, 10) == 10
    assert TimeWindow.get_window_start_with_offset(-3, 0, 10) == -10
    assert TimeWindow(0, 10).max_timestamp() == 9
    assert TimeWindow(0, 10).intersects(TimeWindow(10, 20))
    assert TimeWindow(0, 10).cover(TimeWindow(5, 30)) == TimeWindow(0, 30)


def test_session_windows_with_equal_timestamps() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    items = [("a", 1000, 1), ("a", 1000, 2), ("a", 1003, 4)]
    s = src(env, items).key_by(lambda e: e[0]).window(EventTimeSessionWindows.with_gap(5))
    out, _ = run(env, s.aggregate(CountSum(), WithWindow()))
    assert [v for v, _ in out] == [("a", 1000, 1008, (3, 7))]


def test_batch_mode_windows_and_timers_equal_streaming() -> None:
    from strom.datastream import RuntimeExecutionMode

    class Timeout(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: Any) -> Any:
            ctx.timer_service().register_event_time_timer(value[1] + 100)
            return None

        def on_timer(self, timestamp: int, ctx: Any) -> Any:
            yield ("timer", ctx.get_current_key(), timestamp)

    rng = random.Random(5)
    items = [
        (f"k{rng.randrange(5)}", rng.randrange(0, 1000), rng.randrange(10)) for _ in range(500)
    ]
    items.sort(key=lambda e: e[1])
    results = []
    for mode in (RuntimeExecutionMode.STREAMING, RuntimeExecutionMode.BATCH):
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_runtime_mode(mode)
        strategy = WatermarkStrategy.for_bounded_out_of_orderness(50).with_timestamp_assigner(
            lambda e: e[1]
        )
        s = env.from_source(TestingSource(items, batch_size=50), strategy, "in")
        keyed = s.key_by(lambda e: e[0])
        windows = keyed.window(TumblingEventTimeWindows.of(100)).aggregate(CountSum(), WithWindow())
        timers = keyed.process(Timeout())
        out, _ = run(env, windows.union(timers))
        results.append(sorted(v for v, _ in out))
    assert results[0] == results[1]
    assert len(results[0]) > 500  # windows and one timer per distinct (key, ts+100)


def test_processing_time_timers_with_manual_clock() -> None:
    from strom.testing import ManualClock, OneInputOperatorTestHarness

    class Ping(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: Any) -> Any:
            now = ctx.timer_service().current_processing_time()
            ctx.timer_service().register_processing_time_timer(now + 100)
            return None

        def on_timer(self, timestamp: int, ctx: Any) -> Any:
            yield (ctx.get_current_key(), timestamp, ctx.time_domain().name)

    env = StreamExecutionEnvironment.get_execution_environment()
    stream = env.from_collection([("a", 0)]).key_by(lambda e: e[0]).process(Ping())
    clock = ManualClock(1000)
    h = OneInputOperatorTestHarness.for_stream(stream, clock=clock)
    h.process_element(("a", 0))
    clock.set(1050)
    h.process_element(("b", 0))
    h.set_processing_time(1099)
    assert h.extract_output_values() == []
    h.set_processing_time(1100)
    assert h.extract_output_values() == [("a", 1100, "PROCESSING_TIME")]
    h.set_processing_time(1200)
    assert h.extract_output_values() == [
        ("a", 1100, "PROCESSING_TIME"),
        ("b", 1150, "PROCESSING_TIME"),
    ]
