"""``strom list`` / ``cancel`` / ``savepoint`` / ``stop`` and ``strom run --from-savepoint``
against real ``strom run`` processes (their local control endpoint).

Every command runs as ``python -m strom ...`` in a subprocess with ``STROM_RUN_DIR``
pointing into the test's temporary directory, so concurrent test runs never see each
other's processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from strom._cli_control import ControlError, ControlServer, list_jobs, resolve_job
from strom.cli import main
from strom.datastream import JobStatus

# A keyed running count over a rate-limited generator, exactly-once into a FileSink.
# argv: OUT N RATE [CHECKPOINTING]; N < 0 means unbounded.
JOB = """
    import sys
    from strom.connectors import DataGeneratorSource
    from strom.connectors.file import Encoder, FileSink
    from strom.datastream import StreamExecutionEnvironment

    out, n, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    env = StreamExecutionEnvironment.get_execution_environment()
    if len(sys.argv) < 5 or sys.argv[4] == "1":
        env.enable_checkpointing(200)
        env.get_checkpoint_config().set_checkpoint_storage(out + "-checkpoints")
    source = DataGeneratorSource(lambda i: (f"k{i % 5}", i), n if n >= 0 else None, rate)
    (
        env.from_source(source, None, "gen").uid("gen")
        .key_by(lambda r: r[0])
        .reduce(lambda a, b: (a[0], b[1], (a[2] if len(a) == 3 else 1) + 1)).uid("count")
        .sink_to(FileSink.for_row_format(out, Encoder.json_lines_encoder()).build()).uid("sink")
    )
    env.execute("counting")
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory with the job script and a private run directory."""
    (tmp_path / "job.py").write_text(textwrap.dedent(JOB))
    (tmp_path / "run").mkdir()
    return tmp_path


def _env(workdir: Path) -> dict[str, str]:
    return {**os.environ, "STROM_RUN_DIR": str(workdir / "run")}


def strom(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``strom`` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "strom", *args],
        cwd=workdir,
        env=_env(workdir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_job(workdir: Path, *args: str, options: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """Start ``strom run job.py [options] -- args`` in the background."""
    out = open(workdir / "run.log", "a")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "strom", "run", "job.py", *options, "--", *args],
            cwd=workdir,
            env=_env(workdir),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        out.close()


def wait_running(workdir: Path, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Poll ``strom list --json`` until the process's job runs; return its entry."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, (workdir / "run.log").read_text()
        if (workdir / "run" / f"{proc.pid}.json").exists():
            listed = strom(workdir, "list", "--json")
            assert listed.returncode == 0, listed.stderr
            jobs = [j for j in json.loads(listed.stdout) if j["pid"] == proc.pid]
            if jobs and jobs[0]["status"] == "RUNNING":
                return dict(jobs[0])
        time.sleep(0.05)
    raise AssertionError("the job did not start: " + (workdir / "run.log").read_text())


def read_rows(path: Path) -> list[Any]:
    if not path.exists():
        return []
    files = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_savepoint_stop_and_resume_exactly_once(workdir: Path) -> None:
    n = 20_000  # 20 s at 1000/s: the stop always comes mid-stream
    proc = start_job(workdir, str(workdir / "out1"), str(n), "1000")
    try:
        job = wait_running(workdir, proc)
        assert job["name"] == "counting"
        assert job["script"] == str((workdir / "job.py").resolve())

        table = strom(workdir, "list")
        assert table.returncode == 0, table.stderr
        assert job["id"] in table.stdout and "RUNNING" in table.stdout
        assert "counting" in table.stdout

        prefix = job["id"][:8]
        taken = strom(workdir, "savepoint", prefix, "savepoints")
        assert taken.returncode == 0, taken.stderr
        first = Path(taken.stdout.strip())
        assert first.parent == workdir / "savepoints"
        assert (first / "_metadata").is_file()
        assert proc.poll() is None  # a savepoint leaves the job running

        stopped = strom(workdir, "stop", prefix, "--savepoint-path", str(workdir / "sp"))
        assert stopped.returncode == 0, stopped.stderr
        final = Path(stopped.stdout.strip())
        assert (final / "_metadata").is_file()
        assert proc.wait(timeout=20) == 0, (workdir / "run.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (workdir / "run.log").read_text()
    assert "FINISHED" in log
    assert not list((workdir / "run").glob("*.json"))  # the run file is gone
    before = read_rows(workdir / "out1")
    assert 0 < len(before) < n, "stopped mid-stream"

    resumed = strom(
        workdir,
        "run",
        "job.py",
        "--from-savepoint",
        str(final),
        "--",
        str(workdir / "out2"),
        str(n),
        "1000000",
    )
    assert resumed.returncode == 0, resumed.stderr
    rows = before + read_rows(workdir / "out2")
    # one update per record, each exactly once: per key the running counts 1..n/5
    per_key: dict[str, list[int]] = {}
    for row in rows:
        per_key.setdefault(row[0], []).append(row[2] if len(row) == 3 else 1)
    assert sorted(per_key) == [f"k{i}" for i in range(5)]
    for key, counts in per_key.items():
        assert sorted(counts) == list(range(1, n // 5 + 1)), key
    assert sorted(row[1] for row in rows) == list(range(n))


def cli(workdir: Path, *args: str) -> Any:
    """Run one ``strom`` command in this process (quicker than a subprocess; for the
    error paths), with the test's run directory."""
    return CliRunner().invoke(main, list(args), env={"STROM_RUN_DIR": str(workdir / "run")})


def test_cancel_and_clear_errors(workdir: Path) -> None:
    # a run file left behind by a process that no longer exists is ignored and removed
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = workdir / "run" / f"{dead.stdout.strip()}.json"
    stale.write_text(
        json.dumps(
            {
                "pid": int(dead.stdout),
                "host": "127.0.0.1",
                "port": 9,
                "token": "x",
                "script": "gone.py",
            }
        )
    )
    nothing = cli(workdir, "cancel", "0123abcd")
    assert nothing.exit_code == 1
    assert "no running 'strom run' process" in nothing.stderr
    assert not stale.exists()
    listed = cli(workdir, "list")
    assert (listed.exit_code, listed.stdout.strip()) == (0, "No running jobs.")
    missing = cli(
        workdir, "run", str(workdir / "job.py"), "--from-savepoint", str(workdir / "nowhere")
    )
    assert missing.exit_code == 2
    assert "no checkpoint or savepoint" in missing.stderr

    # unbounded, without checkpointing
    proc = start_job(workdir, str(workdir / "out"), "-1", "500", "0")
    try:
        job = wait_running(workdir, proc)
        refused = cli(workdir, "savepoint", job["id"], str(workdir / "sp"))
        assert refused.exit_code == 1
        assert "enable_checkpointing" in refused.stderr
        unknown = cli(workdir, "stop", "not-a-job")
        assert unknown.exit_code == 1
        assert "no job with id 'not-a-job'" in unknown.stderr
        cancelled = strom(workdir, "cancel", job["id"][:5])
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"Cancelled job {job['id']}" in cancelled.stdout
        assert proc.wait(timeout=20) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "CANCELED" in (workdir / "run.log").read_text()
    assert json.loads(cli(workdir, "list", "--json").stdout) == []


class _FakeClient:
    """Just enough of a JobClient for the control server."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.status = JobStatus.RUNNING

    def get_job_id(self) -> str:
        return self.job_id

    def get_job_status(self) -> JobStatus:
        return self.status

    def cancel(self) -> None:
        self.status = JobStatus.CANCELED


def test_job_id_prefixes_and_access_token(tmp_path: Path) -> None:
    server = ControlServer("fake.py", tmp_path)
    with server.installed():
        for job_id in ("abc1" + "0" * 28, "abc2" + "0" * 28):
            server.on_job_started(_FakeClient(job_id))
        jobs, warnings = list_jobs(tmp_path)
        assert [j.id[:4] for j in jobs] == ["abc1", "abc2"] and warnings == []
        with pytest.raises(ControlError, match="ambiguous"):
            resolve_job("abc", tmp_path)
        job = resolve_job("ABC2", tmp_path)
        assert job.process.pid == os.getpid()
        # a wrong token is refused
        forged = type(job.process)(
            job.process.pid, job.process.host, job.process.port, "0" * 32, None
        )
        with pytest.raises(ControlError, match="token") as info:
            forged.request("GET", "/v1/jobs")
        assert info.value.status == 401
        job.process.request("POST", f"/v1/jobs/{job.id}/cancel")
        with pytest.raises(ControlError, match="already ended") as info:
            job.process.request("POST", f"/v1/jobs/{job.id}/cancel")
        assert info.value.status == 409
        # an ended job no longer makes the prefix ambiguous
        assert resolve_job("abc", tmp_path).id.startswith("abc1")
        assert [j.id[:4] for j in list_jobs(tmp_path)[0]] == ["abc1"]
    assert not server.run_file.exists()
    # a run file whose pid lives (reused) but whose port refuses connections is stale
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    reused = tmp_path / "1.json"
    reused.write_text(
        json.dumps({"pid": os.getpid(), "host": "127.0.0.1", "port": free_port, "token": "t"})
    )
    assert list_jobs(tmp_path) == ([], [])
    assert not reused.exists()
