"""Tests of the ``strom`` command line (``strom.cli``) and its progress module.

Most tests run ``python -m strom`` in a real subprocess, so stdout/stderr separation,
exit codes and ``sys.argv`` handling are exercised exactly as a user sees them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import strom
from strom._cli_progress import JobSummary, ProgressReporter, aggregate_metrics
from strom.cli import KEY_DEPENDENCIES, main
from strom.config import DEFAULTS, get_global_defaults

SUMMARY_RE = re.compile(
    r"^Job '(?P<name>[^']*)' \((?P<id>[0-9a-f]{32})\) (?P<status>[A-Z]+) in [0-9.]+ s: "
    r"(?P<read>[0-9,]+) records read by sources, (?P<written>[0-9,]+) written by sinks$"
)

DOUBLES_JOB = """
    import sys
    from strom.datastream import StreamExecutionEnvironment

    env = StreamExecutionEnvironment.get_execution_environment()
    print(f"PARALLELISM={env.get_parallelism()}")
    print(f"BUFFER_TIMEOUT={env.get_buffer_timeout()}")
    print(f"ARGV={sys.argv[1:]!r}")
    print(f"NAME={__name__}")
    env.from_collection(range(10)).map(lambda x: x * 2).print()
    env.execute("doubles")
"""

FAILING_JOB = """
    from strom.datastream import StreamExecutionEnvironment

    def explode(x):
        raise ValueError(f"bad record {x}")

    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection(range(5)).map(explode).name("Explode").print()
    env.execute("failing")
"""


def _write(tmp_path: Path, source: str, name: str = "job.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def _strom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strom", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _summaries(stderr: str) -> list[re.Match[str]]:
    return [m for line in stderr.splitlines() if (m := SUMMARY_RE.match(line))]


# -- version and info ---------------------------------------------------------------------


def test_version_subprocess(tmp_path: Path) -> None:
    proc = _strom("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == f"strom {strom.__version__}\n"
    assert proc.stderr == ""


def test_version_cli_runner() -> None:
    result = CliRunner().invoke(main, ["--version"], prog_name="strom")
    assert result.exit_code == 0
    assert result.output == f"strom {strom.__version__}\n"


def test_info_table() -> None:
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, result.output
    assert strom.__version__ in result.output
    for name in KEY_DEPENDENCIES:
        assert name in result.output
    for key in DEFAULTS:
        assert key in result.output


def test_info_json(tmp_path: Path) -> None:
    proc = _strom("info", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"strom", "python", "platform", "cpu_count", "dependencies", "config"} <= set(data)
    assert data["strom"] == strom.__version__
    assert data["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(data["dependencies"]) == set(KEY_DEPENDENCIES)
    assert data["dependencies"]["click"]  # installed: a version string
    assert set(data["config"]) == set(DEFAULTS)
    for key, opt in DEFAULTS.items():
        entry = data["config"][key]
        assert entry["value"] == opt.default
        assert entry["description"] == opt.description


# -- run ----------------------------------------------------------------------------------


def test_run_applies_options_and_passes_args(tmp_path: Path) -> None:
    script = _write(tmp_path, DOUBLES_JOB)
    proc = _strom(
        "run", str(script), "--parallelism", "2", "--buffer-timeout", "7",
        "--job-arg", "first", "--", "--input", "x y",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "PARALLELISM=2",
        "BUFFER_TIMEOUT=7",
        "ARGV=['first', '--input', 'x y']",
        "NAME=__main__",
    ]
    # stdout holds only the job's own output: the rest is the print sink's records
    records = sorted(int(line.split("> ")[-1]) for line in lines[4:])
    assert records == [x * 2 for x in range(10)]
    (summary,) = _summaries(proc.stderr)
    assert summary["name"] == "doubles"
    assert summary["status"] == "FINISHED"
    assert summary["read"] == "10"
    assert summary["written"] == "10"


def test_run_without_options_uses_defaults(tmp_path: Path) -> None:
    script = _write(tmp_path, DOUBLES_JOB)
    proc = _strom("run", str(script), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "PARALLELISM=1" in proc.stdout
    assert "ARGV=[]" in proc.stdout
    assert len(_summaries(proc.stderr)) == 1


def test_run_failing_job(tmp_path: Path) -> None:
    script = _write(tmp_path, FAILING_JOB)
    proc = _strom("run", str(script), cwd=tmp_path)
    assert proc.returncode == 1
    assert "ValueError: bad record" in proc.stderr
    assert "Explode" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert f'File "{script}", line 5, in explode' in proc.stderr
    (summary,) = _summaries(proc.stderr)
    assert summary["status"] == "FAILED"
    # the summary comes before the error report
    assert proc.stderr.index("FAILED in") < proc.stderr.index("Error:")
    assert proc.stdout == ""


def test_run_failing_job_verbose(tmp_path: Path) -> None:
    script = _write(tmp_path, FAILING_JOB)
    proc = _strom("run", str(script), "--verbose", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "JobExecutionError" in proc.stderr
    assert "ValueError: bad record 0" in proc.stderr


def test_run_missing_script(tmp_path: Path) -> None:
    proc = _strom("run", str(tmp_path / "nope.py"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "nope.py" in proc.stderr
    assert "does not exist" in proc.stderr


def test_run_propagates_script_exit_code(tmp_path: Path) -> None:
    script = _write(tmp_path, "import sys\nprint('bye')\nsys.exit(3)\n")
    proc = _strom("run", str(script), cwd=tmp_path)
    assert proc.returncode == 3
    assert proc.stdout == "bye\n"


def test_run_script_can_import_sibling_modules(tmp_path: Path) -> None:
    _write(tmp_path, "GREETING = 'hello from helper'\n", name="helper.py")
    script = _write(tmp_path, "import helper\nprint(helper.GREETING)\n")
    proc = _strom("run", str(script), cwd=tmp_path.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from helper\n"


def test_run_keyboard_interrupt_is_cancelled(tmp_path: Path) -> None:
    script = _write(tmp_path, "raise KeyboardInterrupt\n")
    proc = _strom("run", str(script), cwd=tmp_path)
    assert proc.returncode == 130
    assert "cancelled" in proc.stderr


def test_run_script_bug_shows_script_traceback(tmp_path: Path) -> None:
    script = _write(tmp_path, "def f():\n    return undefined_name\n\nf()\n")
    proc = _strom("run", str(script), cwd=tmp_path)
    assert proc.returncode == 1
    assert "NameError" in proc.stderr
    assert str(script) in proc.stderr
    assert "runpy" not in proc.stderr  # the CLI's own frames are hidden


def test_run_forced_progress_keeps_stdout_clean(tmp_path: Path) -> None:
    script = _write(
        tmp_path,
        """
        import time
        from strom.datastream import StreamExecutionEnvironment

        def slow(x):
            time.sleep(0.001)
            return x

        env = StreamExecutionEnvironment.get_execution_environment()
        env.from_collection(range(400)).map(slow).name("Slow").print()
        env.execute("slow")
        """,
    )
    proc = _strom("run", str(script), "--progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(int(line) for line in proc.stdout.splitlines()) == list(range(400))
    assert "Records in" in proc.stderr
    assert "Slow" in proc.stderr
    assert "FINISHED in" in proc.stderr


def test_run_two_jobs_two_summaries_in_process(tmp_path: Path) -> None:
    script = _write(
        tmp_path,
        """
        from strom.datastream import StreamExecutionEnvironment

        for name in ("one", "two"):
            env = StreamExecutionEnvironment.get_execution_environment()
            env.from_collection(range(3)).map(lambda x: x).print()
            env.execute(name)
        """,
    )
    before = get_global_defaults()
    result = CliRunner().invoke(main, ["run", str(script), "-p", "3"])
    assert result.exit_code == 0, result.output
    assert [m["name"] for m in _summaries(result.stderr)] == ["one", "two"]
    # the monitor threads are gone and process-wide defaults are restored
    assert not [t for t in threading.enumerate() if t.name.startswith("strom-progress-")]
    after = get_global_defaults()
    assert after.get("parallelism.default", 1) == before.get("parallelism.default", 1)


# -- progress helpers ---------------------------------------------------------------------


def test_aggregate_metrics_sums_subtasks_and_finds_sources_and_sinks() -> None:
    rows = [
        {"vertex": "Source: Numbers -> Map", "operator": "Numbers", "uid": "src",
         "subtask": 0, "records_in": 0, "records_out": 5},
        {"vertex": "Source: Numbers -> Map", "operator": "Map", "uid": "map",
         "subtask": 0, "records_in": 5, "records_out": 5},
        {"vertex": "Source: Numbers -> Map", "operator": "Numbers", "uid": "src",
         "subtask": 1, "records_in": 0, "records_out": 7},
        {"vertex": "Source: Numbers -> Map", "operator": "Map", "uid": "map",
         "subtask": 1, "records_in": 7, "records_out": 7},
        {"vertex": "Reduce -> Sink: Out", "operator": "Reduce", "uid": "reduce",
         "subtask": 0, "records_in": 12, "records_out": 4},
        {"vertex": "Reduce -> Sink: Out", "operator": "Out", "uid": "out",
         "subtask": 0, "records_in": 4, "records_out": 0},
    ]  # fmt: skip
    ops = aggregate_metrics(rows)
    assert [op.uid for op in ops] == ["src", "map", "reduce", "out"]
    by_uid = {op.uid: op for op in ops}
    assert by_uid["src"].records_out == 12
    assert by_uid["src"].subtasks == 2
    assert by_uid["map"].records_in == 12
    assert [op.uid for op in ops if op.is_source] == ["src"]
    assert [op.uid for op in ops if op.is_sink] == ["out"]


def test_job_summary_is_one_line() -> None:
    line = JobSummary("wordcount", "ab" * 16, "FINISHED", 1.5, 12345, 678).format()
    assert "\n" not in line
    match = SUMMARY_RE.match(line)
    assert match is not None
    assert match["read"] == "12,345"


def test_reporter_close_without_jobs_is_a_no_op() -> None:
    console = Console(file=None, stderr=True)
    reporter = ProgressReporter(console, live=False)
    with reporter.installed():
        pass
    reporter.close()


@pytest.mark.parametrize("args", [["run", "--help"], ["info", "--help"], ["--help"]])
def test_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, args, prog_name="strom")
    assert result.exit_code == 0
    assert "Usage: strom" in result.output
