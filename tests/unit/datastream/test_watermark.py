"""Tests for the watermark API (strom.datastream.watermark) and strom._utils.time.to_millis."""

from __future__ import annotations

import operator
import pickle
from dataclasses import FrozenInstanceError
from datetime import timedelta
from typing import Any

import pytest

from strom._utils.time import to_millis
from strom.datastream import watermark as watermark_module
from strom.datastream.watermark import (
    MAX_WATERMARK_MS,
    MIN_WATERMARK_MS,
    AscendingTimestampsWatermarks,
    BoundedOutOfOrdernessWatermarks,
    NoWatermarksGenerator,
    RecordTimestampAssigner,
    TimeDomain,
    TimestampAssigner,
    Watermark,
    WatermarkGenerator,
    WatermarkOutput,
    WatermarkStrategy,
    WatermarksWithIdleness,
)
from strom.errors import ConfigurationError, InvalidProgramError


class CollectingOutput(WatermarkOutput):
    """Records every call as a tuple: ("wm", ts), ("idle",) or ("active",)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def emit_watermark(self, watermark: Watermark) -> None:
        self.calls.append(("wm", watermark.timestamp_ms))

    def mark_idle(self) -> None:
        self.calls.append(("idle",))

    def mark_active(self) -> None:
        self.calls.append(("active",))

    def take(self) -> list[tuple[Any, ...]]:
        calls, self.calls = self.calls, []
        return calls


class ManualClock:
    def __init__(self, now_ms: int = 0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class PunctuatedGenerator(WatermarkGenerator[dict[str, Any]]):
    """Emits a watermark for every event flagged as a marker (uses the default on_events)."""

    def on_event(
        self, event: dict[str, Any], event_timestamp_ms: int, output: WatermarkOutput
    ) -> None:
        if event.get("marker"):
            output.emit_watermark(Watermark(event_timestamp_ms))

    def on_periodic_emit(self, output: WatermarkOutput) -> None:
        pass


def event_ts(event: dict[str, Any]) -> int:
    return int(event["ts"])


def event_ts_or_record(event: dict[str, Any], record_timestamp: int | None) -> int:
    return record_timestamp if record_timestamp is not None else int(event["ts"])


# --------------------------------------------------------------------------------------
# Watermark


def test_watermark_constants() -> None:
    assert MAX_WATERMARK_MS == 2**63 - 1
    assert MIN_WATERMARK_MS == -(2**63)
    assert Watermark.MAX_WATERMARK == Watermark(2**63 - 1)
    assert Watermark.MIN_WATERMARK == Watermark(-(2**63))


def test_watermark_is_frozen_ordered_and_hashable() -> None:
    w = Watermark(5)
    with pytest.raises(FrozenInstanceError):
        w.timestamp_ms = 6  # type: ignore[misc]
    assert Watermark(1) < Watermark(2) <= Watermark(2)
    assert max(Watermark(3), Watermark(9), Watermark(-1)) == Watermark(9)
    assert {Watermark(1): "a"}[Watermark(1)] == "a"
    assert repr(w) == "Watermark(timestamp_ms=5)"


@pytest.mark.parametrize("bad", [1.0, True, "5", None])
def test_watermark_rejects_non_int(bad: Any) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        Watermark(bad)


@pytest.mark.parametrize("bad", [2**63, -(2**63) - 1])
def test_watermark_rejects_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match="64-bit range"):
        Watermark(bad)


def test_time_domain() -> None:
    assert {d.name for d in TimeDomain} == {"EVENT_TIME", "PROCESSING_TIME"}


def test_public_names() -> None:
    defined_classes = {
        name
        for name, obj in vars(watermark_module).items()
        if isinstance(obj, type)
        and obj.__module__ == watermark_module.__name__
        and not name.startswith("_")
    }
    constants = {"MAX_WATERMARK_MS", "MIN_WATERMARK_MS"}
    assert set(watermark_module.__all__) == defined_classes | constants


# --------------------------------------------------------------------------------------
# Built-in generators


def test_bounded_out_of_orderness_exact_sequence() -> None:
    out = CollectingOutput()
    gen = BoundedOutOfOrdernessWatermarks(timedelta(milliseconds=500))
    gen.on_periodic_emit(out)
    assert out.take() == [("wm", MIN_WATERMARK_MS)]  # before any event: no underflow
    for ts in (1000, 3000, 2000):
        gen.on_event(None, ts, out)
    assert out.take() == []  # periodic only: on_event emits nothing
    gen.on_periodic_emit(out)
    gen.on_periodic_emit(out)
    gen.on_event(None, 2999, out)  # late events never move the watermark back
    gen.on_periodic_emit(out)
    gen.on_event(None, 4000, out)
    gen.on_periodic_emit(out)
    assert out.take() == [("wm", 2499), ("wm", 2499), ("wm", 2499), ("wm", 3499)]


def test_bounded_out_of_orderness_batch_path_matches_per_event() -> None:
    timestamps = [[5, 1, 9], [], [7, 8], [20, 3]]
    per_event, batched = CollectingOutput(), CollectingOutput()
    a = BoundedOutOfOrdernessWatermarks(2)
    b = BoundedOutOfOrdernessWatermarks(2)
    for batch in timestamps:
        for ts in batch:
            a.on_event(None, ts, per_event)
        a.on_periodic_emit(per_event)
        b.on_events([None] * len(batch), batch, batched)
        b.on_periodic_emit(batched)
    assert per_event.calls == batched.calls == [("wm", 6), ("wm", 6), ("wm", 6), ("wm", 17)]


def test_bounded_out_of_orderness_extreme_bound_does_not_overflow() -> None:
    out = CollectingOutput()
    gen = BoundedOutOfOrdernessWatermarks(MAX_WATERMARK_MS)
    gen.on_periodic_emit(out)
    assert out.take() == [("wm", MIN_WATERMARK_MS)]
    with pytest.raises(ConfigurationError, match="exceeds"):
        BoundedOutOfOrdernessWatermarks(MAX_WATERMARK_MS + 1)


@pytest.mark.parametrize("bad", [-1, timedelta(seconds=-1), 1.5, True, "1s"])
def test_bounded_out_of_orderness_rejects_bad_bound(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_out_of_orderness"):
        BoundedOutOfOrdernessWatermarks(bad)


def test_ascending_timestamps() -> None:
    out = CollectingOutput()
    gen = AscendingTimestampsWatermarks()
    gen.on_periodic_emit(out)
    gen.on_events(["a", "b"], [10, 20], out)
    gen.on_periodic_emit(out)
    gen.on_event("c", 21, out)
    gen.on_periodic_emit(out)
    assert out.calls == [("wm", MIN_WATERMARK_MS), ("wm", 19), ("wm", 20)]


def test_no_watermarks_generator_emits_nothing() -> None:
    out = CollectingOutput()
    gen = NoWatermarksGenerator()
    gen.on_event("a", 10, out)
    gen.on_events(["b"], [20], out)
    gen.on_periodic_emit(out)
    assert out.calls == []


def test_default_on_events_loops_over_on_event() -> None:
    out = CollectingOutput()
    gen = PunctuatedGenerator()
    events = [{"marker": False}, {"marker": True}, {}, {"marker": True}]
    gen.on_events(events, [1, 2, 3, 4], out)
    assert out.calls == [("wm", 2), ("wm", 4)]
    with pytest.raises(ValueError):  # events and timestamps must be parallel lists
        gen.on_events(events, [1], out)


def test_watermark_generator_is_abstract() -> None:
    with pytest.raises(TypeError):
        WatermarkGenerator()  # type: ignore[abstract]


# --------------------------------------------------------------------------------------
# Idleness


def test_watermarks_with_idleness_exact_sequence() -> None:
    clock = ManualClock(0)
    out = CollectingOutput()
    gen = WatermarksWithIdleness(AscendingTimestampsWatermarks(), 100, clock)

    gen.on_event("a", 1000, out)
    gen.on_periodic_emit(out)  # activity since last check
    assert out.take() == [("wm", 999)]

    clock.now_ms = 50
    gen.on_periodic_emit(out)  # first quiet check: the inactivity timer starts at 50
    clock.now_ms = 150
    gen.on_periodic_emit(out)  # 100 ms quiet: not *more* than the timeout yet
    assert out.take() == [("wm", 999), ("wm", 999)]

    clock.now_ms = 151
    gen.on_periodic_emit(out)
    clock.now_ms = 400
    gen.on_periodic_emit(out)  # still idle: not marked again, nothing delegated
    assert out.take() == [("idle",)]

    gen.on_events(["b", "c"], [1500, 1200], out)
    assert out.take() == []
    clock.now_ms = 410
    gen.on_periodic_emit(out)
    assert out.take() == [("active",), ("wm", 1499)]

    clock.now_ms = 420
    gen.on_periodic_emit(out)  # timer restarts at 420
    clock.now_ms = 521
    gen.on_periodic_emit(out)
    assert out.take() == [("wm", 1499), ("idle",)]


def test_watermarks_with_idleness_empty_batch_is_not_activity() -> None:
    clock = ManualClock(0)
    out = CollectingOutput()
    gen = WatermarksWithIdleness(NoWatermarksGenerator(), timedelta(milliseconds=10), clock)
    gen.on_periodic_emit(out)  # timer starts at 0
    gen.on_events([], [], out)
    clock.now_ms = 11
    gen.on_periodic_emit(out)
    assert out.calls == [("idle",)]


@pytest.mark.parametrize("bad", [0, timedelta(0), -5, 2.5])
def test_watermarks_with_idleness_rejects_bad_timeout(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="idle_timeout"):
        WatermarksWithIdleness(NoWatermarksGenerator(), bad, ManualClock())


def test_watermarks_with_idleness_default_clock() -> None:
    out = CollectingOutput()
    gen = WatermarksWithIdleness(AscendingTimestampsWatermarks(), timedelta(hours=1))
    gen.on_event(None, 10, out)
    gen.on_periodic_emit(out)
    gen.on_periodic_emit(out)
    assert out.calls == [("wm", 9), ("wm", 9)]


# --------------------------------------------------------------------------------------
# Timestamp assigners


def test_record_timestamp_assigner() -> None:
    assigner = RecordTimestampAssigner()
    assert assigner.extract_timestamp("x", 42) == 42
    assert assigner.extract_timestamp("x", None) == MIN_WATERMARK_MS


def test_timestamp_assigner_is_abstract() -> None:
    with pytest.raises(TypeError):
        TimestampAssigner()  # type: ignore[abstract]


# --------------------------------------------------------------------------------------
# WatermarkStrategy


def test_strategy_for_bounded_out_of_orderness() -> None:
    for bound in (timedelta(seconds=1), 1000):
        strategy = WatermarkStrategy.for_bounded_out_of_orderness(bound)
        gen = strategy.create_watermark_generator()
        assert isinstance(gen, BoundedOutOfOrdernessWatermarks)
        out = CollectingOutput()
        gen.on_events([None], [5000], out)
        gen.on_periodic_emit(out)
        assert out.calls == [("wm", 3999)]
    with pytest.raises(ConfigurationError):
        WatermarkStrategy.for_bounded_out_of_orderness(-1)


def test_strategy_creates_a_fresh_generator_per_call() -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps()
    a, b = strategy.create_watermark_generator(), strategy.create_watermark_generator()
    assert isinstance(a, AscendingTimestampsWatermarks)
    assert a is not b
    assert isinstance(
        WatermarkStrategy.no_watermarks().create_watermark_generator(), NoWatermarksGenerator
    )


def test_strategy_defaults() -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps()
    assert strategy.create_timestamp_assigner() is None
    assert not strategy.has_timestamp_assigner()
    assert strategy.get_idle_timeout_ms() is None
    assert strategy.timestamp_function() is None


def test_strategy_is_immutable() -> None:
    base = WatermarkStrategy.for_monotonous_timestamps()
    with_ts = base.with_timestamp_assigner(event_ts)
    with_idle = with_ts.with_idleness(timedelta(seconds=30))
    assert base.timestamp_assigner is None and base.idle_timeout_ms is None
    assert with_ts.idle_timeout_ms is None and with_ts.has_timestamp_assigner()
    assert with_idle.get_idle_timeout_ms() == 30_000
    assert with_idle.timestamp_assigner is with_ts.timestamp_assigner
    with pytest.raises(FrozenInstanceError):
        base.idle_timeout_ms = 5  # type: ignore[misc]


def test_strategy_with_idleness_wraps_generator_and_uses_clock() -> None:
    clock = ManualClock(0)
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_idleness(10)
    gen = strategy.create_watermark_generator(clock=clock)
    assert isinstance(gen, WatermarksWithIdleness)
    out = CollectingOutput()
    gen.on_periodic_emit(out)
    clock.now_ms = 11
    gen.on_periodic_emit(out)
    assert out.calls == [("wm", MIN_WATERMARK_MS), ("idle",)]
    assert isinstance(strategy.create_watermark_generator(), WatermarksWithIdleness)


@pytest.mark.parametrize("bad", [0, -1, timedelta(0), 1.0, False])
def test_strategy_with_idleness_rejects_bad_timeout(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="idle_timeout"):
        WatermarkStrategy.no_watermarks().with_idleness(bad)


def test_one_argument_assigner_and_fast_path() -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(
        lambda e: e["ts"]
    )
    assigner = strategy.create_timestamp_assigner()
    assert assigner is not None
    assert assigner.extract_timestamp({"ts": 7}, 99) == 7
    f = strategy.timestamp_function()
    assert f is not None
    assert list(map(f, [{"ts": 1}, {"ts": 2}])) == [1, 2]


def test_two_argument_assigner_gets_record_timestamp() -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(
        event_ts_or_record
    )
    assigner = strategy.create_timestamp_assigner()
    assert assigner is not None
    assert assigner.extract_timestamp({"ts": 7}, 99) == 99
    assert assigner.extract_timestamp({"ts": 7}, None) == 7
    assert strategy.timestamp_function() is None  # may use the record timestamp


def test_assigner_arity_detection() -> None:
    def optional_second(value: int, record_timestamp: int | None = None) -> int:
        return value if record_timestamp is None else record_timestamp

    def var_args(*args: Any) -> int:
        return len(args)

    class Method:
        def ts(self, value: int) -> int:
            return value * 10

    def extract(fn: Any, value: Any, record_ts: int | None) -> int:
        assigner = WatermarkStrategy.no_watermarks().with_timestamp_assigner(fn)
        extracted = assigner.create_timestamp_assigner()
        assert extracted is not None
        return extracted.extract_timestamp(value, record_ts)

    assert extract(optional_second, 1, 5) == 5
    assert extract(var_args, 1, 5) == 2
    assert extract(Method().ts, 3, 5) == 30
    assert extract(operator.itemgetter("ts"), {"ts": 4}, 5) == 4  # no signature: 1 arg
    assert extract(operator.attrgetter("real"), 6, 5) == 6


def test_timestamp_assigner_instance_is_used_as_is() -> None:
    assigner = RecordTimestampAssigner()
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(assigner)
    assert strategy.create_timestamp_assigner() is assigner
    assert strategy.has_timestamp_assigner()
    assert strategy.timestamp_function() is None


@pytest.mark.parametrize(
    "bad",
    [
        42,
        lambda: 1,
        lambda a, b, c: 1,
    ],
)
def test_bad_timestamp_assigners(bad: Any) -> None:
    with pytest.raises(InvalidProgramError):
        WatermarkStrategy.no_watermarks().with_timestamp_assigner(bad)


def test_for_generator() -> None:
    strategy = WatermarkStrategy.for_generator(PunctuatedGenerator)
    gen = strategy.create_watermark_generator()
    assert isinstance(gen, PunctuatedGenerator)
    out = CollectingOutput()
    gen.on_event({"marker": True}, 3, out)
    assert out.calls == [("wm", 3)]


def test_for_generator_rejects_instances_and_bad_factories() -> None:
    with pytest.raises(InvalidProgramError, match="not an instance"):
        WatermarkStrategy.for_generator(PunctuatedGenerator())  # type: ignore[arg-type]
    with pytest.raises(InvalidProgramError):
        WatermarkStrategy.for_generator(5)  # type: ignore[arg-type]
    strategy: WatermarkStrategy[Any] = WatermarkStrategy.for_generator(
        lambda: "nope"  # type: ignore[arg-type,return-value]
    )
    with pytest.raises(InvalidProgramError, match="not a WatermarkGenerator"):
        strategy.create_watermark_generator()


def test_constructor_validates() -> None:
    with pytest.raises(InvalidProgramError):
        WatermarkStrategy(NoWatermarksGenerator, timestamp_assigner=event_ts)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        WatermarkStrategy(NoWatermarksGenerator, idle_timeout_ms=0)


def test_strategy_pickles() -> None:
    strategy = (
        WatermarkStrategy.for_bounded_out_of_orderness(timedelta(seconds=2))
        .with_timestamp_assigner(event_ts)
        .with_idleness(5)
    )
    restored = pickle.loads(pickle.dumps(strategy))
    assert restored.get_idle_timeout_ms() == 5
    f = restored.timestamp_function()
    assert f is not None and f({"ts": 3}) == 3
    gen = restored.create_watermark_generator(clock=ManualClock())
    out = CollectingOutput()
    gen.on_events([{}], [10_000], out)
    gen.on_periodic_emit(out)
    assert out.calls == [("wm", 7999)]


# --------------------------------------------------------------------------------------
# to_millis


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (0, 0),
        (1500, 1500),
        (timedelta(seconds=2), 2000),
        (timedelta(microseconds=1500), 1),  # truncated, as Flink's Duration.toMillis()
        (timedelta(microseconds=999), 0),
        (timedelta(days=1), 86_400_000),
    ],
)
def test_to_millis(duration: Any, expected: int) -> None:
    assert to_millis(duration) == expected


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (-1, "must not be negative"),
        (timedelta(microseconds=-1), "must not be negative"),
        (True, "got bool"),
        (1.5, r"timedelta\(seconds=1.5\)"),
        ("5s", "got str"),
        (None, "got NoneType"),
    ],
)
def test_to_millis_rejects(bad: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        to_millis(bad, name="window_size")
    with pytest.raises(ConfigurationError, match="window_size"):
        to_millis(bad, name="window_size")
