"""FileSink: rolling, two-phase commit, idempotent commits, restarts, formats."""

from __future__ import annotations

import datetime
import pickle
import re
import uuid
from pathlib import Path
from typing import Any

import fsspec
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from file_connector_harness import commit_all, read_all, writer_context

from strom.connectors.file import (
    CsvFormat,
    DateTimeBucketAssigner,
    DefaultRollingPolicy,
    Encoder,
    FileSink,
    FileSinkCommittable,
    FileSource,
    FileWriterState,
    OnCheckpointRollingPolicy,
    OutputFileConfig,
    ParquetBulkWriters,
    ParquetWriterFactory,
    PartFileInfo,
    RollingPolicy,
    StreamFormat,
)
from strom.connectors.file._writer import FileWriter
from strom.errors import ConfigurationError, ConnectorError


def visible(directory: Path) -> list[str]:
    return sorted(
        p.name for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


def hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".*") if p.is_file())


def part_order(name: str) -> tuple[int, int]:
    subtask, counter = re.findall(r"-(\d+)-(\d+)", name)[0]
    return int(subtask), int(counter)


def concat_parts(directory: Path) -> str:
    names = sorted(visible(directory), key=part_order)
    return "".join((directory / n).read_text() for n in names)


def string_sink(base: Path, part_size: int = 128 * 1024 * 1024, **config: str) -> FileSink:
    return (
        FileSink.for_row_format(base, Encoder.simple_string_encoder())
        .with_rolling_policy(RollingPolicy.default_rolling_policy(part_size=part_size))
        .with_output_file_config(OutputFileConfig(**config))
        .build()
    )


def test_size_rolling_two_phase_commit(tmp_path: Path) -> None:
    sink = string_sink(tmp_path, part_size=100, part_prefix="words", part_suffix=".txt")
    writer = sink.create_writer(writer_context())
    lines = [f"record-{i:04d}" for i in range(60)]
    for start in range(0, 60, 6):
        writer.write_batch(lines[start : start + 6], None)
    writer.flush(False)
    assert visible(tmp_path) == []  # nothing final before commit
    assert all(".inprogress." in name for name in hidden(tmp_path))

    committables = writer.prepare_commit()
    assert len(committables) == 5  # 6 records = 72 bytes; a part rolls after 2 batches
    assert visible(tmp_path) == []  # still invisible: pending until committed
    assert writer.prepare_commit() == []  # nothing new since the last call
    writer.flush(True)
    writer.close()

    committer = sink.create_committer()
    assert committer is not None
    commit_all(committer, pickle.loads(pickle.dumps(committables)))
    assert visible(tmp_path) == [f"words-0-{i}.txt" for i in range(5)]
    assert hidden(tmp_path) == []
    assert concat_parts(tmp_path) == "".join(line + "\n" for line in lines)

    # Committing again (e.g. after a restore) is a no-op.
    commit_all(committer, committables)
    assert visible(tmp_path) == [f"words-0-{i}.txt" for i in range(5)]
    committer.close()


def test_every_prepare_commit_rolls(tmp_path: Path) -> None:
    sink = string_sink(tmp_path)
    writer = sink.create_writer(writer_context(subtask=3))
    committer = sink.create_committer()
    assert committer is not None
    expected = ""
    for checkpoint in range(3):
        batch = [f"c{checkpoint}-{i}" for i in range(4)]
        writer.write_batch(batch, None)
        expected += "".join(b + "\n" for b in batch)
        commit_all(committer, writer.prepare_commit())
        assert writer.snapshot_state(checkpoint) == [FileWriterState({"": checkpoint + 1})]
    writer.close()
    assert visible(tmp_path) == ["part-3-0", "part-3-1", "part-3-2"]
    assert concat_parts(tmp_path) == expected


def test_restart_never_reuses_part_names(tmp_path: Path) -> None:
    sink = string_sink(tmp_path)
    committer = sink.create_committer()
    assert committer is not None
    first = sink.create_writer(writer_context())
    first.write_batch(["a"], None)
    committed = first.prepare_commit()
    state = first.snapshot_state(1)
    first.write_batch(["lost-after-checkpoint"], None)
    first.close()  # failure: the uncheckpointed in-progress file is discarded
    assert hidden(tmp_path) == [Path(committed[0].pending_path).name]

    restored = sink.restore_writer(writer_context(attempt=1), pickle.loads(pickle.dumps(state)))
    restored.write_batch(["b"], None)
    after_restore = restored.prepare_commit()
    commit_all(committer, committed + after_restore)
    restored.close()
    assert visible(tmp_path) == ["part-0-0", "part-0-1"]
    assert concat_parts(tmp_path) == "a\nb\n"

    # A fresh job (no state) in the same directory continues after existing parts.
    fresh = sink.create_writer(writer_context())
    fresh.write_batch(["c"], None)
    commit_all(committer, fresh.prepare_commit())
    fresh.close()
    assert visible(tmp_path) == ["part-0-0", "part-0-1", "part-0-2"]


def test_commit_errors(tmp_path: Path) -> None:
    committer = string_sink(tmp_path).create_committer()
    assert committer is not None
    gone = FileSinkCommittable("", str(tmp_path / ".p.inprogress.1"), str(tmp_path / "p"), 1)
    with pytest.raises(ConnectorError, match="data is lost"):
        commit_all(committer, [gone])
    (tmp_path / ".q.inprogress.1").write_text("new")
    (tmp_path / "q").write_text("other")
    clash = FileSinkCommittable("", str(tmp_path / ".q.inprogress.1"), str(tmp_path / "q"), 3)
    with pytest.raises(ConnectorError, match="already exists"):
        commit_all(committer, [clash])
    assert (tmp_path / "q").read_text() == "other"


def test_time_based_rolling(tmp_path: Path) -> None:
    now = [1_000_000]
    policy = DefaultRollingPolicy(
        part_size=10**9,
        rollover_interval=datetime.timedelta(seconds=10),
        inactivity_interval=datetime.timedelta(seconds=3),
    )
    sink = (
        FileSink.for_row_format(tmp_path, Encoder.simple_string_encoder())
        .with_rolling_policy(policy)
        .build()
    )
    writer = FileWriter(sink, writer_context(), clock=lambda: now[0])
    writer.write_batch(["a"], None)
    now[0] += 2_000
    writer.write_batch(["b"], None)  # 2 s idle: same file
    now[0] += 3_000
    writer.write_batch(["c"], None)  # 3 s idle: rolls first
    for _ in range(4):
        now[0] += 2_000
        writer.write_batch(["d"], None)  # up to 8 s old: same file
    now[0] += 1_000
    writer.on_processing_time(now[0])  # 9 s old, 1 s idle: stays open
    writer.write_batch(["e"], None)
    now[0] += 2_000
    writer.on_processing_time(now[0])  # 11 s old: rolls without a new record
    writer.write_batch(["f"], None)
    committables = writer.prepare_commit()
    writer.close()
    assert [Path(c.final_path).name for c in committables] == ["part-0-0", "part-0-1", "part-0-2"]
    commit_all(sink.create_committer(), committables)
    assert (tmp_path / "part-0-0").read_text() == "a\nb\n"
    assert (tmp_path / "part-0-1").read_text() == "c\n" + "d\n" * 4 + "e\n"
    assert (tmp_path / "part-0-2").read_text() == "f\n"


def test_policies() -> None:
    info = PartFileInfo("", creation_time_ms=0, last_update_time_ms=500, size=100)
    policy = RollingPolicy.default_rolling_policy(
        part_size=100, rollover_interval=1000, inactivity_interval=800
    )
    assert policy.should_roll_on_event(info)
    assert not policy.should_roll_on_processing_time(info, 999)
    assert policy.should_roll_on_processing_time(info, 1000)
    assert not DefaultRollingPolicy(part_size=101).should_roll_on_event(info)
    on_cp = OnCheckpointRollingPolicy()
    assert not on_cp.should_roll_on_event(info)
    assert not on_cp.should_roll_on_processing_time(info, 10**12)
    assert on_cp.should_roll_on_checkpoint(info)
    with pytest.raises(ConfigurationError, match="part_size"):
        DefaultRollingPolicy(part_size=0)
    with pytest.raises(ConfigurationError, match="inactivity_interval"):
        DefaultRollingPolicy(inactivity_interval=datetime.timedelta(0))


def test_invalid_sink_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="part_prefix"):
        OutputFileConfig(part_prefix=".hidden")
    with pytest.raises(ConfigurationError, match="part_suffix"):
        OutputFileConfig(part_suffix="a/b")
    with pytest.raises(ConfigurationError, match="encoder"):
        FileSink.for_row_format(tmp_path, "not an encoder")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="base_path"):
        FileSink.for_row_format("", Encoder.simple_string_encoder())
    with pytest.raises(ConfigurationError, match="columns"):
        Encoder.csv_encoder(write_header=True)


def test_json_lines_and_csv_roundtrip_through_file_source(tmp_path: Path) -> None:
    records = [{"id": i, "name": f"n,{i}", "tags": ["x"] * (i % 3)} for i in range(50)]
    json_sink = FileSink.for_row_format(tmp_path / "json", Encoder.json_lines_encoder()).build()
    json_sink = pickle.loads(pickle.dumps(json_sink))
    writer = json_sink.create_writer(writer_context())
    writer.write_batch(records[:25], None)
    writer.write_batch(records[25:], None)
    committer = json_sink.create_committer()
    assert committer is not None
    commit_all(committer, writer.prepare_commit())
    writer.close()
    json_source = FileSource.for_record_stream_format(
        StreamFormat.json_lines_format(), tmp_path / "json"
    )
    assert read_all(json_source.build()) == records

    flat = [{"id": r["id"], "name": r["name"]} for r in records]
    csv_sink = (
        FileSink.for_row_format(
            tmp_path / "csv", Encoder.csv_encoder(["id", "name"], write_header=True)
        )
        .with_rolling_policy(DefaultRollingPolicy(part_size=200))
        .with_output_file_config(OutputFileConfig(part_suffix=".csv"))
        .build()
    )
    writer = csv_sink.create_writer(writer_context())
    for start in range(0, 50, 10):
        writer.write_batch(flat[start : start + 10], None)
    committables = writer.prepare_commit()
    writer.close()
    assert len(committables) > 1  # every part file starts with its own header
    commit_all(csv_sink.create_committer(), committables)
    csv_files = sorted((tmp_path / "csv").iterdir(), key=lambda p: part_order(p.name))
    assert all(p.read_text().startswith("id,name\n") for p in csv_files)
    fmt = CsvFormat(converters={"id": int})
    read_back = [
        row
        for p in csv_files
        for row in read_all(FileSource.for_record_stream_format(fmt, p).build())
    ]
    assert read_back == flat


def test_csv_encoder_rejects_unknown_keys(tmp_path: Path) -> None:
    sink = FileSink.for_row_format(tmp_path, Encoder.csv_encoder(["a"])).build()
    writer = sink.create_writer(writer_context())
    with pytest.raises(ConnectorError, match=r"keys \['b'\]"):
        writer.write_batch([{"a": 1, "b": 2}], None)
    writer.close()
    assert list(tmp_path.iterdir()) == []  # nothing opened for an unencodable batch


def test_parquet_bulk_sink_roundtrip(tmp_path: Path) -> None:
    rows = [{"id": i, "name": f"n{i}", "score": i * 0.5} for i in range(3000)]
    sink = (
        FileSink.for_bulk_format(tmp_path, ParquetBulkWriters.for_dicts())
        .with_output_file_config(OutputFileConfig(part_suffix=".parquet"))
        .build()
    )
    writer = sink.create_writer(writer_context())
    committer = sink.create_committer()
    assert committer is not None
    for checkpoint, chunk in enumerate((rows[:1000], rows[1000:])):
        for start in range(0, len(chunk), 250):
            writer.write_batch(chunk[start : start + 250], None)
        assert visible(tmp_path) == sorted(f"part-0-{i}.parquet" for i in range(checkpoint))
        commit_all(committer, writer.prepare_commit())
    writer.close()
    assert visible(tmp_path) == ["part-0-0.parquet", "part-0-1.parquet"]
    back = [
        r for i in range(2) for r in pq.read_table(tmp_path / f"part-0-{i}.parquet").to_pylist()
    ]
    assert back == rows


def test_parquet_schema_and_row_groups(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int32()), ("label", pa.string())])
    factory = ParquetWriterFactory(schema=schema, row_group_size=100)
    sink = pickle.loads(pickle.dumps(FileSink.for_bulk_format(tmp_path, factory).build()))
    writer = sink.create_writer(writer_context())
    writer.write_batch([{"id": i, "label": None} for i in range(250)], None)
    commit_all(sink.create_committer(), writer.prepare_commit())
    writer.close()
    parquet = pq.ParquetFile(tmp_path / "part-0-0")
    assert parquet.schema_arrow == schema
    assert [
        parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)
    ] == [100, 100, 50]
    parquet.close()

    bad_writer = sink.create_writer(writer_context(subtask=1))
    with pytest.raises(ConnectorError, match="ParquetWriterFactory"):
        bad_writer.write_batch([{"id": "not-an-int", "label": "x"}], None)
    bad_writer.close()


def test_date_time_buckets(tmp_path: Path) -> None:
    moment = int(datetime.datetime(2024, 5, 1, 13, 30, tzinfo=datetime.UTC).timestamp() * 1000)
    sink = (
        FileSink.for_row_format(tmp_path, Encoder.simple_string_encoder())
        .with_bucket_assigner(DateTimeBucketAssigner("%Y-%m-%d/%H"))
        .build()
    )
    sink = pickle.loads(pickle.dumps(sink))
    writer = FileWriter(sink, writer_context(), clock=lambda: moment)
    writer.write_batch(["x", "y"], None)
    (committable,) = writer.prepare_commit()
    writer.close()
    assert committable.bucket_id == "2024-05-01/13"
    commit_all(sink.create_committer(), [committable])
    assert (tmp_path / "2024-05-01" / "13" / "part-0-0").read_text() == "x\ny\n"


def test_file_url_base_path(tmp_path: Path) -> None:
    sink = FileSink.for_row_format(
        f"file://{tmp_path}/out", Encoder.simple_string_encoder()
    ).build()
    writer = sink.create_writer(writer_context())
    writer.write_batch([1, 2.5, None], None)
    committables = writer.prepare_commit()
    writer.close()
    assert committables[0].final_path == f"file://{tmp_path}/out/part-0-0"
    commit_all(sink.create_committer(), committables)
    assert (tmp_path / "out" / "part-0-0").read_text() == "1\n2.5\nNone\n"


def test_close_discards_uncommitted_files(tmp_path: Path) -> None:
    sink = string_sink(tmp_path, part_size=2)
    writer = sink.create_writer(writer_context())
    writer.write_batch(["a"], None)
    writer.write_batch(["b"], None)  # rolls "a\n" to pending, never handed out
    writer.close()
    assert list(tmp_path.iterdir()) == []


def test_json_lines_encoder_is_picklable_after_use() -> None:
    encoder = Encoder.json_lines_encoder()
    assert encoder.encode_batch([{"a": 1}, [2]]) == b'{"a":1}\n[2]\n'
    copy: Any = pickle.loads(pickle.dumps(encoder))
    assert msgspec.json.decode(copy.encode({"b": 2}).strip()) == {"b": 2}


def test_fsspec_memory_filesystem_roundtrip() -> None:
    """Non-local fsspec filesystems: write, commit (mv), list and read back."""
    base = f"memory:///strom-test-{uuid.uuid4().hex}/out"
    sink = (
        FileSink.for_row_format(base, Encoder.simple_string_encoder())
        .with_rolling_policy(DefaultRollingPolicy(part_size=8))
        .build()
    )
    writer = sink.create_writer(writer_context())
    writer.write_batch(["alpha", "beta"], None)
    writer.write_batch(["gamma"], None)
    committables = writer.prepare_commit()
    writer.close()
    assert [c.final_path for c in committables] == [f"{base}/part-0-0", f"{base}/part-0-1"]
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), base).build()
    assert read_all(source) == []  # pending files are hidden
    committer = sink.create_committer()
    commit_all(committer, committables)
    commit_all(committer, committables)
    assert read_all(source) == ["alpha", "beta", "gamma"]
    fs = fsspec.filesystem("memory")
    fs.rm(base.removeprefix("memory://").rsplit("/", 1)[0], recursive=True)
