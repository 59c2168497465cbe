"""End-to-end behaviour of the DataStream API on the local runtime."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from strom.connectors import DataGeneratorSource, NumberSequenceSource
from strom.datastream import (
    FilterFunction,
    FlatMapFunction,
    IntCounter,
    JobStatus,
    KeyedProcessFunction,
    KeySelector,
    ListAccumulator,
    MapFunction,
    OutputTag,
    ProcessFunction,
    ReduceFunction,
    RuntimeContext,
    RuntimeExecutionMode,
    StreamExecutionEnvironment,
    ValueStateDescriptor,
    Watermark,
)
from strom.testing import TestingSink, TestingSource


def test_issue_acceptance_collect() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    out = env.from_collection(range(10)).map(lambda x: x * 2).filter(lambda x: x % 3 == 0)
    assert sorted(out.execute_and_collect()) == [0, 6, 12, 18]


def test_map_flat_map_filter_callables_and_classes(env: StreamExecutionEnvironment) -> None:
    class Double(MapFunction[int, int]):
        def open(self, runtime_context: RuntimeContext) -> None:
            # an accumulator, not a captured list: subtasks may run in other processes
            opened = ListAccumulator()
            opened.add(
                (
                    runtime_context.get_task_name(),
                    runtime_context.get_index_of_this_subtask(),
                    runtime_context.get_number_of_parallel_subtasks(),
                )
            )
            runtime_context.add_accumulator("opened", opened)

        def map(self, value: int) -> int:
            return value * 2

    class Split(FlatMapFunction[int, int]):
        def flat_map(self, value: int) -> Any:
            yield value
            yield -value

    class Positive(FilterFunction[int]):
        def filter(self, value: int) -> bool:
            return value > 0

    sink = TestingSink()
    (
        env.from_sequence(1, 100)
        .map(Double()).name("double")
        .flat_map(Split())
        .filter(Positive())
        .map(lambda x: x + 1)
        .flat_map(lambda x: [x] if x % 2 else None)
        .sink_to(sink)
    )
    result = env.execute()
    assert sorted(sink.results) == [2 * i + 1 for i in range(1, 101)]
    p = env.get_parallelism()
    opened = result.get_accumulator_result("opened")
    assert sorted(opened) == [("double", i, p) for i in range(p)]


def test_keyed_reduce_streaming_emits_every_update(env: StreamExecutionEnvironment) -> None:
    data = [("a", 1), ("b", 10), ("a", 2), ("a", 3), ("b", 20)]
    out = list(
        env.from_collection(data).key_by(lambda t: t[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1])).execute_and_collect()
    )
    per_key = collections.defaultdict(list)
    for k, v in out:
        per_key[k].append(v)
    assert dict(per_key) == {"a": [1, 3, 6], "b": [10, 30]}


def test_keyed_reduce_batch_emits_final_values(env: StreamExecutionEnvironment) -> None:
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)

    class Add(ReduceFunction[tuple[str, int]]):
        def reduce(self, a: tuple[str, int], b: tuple[str, int]) -> tuple[str, int]:
            return (a[0], a[1] + b[1])

    data = [("a", 1), ("b", 10), ("a", 2), ("a", 3), ("b", 20)]
    out = env.from_collection(data).key_by(0).reduce(Add()).execute_and_collect()
    assert sorted(out) == [("a", 6), ("b", 30)]


def test_streaming_and_batch_give_same_final_results() -> None:
    words = [f"w{i % 37}" for i in range(5000)]
    finals = []
    for mode in (RuntimeExecutionMode.STREAMING, RuntimeExecutionMode.BATCH):
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_runtime_mode(mode).set_parallelism(2)
        last: dict[str, int] = {}
        for w, c in env.from_collection(words).map(lambda w: (w, 1)).key_by(0).sum(1) \
                .execute_and_collect():
            last[w] = max(last.get(w, 0), c)
        finals.append(last)
    assert finals[0] == finals[1] == dict(collections.Counter(words))


@dataclass
class Reading:
    sensor: str
    value: float
    seq: int


def test_field_aggregations_on_tuples_dicts_and_objects(env: StreamExecutionEnvironment) -> None:
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    tuples = [("a", 3, "x"), ("a", 1, "y"), ("a", 5, "z"), ("b", 2, "w")]
    assert sorted(env.from_collection(tuples).key_by(0).sum(1).execute_and_collect()) == [
        ("a", 9, "x"), ("b", 2, "w")
    ]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    assert sorted(env.from_collection(tuples).key_by(0).min(1).execute_and_collect()) == [
        ("a", 1, "x"), ("b", 2, "w")
    ]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    assert sorted(env.from_collection(tuples).key_by(0).max_by(1).execute_and_collect()) == [
        ("a", 5, "z"), ("b", 2, "w")
    ]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    dicts = [{"k": "a", "v": 2}, {"k": "a", "v": 7}, {"k": "b", "v": 1}]
    got = env.from_collection(dicts).key_by("k").max("v").execute_and_collect()
    assert sorted(got, key=lambda d: d["k"]) == [{"k": "a", "v": 7}, {"k": "b", "v": 1}]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    objs = [Reading("s", 2.0, 1), Reading("s", 1.0, 2), Reading("s", 1.0, 3)]
    got = list(env.from_collection(objs).key_by("sensor").min_by("value").execute_and_collect())
    assert got == [Reading("s", 1.0, 2)]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    got = list(
        env.from_collection(objs).key_by("sensor").min_by("value", first=False)
        .execute_and_collect()
    )
    assert got == [Reading("s", 1.0, 3)]


def test_sum_of_plain_numbers(env: StreamExecutionEnvironment) -> None:
    out = list(env.from_collection([1, 2, 3, 4]).key_by(lambda x: x % 2).sum()
               .execute_and_collect())
    assert sorted(out) == [1, 2, 4, 6]


def test_key_selector_class_and_union(env: StreamExecutionEnvironment) -> None:
    class Mod3(KeySelector[int, int]):
        def get_key(self, value: int) -> int:
            return value % 3

    a = env.from_collection([1, 2, 3])
    b = env.from_sequence(4, 6)
    c = env.from_collection([7])
    out = a.union(b, c).key_by(Mod3()).reduce(lambda x, y: x + y)
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    assert sorted(out.execute_and_collect()) == sorted([3 + 6, 1 + 4 + 7, 2 + 5])


def test_side_outputs(env: StreamExecutionEnvironment) -> None:
    odd = OutputTag("odd")
    big = OutputTag("big")

    class Route(ProcessFunction[int, int]):
        def process_element(self, value: int, ctx: ProcessFunction.Context) -> Any:
            if value % 2:
                ctx.output(odd, value)
            else:
                yield value
            if value > 8:
                ctx.output(big, value * 10)

    main = env.from_sequence(1, 10).process(Route())
    s_main, s_odd, s_big = TestingSink(), TestingSink(), TestingSink()
    main.sink_to(s_main)
    main.get_side_output(odd).map(lambda x: -x).sink_to(s_odd)
    main.get_side_output(big).sink_to(s_big)
    env.execute()
    assert sorted(s_main.results) == [2, 4, 6, 8, 10]
    assert sorted(s_odd.results) == [-9, -7, -5, -3, -1]
    assert sorted(s_big.results) == [90, 100]


def test_keyed_process_function_with_value_state(env: StreamExecutionEnvironment) -> None:
    class Dedup(KeyedProcessFunction[str, tuple[str, int], str]):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.seen = runtime_context.get_state(ValueStateDescriptor("seen"))

        def process_element(self, value: tuple[str, int], ctx: Any) -> Any:
            if self.seen.value() is None:
                self.seen.update(True)
                yield f"{ctx.get_current_key()}:{value[1]}"

    data = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)]
    out = env.from_collection(data).key_by(lambda t: t[0]).process(Dedup())
    assert sorted(out.execute_and_collect()) == ["a:1", "b:2", "c:4"]


def test_partitioners_route_to_expected_subtasks() -> None:
    class Tag(MapFunction[int, tuple[int, int]]):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.i = runtime_context.get_index_of_this_subtask()

        def map(self, value: int) -> tuple[int, int]:
            return (self.i, value)

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(3)
    src = env.from_collection(list(range(30)))
    got = list(src.broadcast().map(Tag()).execute_and_collect())
    assert sorted(got) == sorted((i, v) for i in range(3) for v in range(30))

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(3)
    got = list(env.from_collection(list(range(30)))
               .partition_custom(lambda k, n: k % n, lambda v: v).map(Tag())
               .execute_and_collect())
    assert sorted(got) == sorted((v % 3, v) for v in range(30))

    for method in ("rebalance", "shuffle", "rescale"):
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(3)
        stream = getattr(env.from_collection(list(range(3000))), method)()
        got = list(stream.map(Tag()).execute_and_collect())
        assert sorted(v for _, v in got) == list(range(3000)), method
        if method != "rescale":
            assert {i for i, _ in got} == {0, 1, 2}, method


def test_key_by_sends_each_key_to_one_subtask() -> None:
    class Tag(MapFunction[str, tuple[int, str]]):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.i = runtime_context.get_index_of_this_subtask()

        def map(self, value: str) -> tuple[int, str]:
            return (self.i, value)

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(4)
    keys = [f"k{i}" for i in range(200)] * 3
    got = env.from_collection(keys).key_by(lambda k: k).map(Tag()).execute_and_collect()
    where: dict[str, set[int]] = collections.defaultdict(set)
    for i, k in got:
        where[k].add(i)
    assert all(len(s) == 1 for s in where.values())
    assert len({next(iter(s)) for s in where.values()}) == 4


def test_accumulators_are_merged_over_subtasks(env: StreamExecutionEnvironment) -> None:
    class Count(MapFunction[int, int]):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.c = IntCounter()
            runtime_context.add_accumulator("seen", self.c)

        def map(self, value: int) -> int:
            self.c.add(1)
            return value

    env.from_sequence(1, 1000).map(Count()).sink_to(TestingSink())
    result = env.execute("acc")
    assert result.get_accumulator_result("seen") == 1000
    assert result.get_all_accumulator_results() == {"seen": 1000}
    assert len(result.get_job_id()) == 32 and result.get_net_runtime() >= 0


def test_number_sequence_and_data_generator_sources(env: StreamExecutionEnvironment) -> None:
    sink = TestingSink()
    env.from_source(NumberSequenceSource(5, 5004), None, "seq").sink_to(sink)
    env.from_source(DataGeneratorSource(lambda i: f"g{i}", 250), None, "gen").sink_to(sink)
    env.execute()
    ints = sorted(v for v in sink.results if isinstance(v, int))
    strs = sorted(v for v in sink.results if isinstance(v, str))
    assert ints == list(range(5, 5005))
    assert strs == sorted(f"g{i}" for i in range(250))


def test_rate_limited_generator_respects_rate() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    start = time.monotonic()
    out = list(env.from_source(DataGeneratorSource(lambda i: i, 100, 400.0), None, "gen")
               .execute_and_collect())
    elapsed = time.monotonic() - start
    assert sorted(out) == list(range(100))
    assert elapsed >= 0.2  # 100 records at 400/s take at least 0.25 s


def test_execute_and_collect_limit_cancels_unbounded_job() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_buffer_timeout(10)
    it = env.from_source(DataGeneratorSource(lambda i: i, None, 2000.0), None, "gen") \
        .map(lambda x: x * 10).execute_and_collect(limit=25)
    got = list(it)
    assert got == [i * 10 for i in range(25)]
    assert it.job_client.get_job_status() is JobStatus.CANCELED


def test_execute_async_status_and_cancel() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_source(DataGeneratorSource(lambda i: i, None, 100.0), None, "gen") \
        .sink_to(TestingSink())
    client = env.execute_async("forever")
    deadline = time.monotonic() + 5
    while client.get_job_status() is not JobStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.get_job_status() is JobStatus.RUNNING
    client.cancel()
    from strom.errors import JobCancelledError

    with pytest.raises(JobCancelledError):
        client.get_job_execution_result(timeout=5)
    assert client.get_job_status() is JobStatus.CANCELED


def test_explicit_watermarks_reach_process_functions() -> None:
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    class Probe(ProcessFunction[int, int]):
        def process_element(self, value: int, ctx: ProcessFunction.Context) -> Any:
            with lock:
                seen.append((value, ctx.timer_service().current_watermark()))
            yield value

    env = StreamExecutionEnvironment.get_execution_environment()
    src = TestingSource([1, Watermark(100), 2, Watermark(50), 3, Watermark(200), 4],
                        batch_size=1)
    env.from_source(src, None, "t").process(Probe()).sink_to(TestingSink())
    env.execute()
    assert seen == [(1, -(2**63)), (2, 100), (3, 100), (4, 200)]


def test_print_sink_format(capsys: pytest.CaptureFixture[str]) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2]).print()
    env.execute()
    assert capsys.readouterr().out.splitlines() == ["1", "2"]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([3]).print("ids")
    env.execute()
    assert capsys.readouterr().out.splitlines() == ["ids> 3"]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    env.from_collection(["x"]).rebalance().print()
    env.execute()
    line = capsys.readouterr().out.strip()
    assert line in ("1> x", "2> x")


def test_buffer_timeout_zero_and_minus_one_deliver_everything() -> None:
    for timeout in (0, -1, 5):
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_buffer_timeout(timeout).set_parallelism(2)
        out = env.from_sequence(1, 3000).rebalance().map(lambda x: x).execute_and_collect()
        assert sorted(out) == list(range(1, 3001))


def test_sum_on_tuples_of_varying_shape(env: StreamExecutionEnvironment) -> None:
    data = [("a", 1), ("a", 2, "x"), ("a", 3), ("b", 1.5), ("b", 2.5)]
    out = list(env.from_collection(data).key_by(0).sum(1).execute_and_collect())
    assert sorted(out) == [("a", 1), ("a", 3), ("a", 6), ("b", 1.5), ("b", 4.0)]
