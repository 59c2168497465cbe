"""FileSource split assignment, checkpoint/restore and continuous monitoring."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from file_connector_harness import (
    CollectingOutput,
    EnumeratorContext,
    ReaderContext,
    SourceHarness,
)

from strom.connectors.file import (
    BulkFormat,
    CsvFormat,
    FileSource,
    FileSourceSplit,
    PendingSplitsCheckpoint,
    StreamFormat,
)
from strom.connectors.source import Boundedness, InputStatus


def make_files(directory: Path, count: int, lines: int) -> list[str]:
    expected = []
    for f in range(count):
        rows = [f"f{f}-{i}" for i in range(lines)]
        (directory / f"f{f}.txt").write_text("".join(r + "\n" for r in rows))
        expected.extend(rows)
    return expected


def text_source(path: Path, batch_size: int = 1000) -> FileSource:
    return (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), path)
        .set_batch_size(batch_size)
        .build()
    )


def test_split_identity_and_pickling() -> None:
    split = FileSourceSplit("/data/a.txt")
    moved = split.update_with_checkpointed_position(7)
    assert split.split_id() == moved.split_id() == "/data/a.txt"
    assert (split.records_to_skip, moved.records_to_skip) == (0, 7)
    assert pickle.loads(pickle.dumps(moved)) == moved
    source = text_source(Path("/data"))
    assert pickle.loads(pickle.dumps(source)).paths == ("/data",)


def test_static_enumerator_assigns_in_path_order_then_no_more(tmp_path: Path) -> None:
    make_files(tmp_path, 3, 1)
    context = EnumeratorContext(parallelism=2)
    enumerator = text_source(tmp_path).create_enumerator(context)
    enumerator.start()
    enumerator.handle_split_request(1, None)
    enumerator.handle_split_request(0, None)
    enumerator.handle_split_request(1, None)
    enumerator.handle_split_request(0, None)
    assert [s.path for s in context.assignments[1]] == [
        str(tmp_path / "f0.txt"),
        str(tmp_path / "f2.txt"),
    ]
    assert [s.path for s in context.assignments[0]] == [str(tmp_path / "f1.txt")]
    assert context.no_more_splits == {0}
    assert text_source(tmp_path).get_boundedness() is Boundedness.BOUNDED


def test_parallel_readers_read_every_file_once(tmp_path: Path) -> None:
    expected = make_files(tmp_path, 7, 50)
    harness = SourceHarness(text_source(tmp_path, batch_size=16), parallelism=3)
    harness.run_until_idle()
    assert all(s is InputStatus.END_OF_INPUT for s in harness.statuses)
    assert sorted(harness.records()) == sorted(expected)
    assert all(out.records for out in harness.outputs)  # work was spread
    harness.close()


def test_reader_waits_then_ends(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    context = ReaderContext()
    reader = text_source(tmp_path).create_reader(context)
    reader.start()
    out = CollectingOutput()
    assert context.split_requests == 1
    assert reader.poll_next(out) is InputStatus.NOTHING_AVAILABLE
    assert context.split_requests == 1  # no duplicate request while one is outstanding
    reader.add_splits([FileSourceSplit(str(tmp_path / "a.txt"))])
    assert reader.poll_next(out) is InputStatus.MORE_AVAILABLE
    assert reader.poll_next(out) is InputStatus.NOTHING_AVAILABLE  # finished, asked again
    assert context.split_requests == 2
    reader.notify_no_more_splits()
    assert reader.poll_next(out) is InputStatus.END_OF_INPUT
    assert out.records == ["x"]
    reader.close()


def snapshot_restore_roundtrip(
    source: FileSource, polls_before: int, parallelism: int = 1
) -> tuple[list[Any], list[Any]]:
    """Read ``polls_before`` polls per reader, snapshot everything, restore into fresh objects.

    Returns (records before the snapshot, records after the restore).
    """
    first = SourceHarness(source, parallelism)
    for _ in range(polls_before):
        for i in range(parallelism):
            first.poll(i)
    first.pump()
    reader_states = {i: r.snapshot_state(1) for i, r in enumerate(first.readers)}
    enum_state = first.enumerator.snapshot_state(1)
    before = first.records()
    # More records after the checkpoint are lost with the failure: they must be re-read.
    for i in range(parallelism):
        first.poll(i)
    first.close()
    reader_states, enum_state = pickle.loads(pickle.dumps((reader_states, enum_state)))
    second = SourceHarness(
        source, parallelism, enumerator_state=enum_state, reader_states=reader_states
    )
    second.run_until_idle()
    assert all(s is InputStatus.END_OF_INPUT for s in second.statuses)
    after = second.records()
    second.close()
    return before, after


@pytest.mark.parametrize("parallelism", [1, 2])
def test_snapshot_mid_split_restores_exactly(tmp_path: Path, parallelism: int) -> None:
    expected = make_files(tmp_path, 4, 95)
    before, after = snapshot_restore_roundtrip(text_source(tmp_path, 20), 3, parallelism)
    assert 0 < len(before) < len(expected)
    assert sorted(before + after) == sorted(expected)
    assert len(before) + len(after) == len(expected)


def test_snapshot_mid_split_restores_exactly_compressed_csv(tmp_path: Path) -> None:
    rows = [{"k": str(i), "v": str(i * i)} for i in range(1000)]
    text = "k,v\n" + "".join(f"{r['k']},{r['v']}\n" for r in rows)
    (tmp_path / "data.csv.gz").write_bytes(gzip.compress(text.encode()))
    fmt = CsvFormat(on_error="skip")
    source = FileSource.for_record_stream_format(fmt, tmp_path).set_batch_size(128).build()
    before, after = snapshot_restore_roundtrip(source, 3)
    assert before == rows[:384]
    assert after == rows[384:]


def test_snapshot_mid_split_restores_exactly_parquet(tmp_path: Path) -> None:
    rows = [{"id": i} for i in range(1000)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet", row_group_size=150)
    source = (
        FileSource.for_bulk_file_format(BulkFormat.parquet(), tmp_path).set_batch_size(100).build()
    )
    before, after = snapshot_restore_roundtrip(source, 4)
    assert len(before) > 0
    assert before + after == rows


def test_reader_snapshot_carries_position(tmp_path: Path) -> None:
    expected = make_files(tmp_path, 1, 30)
    harness = SourceHarness(text_source(tmp_path, batch_size=10))
    harness.poll()
    harness.poll()
    (split,) = harness.readers[0].snapshot_state(5)
    assert split == FileSourceSplit(str(tmp_path / "f0.txt"), records_to_skip=20)
    harness.close()
    fresh = text_source(tmp_path).create_reader(ReaderContext())
    fresh.add_splits([split])
    fresh.start()
    fresh.notify_no_more_splits()
    out = CollectingOutput()
    while fresh.poll_next(out) is not InputStatus.END_OF_INPUT:
        pass
    assert out.records == expected[20:]
    fresh.close()


def test_enumerator_restore_does_not_relist(tmp_path: Path) -> None:
    make_files(tmp_path, 2, 1)
    state = PendingSplitsCheckpoint(
        splits=(FileSourceSplit(str(tmp_path / "f1.txt")),),
        already_processed_paths=frozenset({str(tmp_path / "f0.txt"), str(tmp_path / "f1.txt")}),
    )
    make_files(tmp_path, 3, 1)  # f2 appears after the checkpoint: a static set ignores it
    context = EnumeratorContext()
    enumerator = text_source(tmp_path).restore_enumerator(context, state)
    enumerator.start()
    enumerator.handle_split_request(0, None)
    enumerator.handle_split_request(0, None)
    assert [s.path for s in context.assignments[0]] == [str(tmp_path / "f1.txt")]
    assert context.no_more_splits == {0}


def test_add_splits_back_reassigns_with_progress(tmp_path: Path) -> None:
    make_files(tmp_path, 1, 1)
    context = EnumeratorContext(parallelism=2)
    enumerator = text_source(tmp_path).create_enumerator(context)
    enumerator.start()
    enumerator.handle_split_request(0, None)
    returned = context.assignments[0][0].update_with_checkpointed_position(3)
    enumerator.add_splits_back([returned], 0)
    assert enumerator.snapshot_state(2).splits == (returned,)
    enumerator.handle_split_request(1, None)
    assert context.assignments[1] == [returned]


def test_continuous_monitoring_picks_up_new_files_once(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a1\na2\n")
    source = (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), tmp_path)
        .monitor_continuously(250)
        .build()
    )
    assert source.get_boundedness() is Boundedness.CONTINUOUS_UNBOUNDED
    harness = SourceHarness(source)
    ((_, _, delay, period),) = harness.enum_context.async_calls
    assert (delay, period) == (0, 250)
    harness.enum_context.run_async()  # first discovery
    harness.run_until_idle()
    assert harness.records() == ["a1", "a2"]
    assert harness.statuses[0] is InputStatus.NOTHING_AVAILABLE  # waits for more files

    # Nothing new: the reader keeps waiting; old files are not re-read.
    harness.enum_context.run_async()
    harness.run_until_idle()
    assert harness.records() == ["a1", "a2"]

    # A new file (written hidden, then renamed) and a modified old file.
    (tmp_path / ".b.txt.tmp").write_text("b1\n")
    (tmp_path / ".b.txt.tmp").rename(tmp_path / "b.txt")
    (tmp_path / "a.txt").write_text("a1\na2\na3\n")
    harness.enum_context.run_async()
    harness.run_until_idle()
    assert harness.records() == ["a1", "a2", "b1"]

    # Checkpoint and restore the enumerator: seen files stay seen.
    state = pickle.loads(pickle.dumps(harness.enumerator.snapshot_state(1)))
    harness.close()
    (tmp_path / "c.txt").write_text("c1\n")
    restored = SourceHarness(source, enumerator_state=state)
    restored.enum_context.run_async()
    restored.run_until_idle()
    assert restored.records() == ["c1"]
    restored.close()


def test_continuous_reader_served_when_file_appears_later(tmp_path: Path) -> None:
    source = (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), tmp_path)
        .monitor_continuously(1000)
        .build()
    )
    harness = SourceHarness(source, parallelism=2)
    harness.enum_context.run_async()
    harness.run_until_idle()
    assert harness.statuses == [InputStatus.NOTHING_AVAILABLE] * 2
    (tmp_path / "late.txt").write_text("late\n")
    harness.enum_context.run_async()
    harness.run_until_idle()
    assert harness.records() == ["late"]
    harness.close()
