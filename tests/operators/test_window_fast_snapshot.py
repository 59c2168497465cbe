"""The window fast path's snapshot: the generic keyed-state format, timers grouped per
window (timer snapshot version 2), exact state after a restore, and version 1 snapshots
(one timer tuple per key and window) still restore."""

from __future__ import annotations

from typing import Any

import pytest

from strom._runtime.time.timer_service import (
    TIMER_SNAPSHOT_VERSION,
    InternalTimerService,
    snapshot_timers,
)
from strom.datastream import StreamExecutionEnvironment
from strom.datastream.trigger import EventTimeTrigger
from strom.datastream.window import (
    SlidingEventTimeWindows,
    TimeWindow,
    TumblingEventTimeWindows,
)
from strom.errors import InvalidProgramError
from strom.testing import OneInputOperatorTestHarness

W0, W1 = TimeWindow(0, 10), TimeWindow(10, 20)


def stream(lateness: int = 20) -> Any:
    env = StreamExecutionEnvironment.get_execution_environment()
    return env.from_collection([("x", 0)]).key_by(lambda e: e[0]) \
        .window(TumblingEventTimeWindows.of(10)).allowed_lateness(lateness) \
        .reduce(lambda a, b: (a[0], a[1] + b[1]))


def harness_with_state(config: dict[str, str] | None = None) -> Any:
    """[0, 10) holds a and b and has fired (kept for lateness); [10, 20) holds a."""
    h = OneInputOperatorTestHarness.for_stream(stream(), config=config)
    h.process_elements([("a", 1), ("b", 2), ("a", 4)], [1, 2, 15])
    h.process_watermark(9)
    assert sorted(h.extract_output_values()) == [("a", 1), ("b", 2)]
    return h


def test_fast_path_snapshot_format() -> None:
    h = harness_with_state()
    assert h.operator.fast is not None
    snap = h.snapshot()
    assert snap["timers"] == {
        "version": 2,
        "event": [],
        "event_groups": [(19, W1, ["a"]), (29, W0, ["a", "b"]), (39, W1, ["a"])],
        "processing": [],
    }
    assert snap["window_contents"] == {
        "version": 1,
        "windows": {W0: {"a": ("a", 1), "b": ("b", 2)}, W1: {"a": ("a", 4)}},
    }
    assert snap["keyed"].encoding == "heap"
    assert snap["keyed"].key_groups == {}  # no other keyed state
    assert "window-contents" in snap["keyed"].states  # the state is declared
    h.close()


def test_fast_path_snapshot_is_a_copy() -> None:
    h = harness_with_state()
    snap = h.operator.snapshot_state(1)
    h.process_elements([("a", 100), ("c", 1)], [16, 17])
    assert snap["window_contents"]["windows"] == {
        W0: {"a": ("a", 1), "b": ("b", 2)}, W1: {"a": ("a", 4)}}
    assert snap["timers"]["event_groups"][0] == (19, W1, ["a"])
    h.close()


def test_fast_path_snapshot_matches_the_generic_path_timers() -> None:
    """The grouped timers expand to exactly the timers the generic path holds."""
    fast = harness_with_state()
    generic = harness_with_state({"state.backend": "rocksdb"})
    assert generic.operator.fast is None
    fast_snap, generic_snap = fast.snapshot(), generic.snapshot()
    expanded = sorted(snapshot_timers(fast_snap["timers"], "event"))
    assert expanded == sorted(snapshot_timers(generic_snap["timers"], "event"))
    assert expanded == [(19, "a", W1), (29, "a", W0), (29, "b", W0), (39, "a", W1)]
    fast.close()
    generic.close()


def fast_state(h: Any) -> tuple[Any, ...]:
    f = h.operator.fast
    return (f.windows, f.fired, sorted(f.to_fire), sorted(f.to_clean))


def test_fast_path_restore_is_exact() -> None:
    h = harness_with_state()
    before = fast_state(h)
    snap = h.snapshot()
    h.close()
    h2 = OneInputOperatorTestHarness.for_stream(stream())
    h2.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
    assert fast_state(h2) == before == (
        {W0: {"a": ("a", 1), "b": ("b", 2)}, W1: {"a": ("a", 4)}},
        {W0},
        [(19, 10, 20)],
        [(29, 0, 10), (39, 10, 20)],
    )
    h2.close()


def test_version_1_timers_still_restore_on_the_fast_path() -> None:
    h = harness_with_state()
    snap = h.snapshot()
    before = fast_state(h)
    h.close()
    snap["timers"] = {"version": 1, "processing": [],
                      "event": sorted(snapshot_timers(snap["timers"], "event"))}
    h2 = OneInputOperatorTestHarness.for_stream(stream())
    h2.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
    assert fast_state(h2) == before
    h2.process_watermark(9)  # watermarks restart after a restore; [0, 10) fired already
    h2.process_element(("b", 5), 3)  # within lateness: re-fires b at once
    h2.process_watermark(19)
    assert h2.extract_output_with_timestamps() == [(("b", 7), 9), (("a", 4), 19)]
    h2.close()


@pytest.mark.parametrize("parallelism", [2, 3])
def test_grouped_timers_rescale(parallelism: int) -> None:
    h = OneInputOperatorTestHarness.for_stream(stream(lateness=0))
    keys = [f"k{i}" for i in range(50)]
    h.process_elements([(k, 1) for k in keys], [1] * len(keys))
    h.process_elements([(k, 2) for k in keys[:10]], [12] * 10)
    snap = h.snapshot()
    h.close()
    fired: list[Any] = []
    for i in range(parallelism):
        hi = OneInputOperatorTestHarness.for_stream(
            stream(lateness=0), parallelism=parallelism, subtask_index=i)
        hi.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
        assert hi.operator.fast is not None
        hi.process_watermark(100)
        out = hi.extract_output_with_timestamps()
        assert out  # every subtask owns some of the 50 keys
        fired.extend(out)
        hi.close()
    assert sorted(fired) == sorted(
        [((k, 1), 9) for k in keys] + [((k, 2), 19) for k in keys[:10]])


def test_timer_service_reads_both_versions_and_rejects_newer() -> None:
    groups = {"version": 2, "event": [(5, "z", "ns0")],
              "event_groups": [(7, "ns1", ["a", "b"])],
              "processing_groups": [(9, "ns2", ["c"])]}
    assert list(snapshot_timers(groups, "event")) == [
        (5, "z", "ns0"), (7, "a", "ns1"), (7, "b", "ns1")]
    assert list(snapshot_timers(groups, "processing")) == [(9, "c", "ns2")]
    assert list(snapshot_timers({"event": [(1, "k", None)]}, "event")) == [(1, "k", None)]
    assert TIMER_SNAPSHOT_VERSION == 2
    with pytest.raises(InvalidProgramError, match="format version 3"):
        list(snapshot_timers({"version": 3, "event": []}, "event"))


def test_timer_service_restores_grouped_timers_with_a_key_filter() -> None:
    fired: list[tuple[int, Any, Any]] = []

    class Target:
        def on_event_time(self, ts: int, key: Any, ns: Any) -> None:
            fired.append((ts, key, ns))

        def on_processing_time(self, ts: int, key: Any, ns: Any) -> None:
            raise AssertionError

    class Pts:
        def get_current_processing_time(self) -> int:
            return 0

        def register_timer(self, ts: int, cb: Any) -> None:
            raise AssertionError

    keys: list[Any] = []
    svc = InternalTimerService(keys.append, lambda: keys[-1], Target(), Pts())  # type: ignore[arg-type]
    svc.restore({"version": 2, "event": [(3, "a", "n")],
                 "event_groups": [(3, "n", ["a", "b"]), (8, "m", ["a", "c"])]},
                key_filter=lambda k: k != "c")
    svc.advance_watermark(10)
    assert fired == [(3, "a", "n"), (3, "b", "n"), (8, "a", "m")]


class _GenericTrigger(EventTimeTrigger):
    """EventTimeTrigger behaviour on the generic path (the fast path wants the exact type)."""


def generic_stream() -> Any:
    env = StreamExecutionEnvironment.get_execution_environment()
    return env.from_collection([("x", 0)]).key_by(lambda e: e[0]) \
        .window(TumblingEventTimeWindows.of(10)).trigger(_GenericTrigger()) \
        .allowed_lateness(20).reduce(lambda a, b: (a[0], a[1] + b[1]))


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_fast_path_snapshot_restores_on_the_generic_path(backend: str) -> None:
    h = harness_with_state()
    snap = h.snapshot()
    h.close()
    h2 = OneInputOperatorTestHarness.for_stream(generic_stream(), config={
        "state.backend": backend})
    h2.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
    assert h2.operator.fast is None
    assert h2.operator.timers.num_event_time_timers() == 4
    h2.process_watermark(9)
    h2.process_element(("b", 5), 3)  # [0, 10) fired already: within lateness, re-fires b
    h2.process_watermark(19)
    assert h2.extract_output_with_timestamps() == [(("b", 7), 9), (("a", 4), 19)]
    h2.process_watermark(40)  # cleaned up: nothing left
    assert h2.operator.timers.num_event_time_timers() == 0
    h2.close()


def test_newer_window_contents_version_is_rejected() -> None:
    h = harness_with_state()
    snap = h.snapshot()
    h.close()
    snap["window_contents"]["version"] = 2
    h2 = OneInputOperatorTestHarness.for_stream(stream())
    with pytest.raises(InvalidProgramError, match="format version 2"):
        h2.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))


def sliding(generic: bool) -> Any:
    env = StreamExecutionEnvironment.get_execution_environment()
    w = env.from_collection([("x", 0)]).key_by(lambda e: e[0]) \
        .window(SlidingEventTimeWindows.of(10, 5))
    if generic:
        w = w.trigger(_GenericTrigger())
    return w.allowed_lateness(20).reduce(lambda a, b: (a[0], a[1] + b[1]))


def restored(make: Any, snap: dict[str, Any], backend: str = "hashmap") -> Any:
    h = OneInputOperatorTestHarness.for_stream(make, config={"state.backend": backend})
    h.initialize_state(OneInputOperatorTestHarness.repartition({0: snap}, 1))
    return h


def drive(h: Any, steps: list[Any]) -> list[Any]:
    """Feed ``(value, ts)`` records and ``int`` watermarks; outputs after each step."""
    out = []
    seen = len(h.extract_output_with_timestamps())  # the harness keeps all outputs
    for step in steps:
        if isinstance(step, int):
            h.process_watermark(step)
        else:
            h.process_element(*step)
        got = h.extract_output_with_timestamps()
        out.append(sorted(got[seen:]))
        seen = len(got)
    h.close()
    return out


AFTER_RESTORE = [
    (("b", 5), 3),  # [0, 10) fired before the checkpoint; the watermark is not at 9 yet
    (("c", 1), 4),  # a key new to the fired window
    (("a", 7), 16),
    9,  # b and c fire again (a not: no record for it since the restore)
    (("a", 2), 5),  # now late within lateness: re-fires a at once
    19,
    (("b", 1), 6),
    40,  # cleaned up
    (("b", 1), 7),  # too late
]


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_records_for_fired_windows_after_a_restore_fire_at_the_window_end(backend: str) -> None:
    h = harness_with_state()
    snap = h.snapshot()
    h.close()
    fast = drive(restored(stream(), snap), AFTER_RESTORE)
    generic = drive(restored(generic_stream(), snap, backend), AFTER_RESTORE)
    assert fast == generic
    assert fast[3] == [(("b", 7), 9), (("c", 1), 9)]
    assert fast[4] == [(("a", 3), 9)]
    assert fast[5] == [(("a", 11), 19)]
    assert fast[6] == [(("b", 8), 9)]
    assert fast[7] == fast[8] == []


@pytest.mark.parametrize(("first", "second"), [
    ("fast", "fast"), ("fast", "generic"), ("generic", "fast"), ("generic", "generic")])
def test_pending_refires_survive_another_checkpoint(first: str, second: str) -> None:
    """Snapshot while a restored fired window waits to fire some keys again: only those
    keys fire at its end, whichever path took and restores the snapshot."""
    h = harness_with_state()
    snap = h.snapshot()
    h.close()
    h1 = restored(stream() if first == "fast" else generic_stream(), snap)
    h1.process_element(("b", 5), 3)
    snap2 = h1.snapshot()
    h1.close()
    if first == "fast":
        assert snap2["timers"]["event_groups"] == [
            (9, W0, ["b"]), (19, W1, ["a"]), (29, W0, ["a", "b"]), (39, W1, ["a"])]
    h2 = restored(stream() if second == "fast" else generic_stream(), snap2)
    assert drive(h2, [9, 19]) == [[(("b", 7), 9)], [(("a", 4), 19)]]


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_sliding_fired_windows_after_a_restore(backend: str) -> None:
    h = OneInputOperatorTestHarness.for_stream(sliding(False))
    h.process_elements([("a", 1), ("b", 2), ("a", 4)], [1, 7, 12])
    h.process_watermark(9)
    assert sorted(h.extract_output_with_timestamps()) == [
        (("a", 1), 4), (("a", 1), 9), (("b", 2), 9)]
    snap = h.snapshot()
    h.close()
    steps = [(("b", 5), 8), (("a", 1), 3), 9, (("c", 1), 6), 14, 19, 60]
    fast = drive(restored(sliding(False), snap), steps)
    assert fast == drive(restored(sliding(True), snap, backend), steps)
    assert fast[2] == [(("a", 2), 4), (("a", 2), 9), (("b", 7), 9)]
