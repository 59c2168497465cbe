"""Run one Nexmark query over a JSON-lines file or in-memory events and time it.

The job is ``source -> query -> sink`` at a given parallelism on the embedded runtime:

- the source is a ``FileSource`` with ``StreamFormat.json_lines_format(Event)`` (each line
  decoded by msgspec straight into a tagged :class:`~benchmarks.nexmark.model.Event`
  struct: measured 1.8x faster than decoding to dicts, and 2x faster than
  ``Decoder.decode_lines`` on joined lines), or a ``CollectionSource`` over events
  generated in-process;
- timestamps come from ``dateTime`` with a 4 s bounded-out-of-orderness watermark;
- the sink writes the result rows as JSON lines (one ``msgspec`` ``encode_lines`` call per
  batch), or only counts them when there is no output file (Nexmark's ``blackhole``).

The timed part is ``env.execute()``: events/s is the number of input events over that
wall time. Reading the input is timed; generating it (in-process) and counting the lines
of the input file are not.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.nexmark.model import Event
from benchmarks.nexmark.queries import QUERIES, WATERMARK_DELAY
from strom.connectors import CollectionSource
from strom.connectors.file import FileSource, StreamFormat
from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
from strom.datastream import DataStream, StreamExecutionEnvironment, WatermarkStrategy

__all__ = ["ResultSink", "RunResult", "build_job", "count_lines", "run_query"]

SOURCE_BATCH_SIZE = 1000
"""Records per source poll (the runtime's default; 250 or 4000 measured no different on q0)."""


class _ResultWriter(SinkWriter[Any, Any]):
    """Encodes each batch with one ``encode_lines`` call into its file (if any); counts.

    The count goes to ``count_path`` on close, so the driver can read it whether the
    subtask ran in its process or on a TaskManager process.
    """

    def __init__(self, path: str | None, count_path: str) -> None:
        self.count = 0
        self._count_path = count_path
        self._encode_lines = msgspec.json.Encoder().encode_lines
        self._file = open(path, "wb") if path is not None else None

    def write(self, value: Any, timestamp_ms: int | None) -> None:
        self.write_batch([value], None)

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        self.count += len(values)
        if self._file is not None:
            self._file.write(self._encode_lines(values))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with open(self._count_path, "w", encoding="utf-8") as f:
            f.write(str(self.count))


class ResultSink(Sink[Any, Any]):
    """Writes result rows as JSON lines to ``path`` (or only counts them).

    At parallelism 1 the writer writes ``path``; at ``p > 1`` subtask ``i`` writes
    ``path.part-i`` and :meth:`merge_parts` concatenates the parts into ``path`` after the
    job. Each writer leaves its row count in ``stats_dir`` (subtasks may run in other
    processes, so counts travel through files, like the rows).

    Args:
        path: the output file, or None to only count.
        stats_dir: an existing directory for the per-subtask counts.
    """

    def __init__(self, path: str | Path | None, stats_dir: str | Path) -> None:
        self.path = None if path is None else str(path)
        self.stats_dir = str(stats_dir)

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, Any]:
        """One writer per subtask."""
        path = self.path
        if path is not None and context.parallelism > 1:
            path = f"{path}.part-{context.subtask_index}"
        count_path = os.path.join(self.stats_dir, f"count-{context.subtask_index}")
        return _ResultWriter(path, count_path)

    @property
    def count(self) -> int:
        """Rows written by all writers (after the job)."""
        total = 0
        for name in os.listdir(self.stats_dir):
            if name.startswith("count-"):
                with open(os.path.join(self.stats_dir, name), encoding="utf-8") as f:
                    total += int(f.read())
        return total

    def merge_parts(self) -> None:
        """Concatenate the part files of a parallel run into :attr:`path`, in subtask order."""
        if self.path is None:
            return
        prefix = f"{self.path}.part-"
        parts = sorted(glob.glob(glob.escape(prefix) + "*"), key=lambda p: int(p[len(prefix) :]))
        if not parts:
            return
        with open(self.path, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)
                os.remove(part)


def watermark_strategy() -> WatermarkStrategy[Event]:
    """Timestamps from ``dateTime``; watermark ``max(dateTime) - 4 s`` (Nexmark's DDL)."""
    return WatermarkStrategy.for_bounded_out_of_orderness(WATERMARK_DELAY).with_timestamp_assigner(
        attrgetter("dateTime")
    )


def build_job(
    env: StreamExecutionEnvironment,
    query: str,
    events: str | Path | Sequence[Event],
    sink: ResultSink,
) -> DataStream:
    """Add ``source -> query -> sink`` to ``env``.

    Args:
        env: the environment.
        query: a name of :data:`~benchmarks.nexmark.queries.QUERIES`.
        events: a JSON-lines file, or the events themselves.
        sink: where the results go.

    Returns:
        The query's result stream.

    Raises:
        KeyError: unknown query.
    """
    if query not in QUERIES:
        raise KeyError(f"unknown query {query!r}; choose from {', '.join(QUERIES)}")
    if isinstance(events, (str, Path)):
        source: Any = (
            FileSource.for_record_stream_format(StreamFormat.json_lines_format(Event), str(events))
            .set_batch_size(SOURCE_BATCH_SIZE)
            .build()
        )
    else:
        source = CollectionSource(events)
    stream = env.from_source(source, watermark_strategy(), "nexmark-events")
    results = QUERIES[query](stream)
    results.sink_to(sink).name("results")
    return results


def count_lines(path: str | Path) -> int:
    """Number of non-empty lines of a file (the events of a Nexmark input)."""
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


@dataclass
class RunResult:
    """One timed query run.

    Attributes:
        query: the query name.
        events: input events.
        results: result rows.
        seconds: wall time of ``env.execute()``.
        parallelism: the job's parallelism.
        cpu_seconds: CPU time of this process during ``env.execute()``: the job's CPU time
            at parallelism 1 (where it runs in this process), a figure that other load
            on the machine barely changes; meaningless at higher parallelism (the job
            runs on TaskManager processes).
        rows: the result rows (decoded JSON objects) if collected, else empty.
    """

    query: str
    events: int
    results: int
    seconds: float
    parallelism: int
    cpu_seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        """Input events over wall time."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    @property
    def events_per_cpu_second(self) -> float:
        """Input events over CPU time (parallelism 1 only)."""
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    def summary(self) -> str:
        """One line for humans."""
        cpu = f", {self.events_per_cpu_second:,.0f} events/CPU-s" if self.parallelism == 1 else ""
        return (
            f"{self.query}: {self.events:,} events in {self.seconds:.2f} s = "
            f"{self.events_per_second:,.0f} events/s (parallelism {self.parallelism}{cpu}), "
            f"{self.results:,} results"
        )


def run_query(
    query: str,
    events: str | Path | Sequence[Event],
    *,
    output: str | Path | None = None,
    parallelism: int = 1,
    collect: bool = False,
) -> RunResult:
    """Run ``query`` over ``events`` and time it.

    Args:
        query: ``"q0"``, ``"q1"``, ... (see :data:`~benchmarks.nexmark.queries.QUERIES`).
        events: a JSON-lines file of events, or the events.
        output: write the results as JSON lines here (None: only count them).
        parallelism: the job's parallelism.
        collect: also return the result rows (decoded JSON objects) in
            :attr:`RunResult.rows`.

    Returns:
        The timing and result count (and rows).

    Raises:
        KeyError: unknown query.
    """
    num_events = count_lines(events) if isinstance(events, (str, Path)) else len(events)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    with tempfile.TemporaryDirectory(prefix="nexmark-") as stats_dir:
        if collect and output is None:
            output = os.path.join(stats_dir, "results.jsonl")
        sink = ResultSink(output, stats_dir)
        build_job(env, query, events, sink)
        start, cpu_start = time.perf_counter(), time.process_time()
        env.execute(f"nexmark-{query}")
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        sink.merge_parts()
        rows: list[dict[str, Any]] = []
        if collect:
            assert output is not None
            with open(output, "rb") as f:
                rows = [msgspec.json.decode(line) for line in f]
        return RunResult(
            query=query,
            events=num_events,
            results=sink.count,
            seconds=seconds,
            parallelism=parallelism,
            cpu_seconds=cpu_seconds,
            rows=rows,
        )
