"""The same job gives the same results at parallelism 1, 2 and 4 (2 and 4 on TaskManager
processes: keyed exchanges, rebalance, broadcast and watermarks across processes)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from strom.datastream import StreamExecutionEnvironment, Watermark, WatermarkStrategy
from strom.datastream.window import TumblingEventTimeWindows
from strom.testing import TestingSink, TestingSource

PARALLELISMS = [1, 2, 4]

LINES = [
    "the quick brown fox jumps over the lazy dog",
    "the dog barks",
    "a fox and a dog and the end",
] * 50


def _env(p: int) -> StreamExecutionEnvironment:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(p)
    return env


def word_count(p: int) -> list[Any]:
    env = _env(p)
    sink = TestingSink()
    (
        env.from_collection(LINES)
        .flat_map(lambda line: [(w, 1) for w in line.split()])
        .key_by(lambda r: r[0])
        .sum(1)
        .sink_to(sink)
    )
    env.execute("word count")
    return sorted(sink.results)


def running_sum(p: int) -> list[Any]:
    env = _env(p)
    sink = TestingSink()
    data = [(f"k{i % 13}", i) for i in range(5000)]
    env.from_collection(data).key_by(lambda r: r[0]).reduce(
        lambda a, b: (a[0], a[1] + b[1])
    ).sink_to(sink)
    env.execute("running sum")
    return sorted(sink.results)


def windowed(p: int) -> list[Any]:
    env = _env(p)
    sink = TestingSink()
    items: list[Any] = []
    for t in range(0, 2000, 7):
        items.append((f"u{t % 5}", t, t % 11))
        if t % 100 == 0:
            items.append(Watermark(t - 20))
    strategy = WatermarkStrategy.no_watermarks().with_timestamp_assigner(lambda e: e[1])
    (
        env.from_source(TestingSource(items, batch_size=16), strategy, "events")
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(100))
        .reduce(lambda a, b: (a[0], max(a[1], b[1]), a[2] + b[2]))
        .sink_to(sink)
    )
    env.execute("windowed")
    return sorted(zip(sink.results, sink.timestamps))


def sequence_total(p: int) -> tuple[int, int]:
    env = _env(p)
    sink = TestingSink()
    env.from_sequence(1, 20_000).rebalance().map(lambda x: x * 2).sink_to(sink)
    env.execute("sequence")
    return len(sink.results), sum(sink.results)


@pytest.mark.parametrize("job", [word_count, running_sum, windowed, sequence_total])
def test_results_identical_at_parallelism_1_2_4(job: Any, minicluster: object) -> None:
    results = [job(p) for p in PARALLELISMS]
    assert results[0], "the job produced nothing"
    assert results[1] == results[0]
    assert results[2] == results[0]


def test_word_count_values(minicluster: object) -> None:
    final: dict[str, int] = {}
    for word, count in word_count(2):
        final[word] = max(final.get(word, 0), count)
    expected = Counter(w for line in LINES for w in line.split())
    assert final == dict(expected)


def test_broadcast_and_side_outputs_cross_processes(minicluster: object) -> None:
    env = _env(2)
    sink = TestingSink()
    env.from_sequence(1, 100).broadcast().map(lambda x: x).set_parallelism(3).sink_to(sink)
    env.execute()
    assert sorted(sink.results) == sorted(list(range(1, 101)) * 3)


def test_accumulators_merge_over_processes(minicluster: object) -> None:
    from strom.datastream import IntCounter, MapFunction, RuntimeContext

    class Count(MapFunction[int, int]):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.counter = IntCounter()
            runtime_context.add_accumulator("n", self.counter)

        def map(self, value: int) -> int:
            self.counter.add(1)
            return value

    env = _env(4)
    env.from_sequence(1, 1000).map(Count()).sink_to(TestingSink())
    assert env.execute().get_accumulator_result("n") == 1000


def test_execute_and_collect_streams_from_task_managers(minicluster: object) -> None:
    env = _env(2)
    out = env.from_sequence(1, 50_000).map(lambda x: x + 1).execute_and_collect()
    assert sorted(out) == list(range(2, 50_002))


def test_collect_with_limit_cancels_the_job(minicluster: object) -> None:
    env = _env(2)
    out = env.from_sequence(1, 10**12).map(lambda x: x).execute_and_collect(limit=10)
    assert len(list(out)) == 10
