"""Reading text, CSV, JSON lines and Parquet files (plain and compressed) with FileSource."""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import pickle
import zipfile
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from file_connector_harness import CollectingOutput, SourceHarness, read_all

from strom.connectors.file import (
    BulkFormat,
    CsvFormat,
    FileSource,
    ParquetFormat,
    StreamFormat,
)
from strom.connectors.source import InputStatus
from strom.errors import ConfigurationError, ConnectorError, DeserializationError


def text_source(*paths: Any, **kw: Any) -> FileSource:
    return FileSource.for_record_stream_format(StreamFormat.text_line_format(**kw), *paths).build()


# ----------------------------------------------------------------------------------- text


def test_text_lines_of_one_file(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_bytes(b"one\ntwo\r\n\nlast-without-newline")
    assert read_all(text_source(f)) == ["one", "two", "", "last-without-newline"]


def test_text_directory_recursive_sorted_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden_dir").mkdir()
    (tmp_path / "b.txt").write_text("b1\nb2\n")
    (tmp_path / "a.txt").write_text("a1\n")
    (tmp_path / "sub" / "c.txt").write_text("c1\n")
    (tmp_path / ".x.txt").write_text("hidden\n")
    (tmp_path / "_SUCCESS").write_text("marker\n")
    (tmp_path / ".hidden_dir" / "d.txt").write_text("hidden\n")
    assert read_all(text_source(tmp_path)) == ["a1", "b1", "b2", "c1"]


def test_text_glob_and_multiple_paths(tmp_path: Path) -> None:
    for name in ("x1.log", "x2.log", "y.txt", ".x3.log"):
        (tmp_path / name).write_text(f"{name}\n")
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "x4.log").write_text("x4.log\n")
    assert read_all(text_source(str(tmp_path / "*.log"))) == ["x1.log", "x2.log"]
    assert read_all(text_source(str(tmp_path / "**" / "*.log"))) == ["x4.log", "x1.log", "x2.log"]
    # Overlapping specs: each file once.
    assert read_all(text_source(tmp_path / "y.txt", str(tmp_path / "*.txt"))) == ["y.txt"]


def test_file_url(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("via-url\n")
    assert read_all(text_source(f"file://{tmp_path}")) == ["via-url"]


def test_text_charset(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("café\nnaïve\n".encode("latin-1"))
    assert read_all(text_source(tmp_path, charset="latin-1")) == ["café", "naïve"]
    with pytest.raises(DeserializationError, match=r"latin\.txt.*charset"):
        read_all(text_source(tmp_path))


def test_compressed_inputs(tmp_path: Path) -> None:
    payload = b"".join(b"line-%d\n" % i for i in range(3000))
    expected = [f"line-{i}" for i in range(3000)]
    (tmp_path / "a.gz").write_bytes(gzip.compress(payload))
    (tmp_path / "b.bz2").write_bytes(bz2.compress(payload))
    (tmp_path / "c.xz").write_bytes(lzma.compress(payload))
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        zf.writestr("inner.txt", payload)
    for name in ("a.gz", "b.bz2", "c.xz", "d.zip"):
        assert read_all(text_source(tmp_path / name)) == expected, name


def test_zip_with_several_members_is_an_error(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zf:
        zf.writestr("a.txt", "a\n")
        zf.writestr("b.txt", "b\n")
    with pytest.raises(ConnectorError, match=r"two\.zip.*exactly one member"):
        read_all(text_source(tmp_path / "two.zip"))


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="does not exist"):
        read_all(text_source(tmp_path / "nope"))


def test_batches_are_bounded_and_one_per_poll(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("".join(f"{i}\n" for i in range(25)))
    (tmp_path / "b.txt").write_text("".join(f"b{i}\n" for i in range(5)))
    source = (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), tmp_path)
        .set_batch_size(10)
        .build()
    )
    harness = SourceHarness(source)
    out = harness.outputs[0]
    statuses: list[InputStatus] = []
    while not statuses or statuses[-1] is not InputStatus.END_OF_INPUT:
        before = len(out.batch_sizes)
        statuses.append(harness.poll())
        assert len(out.batch_sizes) - before <= 1  # at most one collect_batch per poll
    assert out.batch_sizes == [10, 10, 5, 5]
    assert out.records == [str(i) for i in range(25)] + [f"b{i}" for i in range(5)]
    assert out.released == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    harness.close()


# ------------------------------------------------------------------------------------ CSV

CSV_TEXT = 'name,age,city\nann,31,"Paris, FR"\nbob,27,Oslo\n\n"multi\nline",5,Rome\n'


def csv_source(path: Any, fmt: CsvFormat) -> FileSource:
    return FileSource.for_record_stream_format(fmt, path).build()


def test_csv_dicts_by_header(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(CSV_TEXT)
    assert read_all(csv_source(tmp_path, StreamFormat.csv_format())) == [
        {"name": "ann", "age": "31", "city": "Paris, FR"},
        {"name": "bob", "age": "27", "city": "Oslo"},
        {"name": "multi\nline", "age": "5", "city": "Rome"},
    ]


def test_csv_converters_schema_and_no_header(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(CSV_TEXT)
    with_conv = CsvFormat(converters={"age": int, "city": str.upper})
    assert [r["age"] for r in read_all(csv_source(tmp_path, with_conv))] == [31, 27, 5]
    schema = pa.schema([("name", pa.string()), ("age", pa.int64()), ("city", pa.string())])
    typed = read_all(csv_source(tmp_path, CsvFormat(schema=schema)))
    assert typed[0] == {"name": "ann", "age": 31, "city": "Paris, FR"}

    (tmp_path / "p.csv").unlink()
    (tmp_path / "q.tsv").write_text("1\t2.5\ttrue\n2\t\tno\n")
    headerless = CsvFormat(
        delimiter="\t", has_header=False, schema={"id": int, "score": float, "ok": bool}
    )
    assert read_all(csv_source(tmp_path, headerless)) == [
        {"id": 1, "score": 2.5, "ok": True},
        {"id": 2, "score": None, "ok": False},
    ]


def test_csv_invalid_options() -> None:
    with pytest.raises(ConfigurationError, match="column_names"):
        CsvFormat(has_header=False)
    with pytest.raises(ConfigurationError, match="single character"):
        CsvFormat(delimiter="::")
    with pytest.raises(ConfigurationError, match="on_error"):
        CsvFormat(on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not in column_names"):
        CsvFormat(has_header=False, column_names=["a"], converters={"b": int})


def test_malformed_csv_fails_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3\n4,5\n")
    with pytest.raises(DeserializationError) as info:
        read_all(csv_source(tmp_path, CsvFormat()))
    message = str(info.value)
    assert "bad.csv" in message
    assert "line 3" in message
    assert "on_error='skip'" in message


def test_malformed_csv_conversion_fails_with_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(DeserializationError, match=r"bad\.csv' at line 3: column 'b'"):
        read_all(csv_source(tmp_path, CsvFormat(converters={"b": int})))


def test_malformed_csv_skip_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3\n4,5\n6,7,8\n")
    source = csv_source(tmp_path, CsvFormat(converters={"a": int}, on_error="skip"))
    harness = SourceHarness(source)
    with caplog.at_level(logging.WARNING):
        harness.run_until_idle()
    assert harness.records() == [{"a": 1, "b": "2"}, {"a": 4, "b": "5"}]
    assert harness.readers[0].num_skipped_records == 2
    assert "line 3" in caplog.text and "line 5" in caplog.text
    harness.close()


# ------------------------------------------------------------------------------ JSON lines


def test_json_lines(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"a": 1}\n\n[1, 2]\n"s"\n{"b": null}')
    source = FileSource.for_record_stream_format(StreamFormat.json_lines_format(), tmp_path).build()
    assert read_all(source) == [{"a": 1}, [1, 2], "s", {"b": None}]


def test_json_lines_typed(tmp_path: Path) -> None:
    class Point(msgspec.Struct):
        x: int
        y: int

    (tmp_path / "a.jsonl").write_text('{"x": 1, "y": 2}\n{"x": 3, "y": "four"}\n')
    fmt = StreamFormat.json_lines_format(record_type=Point)
    with pytest.raises(DeserializationError, match=r"a\.jsonl' at line 2.*\$\.y"):
        read_all(FileSource.for_record_stream_format(fmt, tmp_path).build())
    skipping = StreamFormat.json_lines_format(record_type=Point, on_error="skip")
    assert read_all(FileSource.for_record_stream_format(skipping, tmp_path).build()) == [
        Point(1, 2)
    ]


def test_malformed_json_fails_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n')
    source = FileSource.for_record_stream_format(StreamFormat.json_lines_format(), tmp_path)
    with pytest.raises(DeserializationError) as info:
        read_all(source.build())
    assert "bad.jsonl" in str(info.value) and "line 3" in str(info.value)


def test_malformed_json_skip(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(b'1\n[2\n3\n{"x":4}\n'))
    fmt = StreamFormat.json_lines_format(on_error="skip")
    harness = SourceHarness(FileSource.for_record_stream_format(fmt, tmp_path).build())
    harness.run_until_idle()
    assert harness.records() == [1, 3, {"x": 4}]
    assert harness.readers[0].num_skipped_records == 1
    harness.close()


# -------------------------------------------------------------------------------- Parquet


def write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int) -> None:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)


def test_parquet_file_directory_and_glob(tmp_path: Path) -> None:
    rows_a = [{"id": i, "name": f"n{i}", "score": i / 2} for i in range(2500)]
    rows_b = [{"id": 10_000 + i, "name": None, "score": 0.0} for i in range(10)]
    write_parquet(tmp_path / "a.parquet", rows_a, row_group_size=700)
    write_parquet(tmp_path / "b.parquet", rows_b, row_group_size=700)
    (tmp_path / "_metadata").write_bytes(b"not parquet, hidden")
    assert (
        read_all(
            FileSource.for_bulk_file_format(BulkFormat.parquet(), tmp_path / "a.parquet").build()
        )
        == rows_a
    )
    assert (
        read_all(FileSource.for_bulk_file_format(ParquetFormat(), tmp_path).build())
        == rows_a + rows_b
    )
    glob_source = FileSource.for_bulk_file_format(
        BulkFormat.parquet(columns=["id"]), str(tmp_path / "b*.parquet")
    ).build()
    assert read_all(glob_source) == [{"id": r["id"]} for r in rows_b]


def test_parquet_batches_respect_batch_size(tmp_path: Path) -> None:
    rows = [{"id": i} for i in range(2500)]
    write_parquet(tmp_path / "a.parquet", rows, row_group_size=1000)
    source = (
        FileSource.for_bulk_file_format(BulkFormat.parquet(), tmp_path).set_batch_size(300).build()
    )
    harness = SourceHarness(source)
    harness.run_until_idle()
    out: CollectingOutput = harness.outputs[0]
    assert out.records == rows
    assert max(out.batch_sizes) == 300
    harness.close()


def test_corrupt_parquet_is_a_deserialization_error(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"garbage, not a parquet file")
    with pytest.raises(DeserializationError, match=r"x\.parquet"):
        read_all(FileSource.for_bulk_file_format(BulkFormat.parquet(), tmp_path).build())


def test_builder_type_checks() -> None:
    with pytest.raises(ConfigurationError, match="for_bulk_file_format"):
        FileSource.for_record_stream_format(BulkFormat.parquet(), "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="BulkFormat"):
        FileSource.for_bulk_file_format(StreamFormat.text_line_format(), "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="at least one path"):
        FileSource.for_record_stream_format(StreamFormat.text_line_format())
    with pytest.raises(ConfigurationError, match="batch_size"):
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), "x").set_batch_size(0)
    with pytest.raises(ConfigurationError, match="positive"):
        FileSource.for_record_stream_format(
            StreamFormat.text_line_format(), "x"
        ).monitor_continuously(0)


def test_sources_and_formats_are_picklable(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id,ok\n1,true\n2,\n")
    schema = pa.schema([("id", pa.int64()), ("ok", pa.bool_())])
    for fmt in (CsvFormat(schema=schema), CsvFormat(schema={"id": int, "ok": bool})):
        source = pickle.loads(
            pickle.dumps(FileSource.for_record_stream_format(fmt, tmp_path).build())
        )
        assert read_all(source) == [{"id": 1, "ok": True}, {"id": 2, "ok": None}]
    for other in (
        StreamFormat.text_line_format("latin-1"),
        StreamFormat.json_lines_format(on_error="skip"),
        BulkFormat.parquet(["a"]),
    ):
        assert repr(pickle.loads(pickle.dumps(other))) == repr(other)
