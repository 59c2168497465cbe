"""Operators snapshot and restore exactly, also into a different parallelism."""

from __future__ import annotations

from typing import Any

import pytest

from strom.datastream import KeyedProcessFunction, StreamExecutionEnvironment, ValueStateDescriptor
from strom.datastream.window import (
    EventTimeSessionWindows,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
)
from strom.testing import ManualClock, OneInputOperatorTestHarness

BACKENDS = ["hashmap", "rocksdb"]


def window_stream(assigner: Any) -> Any:
    env = StreamExecutionEnvironment.get_execution_environment()
    return env.from_collection([("x", 0)]).key_by(lambda e: e[0]).window(assigner) \
        .reduce(lambda a, b: (a[0], a[1] + b[1]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_window_contents_and_timers_survive_restore(backend: str) -> None:
    stream = window_stream(TumblingEventTimeWindows.of(10))
    cfg = {"state.backend": backend}
    h = OneInputOperatorTestHarness.for_stream(stream, config=cfg)
    h.process_elements([("a", 1), ("b", 2), ("a", 3)], [1, 2, 12])
    h.process_watermark(5)
    assert h.extract_output_values() == []
    snap = h.snapshot()
    h.close()

    h2 = OneInputOperatorTestHarness.for_stream(stream, config=cfg)
    h2.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
    h2.process_element(("a", 10), 4)
    h2.process_watermark(20)
    assert sorted(h2.extract_output_with_timestamps()) == [
        (("a", 3), 19), (("a", 11), 9), (("b", 2), 9)]
    h2.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_rescale_window_state_from_one_to_two_subtasks(backend: str) -> None:
    stream = window_stream(TumblingEventTimeWindows.of(10))
    cfg = {"state.backend": backend}
    h = OneInputOperatorTestHarness.for_stream(stream, config=cfg)
    keys = [f"k{i}" for i in range(40)]
    h.process_elements([(k, 1) for k in keys], [1] * len(keys))
    snap = h.snapshot()
    h.close()
    outputs = []
    for i in range(2):
        hi = OneInputOperatorTestHarness.for_stream(
            stream, parallelism=2, subtask_index=i, config=cfg)
        hi.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
        hi.process_watermark(100)
        outputs.append(sorted(v[0] for v in hi.extract_output_values()))
        hi.close()
    assert outputs[0] and outputs[1]  # both subtasks got some key groups
    assert sorted(outputs[0] + outputs[1]) == sorted(keys)  # every key exactly once


def test_session_merging_state_survives_restore() -> None:
    stream = window_stream(EventTimeSessionWindows.with_gap(5))
    h = OneInputOperatorTestHarness.for_stream(stream)
    h.process_elements([("a", 1), ("a", 1)], [1, 4])
    snap = h.snapshot()
    h2 = OneInputOperatorTestHarness.for_stream(stream)
    h2.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
    h2.process_element(("a", 1), 8)  # merges with the restored session [1, 9)
    h2.process_watermark(100)
    assert h2.extract_output_with_timestamps() == [(("a", 3), 12)]


def test_processing_time_window_with_manual_clock() -> None:
    clock = ManualClock(1000)
    stream = window_stream(TumblingProcessingTimeWindows.of(100))
    h = OneInputOperatorTestHarness.for_stream(stream, clock=clock)
    h.process_element(("a", 1))
    h.process_element(("a", 2))
    h.set_processing_time(1050)
    assert h.extract_output_values() == []
    h.set_processing_time(1100)
    assert h.extract_output_values() == [("a", 3)]
    h.process_element(("a", 5))
    h.set_processing_time(1250)
    assert h.extract_output_values() == [("a", 3), ("a", 5)]


class CountWithTimeout(KeyedProcessFunction):
    def open(self, runtime_context: Any) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))

    def process_element(self, value: Any, ctx: Any) -> Any:
        self.count.update((self.count.value() or 0) + 1)
        ctx.timer_service().register_event_time_timer(ctx.timestamp() + 10)
        return None

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        yield (ctx.get_current_key(), self.count.value(), timestamp)


@pytest.mark.parametrize("backend", BACKENDS)
def test_keyed_process_state_and_timers_restore(backend: str) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    stream = env.from_collection([("a", 0)]).key_by(lambda e: e[0]).process(CountWithTimeout())
    cfg = {"state.backend": backend}
    h = OneInputOperatorTestHarness.for_stream(stream, config=cfg)
    h.process_elements([("a", 0), ("a", 0), ("b", 0)], [1, 2, 3])
    snap = h.snapshot()
    h.close()
    h2 = OneInputOperatorTestHarness.for_stream(stream, config=cfg)
    h2.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
    h2.process_element(("b", 0), 4)
    h2.process_watermark(14)
    assert sorted(h2.extract_output_with_timestamps()) == [
        (("a", 2, 11), 11), (("a", 2, 12), 12), (("b", 2, 13), 13), (("b", 2, 14), 14)]
    h2.close()


def test_many_windows_fast_path_and_cache_eviction() -> None:
    stream = window_stream(TumblingEventTimeWindows.of(10))
    h = OneInputOperatorTestHarness.for_stream(stream)
    expected = []
    for i in range(200):  # 200 windows: the window cache is pruned as time advances
        h.process_elements([("a", 1), ("a", 2)], [i * 10, i * 10 + 5])
        h.process_watermark(i * 10 + 9)
        expected.append((("a", 3), i * 10 + 9))
    h.process_element(("a", 100), 3)  # far too late: dropped
    assert h.extract_output_with_timestamps() == expected
    fast = h.operator.fast  # type: ignore[attr-defined]
    assert fast.cache == {} and fast.windows == {}  # fired windows are dropped


def test_checkpointed_function_operator_state_redistributes() -> None:
    from strom.datastream import MapFunction
    from strom.datastream.functions import CheckpointedFunction
    from strom.datastream.state import ListStateDescriptor

    class Buffering(MapFunction, CheckpointedFunction):
        def initialize_state(self, context: Any) -> None:
            self.state = context.get_operator_state_store().get_list_state(
                ListStateDescriptor("buffer"))
            self.buffer = list(self.state.get()) if context.is_restored() else []
            self.restored = context.is_restored()

        def snapshot_state(self, context: Any) -> None:
            self.state.update(list(self.buffer))

        def map(self, value: Any) -> Any:
            self.buffer.append(value)
            return (len(self.buffer), self.restored)

    env = StreamExecutionEnvironment.get_execution_environment()
    stream = env.from_collection([1]).map(Buffering())
    snaps = {}
    for i in range(2):
        h = OneInputOperatorTestHarness.for_stream(stream, parallelism=2, subtask_index=i)
        h.process_elements([f"{i}-{n}" for n in range(3)])
        snaps[i] = h.snapshot()
    restored = []
    for i in range(3):  # scale 2 -> 3: 6 elements split evenly, 2 each
        h = OneInputOperatorTestHarness.for_stream(stream, parallelism=3, subtask_index=i)
        h.initialize_state(OneInputOperatorTestHarness.repartition(snaps, 2))
        h.process_element("new")
        restored.append((h.operator.user_function.buffer, h.extract_output_values()))
    assert [b for b, _ in restored] == [
        ["0-0", "0-1", "new"], ["0-2", "1-0", "new"], ["1-1", "1-2", "new"]]
    assert all(out == [(3, True)] for _, out in restored)


@pytest.mark.parametrize(("first", "second"), [("hashmap", "rocksdb"), ("rocksdb", "hashmap")])
def test_window_state_moves_between_fast_and_generic_paths(first: str, second: str) -> None:
    """Heap windows take the fast path, RocksDB the generic one; snapshots are shared."""
    env = StreamExecutionEnvironment.get_execution_environment()
    stream = env.from_collection([("x", 0)]).key_by(lambda e: e[0]) \
        .window(TumblingEventTimeWindows.of(10)).allowed_lateness(20) \
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
    h = OneInputOperatorTestHarness.for_stream(stream, config={"state.backend": first})
    h.process_elements([("a", 1), ("b", 2), ("a", 4)], [1, 2, 15])
    h.process_watermark(9)  # fires [0, 10): a=1, b=2; kept for lateness until 29
    assert sorted(h.extract_output_values()) == [("a", 1), ("b", 2)]
    snap = h.snapshot()
    h.close()
    h2 = OneInputOperatorTestHarness.for_stream(stream, config={"state.backend": second})
    h2.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
    h2.process_watermark(9)  # watermarks restart after a restore; [0, 10) already fired
    assert h2.extract_output_values() == []
    h2.process_element(("a", 10), 5)  # late within lateness: re-fires a at once
    assert h2.extract_output_with_timestamps() == [(("a", 11), 9)]
    h2.process_watermark(19)  # fires [10, 20) once (no re-firing of [0, 10))
    assert h2.extract_output_with_timestamps()[1:] == [(("a", 4), 19)]
    h2.process_watermark(40)  # everything cleaned up; a late record is dropped
    h2.process_element(("a", 100), 6)
    assert len(h2.extract_output_values()) == 2
    h2.close()
