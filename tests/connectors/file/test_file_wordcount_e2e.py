"""End to end: word count from text files through FileSource -> ... -> FileSink."""

from __future__ import annotations

import collections
import gzip
import random
from pathlib import Path

import pytest
from file_connector_harness import read_all

from strom.connectors.file import (
    Encoder,
    FileSink,
    FileSource,
    OutputFileConfig,
    RollingPolicy,
    StreamFormat,
)
from strom.datastream import RuntimeExecutionMode, StreamExecutionEnvironment, WatermarkStrategy


@pytest.mark.parametrize("mode", [RuntimeExecutionMode.STREAMING, RuntimeExecutionMode.BATCH])
def test_word_count_file_to_file(tmp_path: Path, mode: RuntimeExecutionMode) -> None:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(40)]
    lines = [" ".join(rng.choices(vocabulary, k=rng.randint(0, 12))) for _ in range(3000)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part1.txt").write_text("\n".join(lines[:1000]) + "\n")
    (tmp_path / "in" / "part2.txt.gz").write_bytes(gzip.compress("\n".join(lines[1000:]).encode()))
    expected = collections.Counter(word for line in lines for word in line.split())

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    env.set_runtime_mode(mode)
    source = (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), tmp_path / "in")
        .set_batch_size(256)
        .build()
    )
    sink = (
        FileSink.for_row_format(tmp_path / "out", Encoder.json_lines_encoder())
        .with_rolling_policy(RollingPolicy.default_rolling_policy(part_size=4096))
        .with_output_file_config(OutputFileConfig(part_suffix=".jsonl"))
        .build()
    )
    (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "lines")
        .flat_map(lambda line: [(word, 1) for word in line.split()])
        .key_by(lambda pair: pair[0])
        .sum(1)
        .sink_to(sink)
    )
    env.execute("file word count")

    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert all(not n.startswith(".") for n in names)  # everything committed
    if mode is RuntimeExecutionMode.STREAMING:
        assert len(names) > 2  # size-based rolling produced several parts
    updates = read_all(
        FileSource.for_record_stream_format(StreamFormat.json_lines_format(), out).build()
    )
    if mode is RuntimeExecutionMode.STREAMING:
        assert len(updates) == sum(expected.values())  # one running-sum update per word
    else:
        assert len(updates) == len(expected)  # BATCH: one final count per word
    final: dict[str, int] = {}
    for word, count in updates:
        final[word] = max(final.get(word, 0), count)
    assert final == dict(expected)
