"""Per-split watermarks: the source's watermark is the min over its splits; idle splits
are excluded so a quiet split never stalls event time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from strom.connectors.source import (
    Boundedness,
    InputStatus,
    ReaderOutput,
    Source,
    SourceReader,
    SourceSplit,
    SplitEnumerator,
)
from strom.datastream import AggregateFunction, StreamExecutionEnvironment, WatermarkStrategy
from strom.datastream.window import TumblingEventTimeWindows


class _Split(SourceSplit):
    def __init__(self, sid: str, items: list[tuple[str, int]]) -> None:
        self.sid = sid
        self.items = items
        self.pos = 0

    def split_id(self) -> str:
        return self.sid


class _Enum(SplitEnumerator[_Split, list[_Split]]):
    def __init__(self, ctx: Any, splits: list[_Split]) -> None:
        self.ctx = ctx
        self.splits = splits

    def add_reader(self, subtask_id: int) -> None:
        for s in self.splits:
            self.ctx.assign_split(s, subtask_id)
        self.splits = []

    def handle_split_request(self, subtask_id: int, requester_hostname: str | None) -> None:
        pass

    def add_splits_back(self, splits: list[_Split], subtask_id: int) -> None:
        self.splits.extend(splits)

    def snapshot_state(self, checkpoint_id: int) -> list[_Split]:
        return list(self.splits)


class _Reader(SourceReader[Any, _Split]):
    """Emits each split's items through its own split output, then stays open forever."""

    def __init__(self) -> None:
        self.splits: list[_Split] = []

    def poll_next(self, output: ReaderOutput) -> InputStatus:
        emitted = False
        for s in self.splits:
            if s.pos < len(s.items):
                out = output.create_output_for_split(s.sid)
                out.collect_batch([s.items[s.pos]])
                s.pos += 1
                emitted = True
        return InputStatus.MORE_AVAILABLE if emitted else InputStatus.NOTHING_AVAILABLE

    def add_splits(self, splits: list[_Split]) -> None:
        self.splits.extend(splits)

    def notify_no_more_splits(self) -> None:
        pass

    def snapshot_state(self, checkpoint_id: int) -> list[_Split]:
        return list(self.splits)


class TwoSplitSource(Source[Any, _Split, list[_Split]]):
    """A quiet split (one record at t=0) and a busy one (a record every second)."""

    def get_boundedness(self) -> Boundedness:
        return Boundedness.CONTINUOUS_UNBOUNDED

    def get_max_parallelism(self) -> int:
        return 1

    def create_reader(self, context: Any) -> _Reader:
        return _Reader()

    def create_enumerator(self, context: Any) -> _Enum:
        busy = [("busy", t * 1000) for t in range(1, 40)]
        return _Enum(context, [_Split("quiet", [("quiet", 0)]), _Split("busy", busy)])

    def restore_enumerator(self, context: Any, checkpoint: list[_Split]) -> _Enum:
        return _Enum(context, checkpoint)


class Count(AggregateFunction):
    def create_accumulator(self) -> int:
        return 0

    def add(self, value: Any, acc: int) -> int:
        return acc + 1

    def get_result(self, acc: int) -> int:
        return acc

    def merge(self, a: int, b: int) -> int:
        return a + b


def test_idle_split_does_not_stall_windows() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.configure("pipeline.auto-watermark-interval", 10)
    env.set_buffer_timeout(5)
    strategy = (
        WatermarkStrategy.for_monotonous_timestamps()
        .with_timestamp_assigner(lambda e: e[1])
        .with_idleness(timedelta(milliseconds=100))
    )
    out = (
        env.from_source(TwoSplitSource(), strategy, "two-splits")
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(10_000))
        .aggregate(Count())
        .execute_and_collect(limit=3)
    )
    # quiet [0,10s) has 1; busy [0,10s) has 9 (1..9 s), [10,20s) has 10: all three windows
    # fire although the job never ends, because the quiet split went idle
    assert sorted(out) == [1, 9, 10]


def test_without_idleness_the_quiet_split_holds_back_time() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.configure("pipeline.auto-watermark-interval", 10)
    env.set_buffer_timeout(5)
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(
        lambda e: e[1])
    client_out = (
        env.from_source(TwoSplitSource(), strategy, "two-splits")
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(10_000))
        .aggregate(Count())
        .execute_and_collect()
    )
    import time

    try:
        time.sleep(0.5)  # plenty of time for the busy split to emit all 39 records
        client = client_out.job_client
        metrics = client.get_metrics()
        window_in = sum(m["records_in"] for m in metrics if m["operator"].startswith("Window"))
        window_out = sum(m["records_out"] for m in metrics if m["operator"].startswith("Window"))
        assert window_in == 40  # every record reached the window operator...
        assert window_out == 0  # ...but the quiet split's watermark (0) fired nothing
    finally:
        client_out.close()


def test_file_source_emits_periodic_watermarks_while_running(tmp_path: Any) -> None:
    """Split outputs (FileSource) drive the watermark while the job runs, not only at the
    end: with a continuously monitored directory the job never ends, yet windows fire."""
    from strom.connectors.file import FileSource, StreamFormat

    (tmp_path / "a.txt").write_text("".join(f"k,{t}\n" for t in range(0, 30_000, 1000)))
    source = (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(tmp_path))
        .monitor_continuously(timedelta(milliseconds=50))
        .build()
    )
    env = StreamExecutionEnvironment.get_execution_environment()
    env.configure("pipeline.auto-watermark-interval", 10)
    env.set_buffer_timeout(5)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(0).with_timestamp_assigner(
        lambda line: int(line.split(",")[1]))
    out = (
        env.from_source(source, strategy, "files")
        .key_by(lambda line: line.split(",")[0])
        .window(TumblingEventTimeWindows.of(10_000))
        .aggregate(Count())
        .execute_and_collect(limit=2)
    )
    assert list(out) == [10, 10]  # [0, 10 s) and [10 s, 20 s) fired while running
