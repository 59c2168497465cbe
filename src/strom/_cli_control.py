"""The local control endpoint of ``strom run`` and its client (``strom list``, ``cancel``,
``savepoint``, ``stop``).

While ``strom run JOB.py`` runs, :class:`ControlServer` serves a small JSON API over HTTP
on ``127.0.0.1`` (an ephemeral port, stdlib :mod:`http.server` on a background thread)
for the jobs the script starts: it registers in ``strom._executors.local.JOB_LISTENERS``
and sees every job's ``JobClient``. Other ``strom`` commands find the running processes
through their *run files*: ``<run dir>/<pid>.json`` with the address, a random access
token and the script path (written atomically, mode 0600, removed when the process
exits). The run directory is ``~/.strom/run``, or ``$STROM_RUN_DIR``. Files of processes
that no longer exist are removed by the next client that reads the directory.

API (every request carries the run file's token in the ``X-Strom-Token`` header;
responses are JSON, errors ``{"error": message}``):

=======================================  ===============================================
request                                  response
=======================================  ===============================================
``GET /v1/jobs``                         ``{"pid", "script", "jobs": [{"id", "name",
                                         "status", "start_time"}]}`` (start time in epoch
                                         ms), every job the process started
``POST /v1/jobs/<id>/cancel``            ``{"id", "status"}``: cancellation requested
``POST /v1/jobs/<id>/savepoint``         ``{"id", "path"}``; body ``{"target_directory",
                                         "timeout"}`` (seconds)
``POST /v1/jobs/<id>/stop``              stop with savepoint: same body and response; the
                                         job has ended when the response is sent
=======================================  ===============================================

Error statuses: 400 bad request or checkpointing disabled, 401 wrong token, 404 unknown
job or path, 409 the job is not running, 500 the savepoint failed, 501 not supported by
the job's runtime, 504 timeout.

The REST API of a standalone cluster is a separate piece of work; this endpoint only
controls jobs of local ``strom run`` processes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_DIR_ENV",
    "TOKEN_HEADER",
    "ControlError",
    "ControlServer",
    "JobInfo",
    "RunningProcess",
    "cancel_job",
    "discover_processes",
    "list_jobs",
    "resolve_job",
    "run_dir",
    "savepoint_job",
]

logger = logging.getLogger(__name__)

RUN_DIR_ENV = "STROM_RUN_DIR"
"""Environment variable overriding the run directory (default ``~/.strom/run``)."""

TOKEN_HEADER = "X-Strom-Token"
"""Request header carrying the access token of the process's run file."""

_HANDLER_TIMEOUT_S = 10.0  # socket timeout of a request's reads and writes
_DRAIN_TIMEOUT_S = 5.0  # how long close() lets requests in flight finish their answer
_LIST_TIMEOUT_S = 5.0  # per process, for GET /v1/jobs
_ROUTE = re.compile(r"^/v1/jobs/(?P<id>[0-9A-Za-z_-]+)/(?P<action>cancel|savepoint|stop)$")


def run_dir() -> Path:
    """The directory of run files: ``$STROM_RUN_DIR`` or ``~/.strom/run``."""
    configured = os.environ.get(RUN_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".strom" / "run"


class ControlError(Exception):
    """A control request failed: unknown job, no process, a refused savepoint, ...

    Args:
        message: what went wrong, for the user.
        status: the HTTP status of the failed request (0 when none was made).
    """

    def __init__(self, message: str, status: int = 0, refused: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.refused = refused


# -- server ----------------------------------------------------------------------------------


@dataclass
class _Job:
    """A job seen by the control server."""

    client: Any  # strom.datastream.execution.JobClient
    name: str
    start_time_ms: int

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.client.get_job_id(),
            "name": self.name,
            "status": self.client.get_job_status().value,
            "start_time": self.start_time_ms,
        }


class ControlServer:
    """Serves the control API for the jobs started in this process (see the module
    docstring). Use :meth:`installed` around the code that runs the job script.

    Args:
        script: the job script's path (reported by ``strom list``).
        directory: the run directory (default: :func:`run_dir`).
    """

    def __init__(self, script: str | None = None, directory: Path | None = None) -> None:
        self.script = script
        self.directory = directory if directory is not None else run_dir()
        self.token = secrets.token_hex(16)
        self.run_file = self.directory / f"{os.getpid()}.json"
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._drained = threading.Condition()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the server listens on.

        Raises:
            RuntimeError: not started.
        """
        if self._httpd is None:
            msg = "the control server is not running"
            raise RuntimeError(msg)
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @contextlib.contextmanager
    def installed(self) -> Iterator[ControlServer]:
        """Serve and watch new jobs for the block; stop and remove the run file after.

        If the endpoint cannot start (e.g. the run directory is not writable), the block
        runs without it: controlling jobs is a convenience, never a reason to fail a job.
        """
        from strom._executors.local import JOB_LISTENERS

        try:
            self.start()
        except OSError as e:
            logger.warning("strom control endpoint not started: %s", e)
            started = False
        else:
            started = True
            JOB_LISTENERS.append(self.on_job_started)
        try:
            yield self
        finally:
            if started:
                JOB_LISTENERS.remove(self.on_job_started)
                self.close()

    def start(self) -> ControlServer:
        """Bind, start the serving thread and write the run file.

        Raises:
            OSError: the socket or the run file could not be created.
        """
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True  # close() drains requests itself, with a time limit
        httpd.control = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="strom-control",
            daemon=True,
        )
        self._thread.start()
        try:
            self._write_run_file()
        except OSError:
            self.close()
            raise
        return self

    def _write_run_file(self) -> None:
        host, port = self.address
        info = {
            "pid": os.getpid(),
            "host": host,
            "port": port,
            "token": self.token,
            "script": self.script,
            "started": int(time.time() * 1000),
        }
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.directory / f".{os.getpid()}.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        os.replace(tmp, self.run_file)

    def close(self, drain_timeout_s: float = _DRAIN_TIMEOUT_S) -> None:
        """Remove the run file, stop serving, and give requests in flight (a ``stop``
        whose job just ended) up to ``drain_timeout_s`` seconds to send their answer."""
        with contextlib.suppress(FileNotFoundError):
            self.run_file.unlink()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            with self._drained:
                self._drained.wait_for(lambda: self._in_flight == 0, drain_timeout_s)
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @contextlib.contextmanager
    def _request(self) -> Iterator[None]:
        """Count a request in flight for :meth:`close`."""
        with self._drained:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._drained:
                self._in_flight -= 1
                self._drained.notify_all()

    # -- jobs -------------------------------------------------------------------------------
    def on_job_started(self, client: Any) -> None:
        """``JOB_LISTENERS`` callback: remember the job."""
        executor = getattr(client, "executor", None)
        graph = getattr(executor, "job_graph", None)
        name = str(getattr(graph, "job_name", "job"))
        with self._lock:
            self._jobs[client.get_job_id()] = _Job(client, name, int(time.time() * 1000))

    def jobs(self) -> list[dict[str, Any]]:
        """Every job this process started, oldest first."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j.describe() for j in jobs]

    def _job(self, job_id: str) -> _Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            msg = f"no job {job_id} in process {os.getpid()}"
            raise ControlError(msg, 404)
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Request cancellation of a running job.

        Raises:
            ControlError: unknown job (404) or already ended (409).
        """
        job = self._job(job_id)
        status = job.client.get_job_status()
        if status.is_globally_terminal:
            msg = f"job {job_id} has already ended ({status.value})"
            raise ControlError(msg, 409)
        job.client.cancel()
        return {"id": job_id, "status": job.client.get_job_status().value}

    def savepoint(
        self, job_id: str, target_directory: str, stop: bool, timeout: float | None
    ) -> dict[str, Any]:
        """Take a savepoint (and with ``stop`` end the job with it).

        Raises:
            ControlError: see the module docstring for the statuses.
        """
        job = self._job(job_id)
        status = job.client.get_job_status()
        if status.is_globally_terminal:
            msg = f"job {job_id} has already ended ({status.value})"
            raise ControlError(msg, 409)
        what = "stop with savepoint" if stop else "savepoint"
        try:
            if stop:
                path = job.client.stop_with_savepoint(target_directory, timeout)
            else:
                path = job.client.trigger_savepoint(target_directory, timeout)
        except (ValueError, NotImplementedError, TimeoutError, RuntimeError) as e:
            if isinstance(e, ValueError):  # checkpointing disabled, bad target
                outcome, code = "refused", 400
            elif isinstance(e, NotImplementedError):
                outcome, code = "is not supported", 501
            elif isinstance(e, TimeoutError):
                outcome, code = "timed out", 504
            else:
                outcome, code = "failed", 409 if "not running" in str(e) else 500
            msg = f"{what} of job {job_id} {outcome}: {e}"
            raise ControlError(msg, code) from e
        return {"id": job_id, "path": str(path)}


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`ControlServer` attached to the HTTP server."""

    server_version = "strom-control/1"
    timeout = _HANDLER_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines (stderr belongs to the job)."""

    def handle(self) -> None:
        """Handle the connection, counted as in flight for ``ControlServer.close``."""
        with self._control()._request():
            super().handle()

    def _control(self) -> ControlServer:
        control: ControlServer = self.server.control  # type: ignore[attr-defined]
        return control

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        given = self.headers.get(TOKEN_HEADER, "")
        if secrets.compare_digest(given, self._control().token):
            return True
        self._reply(401, {"error": "missing or wrong access token"})
        return False

    def do_GET(self) -> None:
        """``GET /v1/jobs``."""
        if not self._authorized():
            return
        if self.path.rstrip("/") != "/v1/jobs":
            self._reply(404, {"error": f"no such resource: {self.path}"})
            return
        control = self._control()
        self._reply(200, {"pid": os.getpid(), "script": control.script, "jobs": control.jobs()})

    def do_POST(self) -> None:
        """``POST /v1/jobs/<id>/(cancel|savepoint|stop)``."""
        if not self._authorized():
            return
        route = _ROUTE.match(self.path)
        if route is None:
            self._reply(404, {"error": f"no such resource: {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            if not isinstance(body, dict):
                msg = "the body must be a JSON object"
                raise ValueError(msg)
        except ValueError as e:
            self._reply(400, {"error": f"bad request body: {e}"})
            return
        control = self._control()
        job_id, action = route["id"], route["action"]
        try:
            if action == "cancel":
                result = control.cancel(job_id)
            else:
                target = body.get("target_directory")
                if not isinstance(target, str) or not target:
                    msg = "target_directory (a path or URL) is required"
                    raise ControlError(msg, 400)
                timeout = body.get("timeout")
                result = control.savepoint(
                    job_id,
                    target,
                    action == "stop",
                    float(timeout) if timeout is not None else None,
                )
        except ControlError as e:
            self._reply(e.status or 500, {"error": str(e)})
            return
        except Exception as e:  # never let a request kill the serving thread silently
            self._reply(500, {"error": f"{type(e).__name__}: {e}"})
            return
        self._reply(200, result)


# -- client ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningProcess:
    """A ``strom run`` process found through its run file.

    Attributes:
        pid: its process id.
        host: the control endpoint's address.
        port: the control endpoint's port.
        token: the access token.
        script: the job script it runs (None if unknown).
        run_file: the run file it was found through.
    """

    pid: int
    host: str
    port: int
    token: str
    script: str | None
    run_file: Path | None = None

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout: float = _LIST_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Send one request; return the decoded JSON response.

        Raises:
            ControlError: the process cannot be reached (status 0) or answered with an
                error (its status and message).
        """
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {TOKEN_HEADER: self.token}
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            status = response.status
        except TimeoutError as e:
            msg = f"strom process {self.pid} did not answer within {timeout:g} s"
            raise ControlError(msg) from e
        except OSError as e:
            msg = f"cannot reach strom process {self.pid} at {self.host}:{self.port}: {e}"
            raise ControlError(msg, refused=isinstance(e, ConnectionRefusedError)) from e
        finally:
            conn.close()
        try:
            decoded = json.loads(raw or b"{}")
        except ValueError:
            decoded = {"error": raw.decode("utf-8", "replace")}
        if status != 200:
            raise ControlError(str(decoded.get("error") or f"HTTP {status}"), status)
        result: dict[str, Any] = decoded
        return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def discover_processes(directory: Path | None = None) -> list[RunningProcess]:
    """The ``strom run`` processes with a run file in ``directory`` (default:
    :func:`run_dir`), by pid. Run files of processes that no longer exist are deleted
    (:func:`list_jobs` also deletes those whose endpoint refuses connections: the pid
    was reused); unreadable ones are skipped."""
    directory = directory if directory is not None else run_dir()
    found: list[RunningProcess] = []
    try:
        entries = sorted(directory.glob("*.json"))
    except OSError:
        return found
    for entry in entries:
        try:
            info = json.loads(entry.read_text())
            proc = RunningProcess(
                int(info["pid"]),
                str(info["host"]),
                int(info["port"]),
                str(info["token"]),
                info.get("script"),
                entry,
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _pid_alive(proc.pid):
            with contextlib.suppress(OSError):
                entry.unlink()
            continue
        found.append(proc)
    return sorted(found, key=lambda p: p.pid)


@dataclass(frozen=True)
class JobInfo:
    """One job as ``strom list`` shows it.

    Attributes:
        id: the hex job id.
        name: the job name.
        status: its ``JobStatus`` value (``RUNNING`` ...).
        start_time: when it started, epoch ms.
        process: the ``strom run`` process running it.
    """

    id: str
    name: str
    status: str
    start_time: int
    process: RunningProcess

    def to_json(self) -> dict[str, Any]:
        """The fields ``strom list --json`` prints."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "start_time": self.start_time,
            "pid": self.process.pid,
            "script": self.process.script,
        }


_TERMINAL = {"FINISHED", "FAILED", "CANCELED"}


def list_jobs(
    directory: Path | None = None,
    include_ended: bool = False,
    processes: list[RunningProcess] | None = None,
) -> tuple[list[JobInfo], list[str]]:
    """Jobs of every reachable ``strom run`` process, oldest first.

    Args:
        directory: the run directory (default: :func:`run_dir`).
        include_ended: also jobs that finished, failed or were cancelled.
        processes: the processes to ask (default: :func:`discover_processes`).

    Returns:
        ``(jobs, warnings)``: the warnings name processes that could not be asked.
    """
    jobs: list[JobInfo] = []
    warnings: list[str] = []
    if processes is None:
        processes = discover_processes(directory)
    for proc in processes:
        try:
            answer = proc.request("GET", "/v1/jobs")
        except ControlError as e:
            if e.refused and proc.run_file is not None:
                # nothing listens on the port: the process is gone and its pid reused
                with contextlib.suppress(OSError):
                    proc.run_file.unlink()
                continue
            warnings.append(str(e))
            continue
        for j in answer.get("jobs", []):
            if include_ended or j["status"] not in _TERMINAL:
                jobs.append(
                    JobInfo(
                        str(j["id"]), str(j["name"]), str(j["status"]), int(j["start_time"]), proc
                    )
                )
    return sorted(jobs, key=lambda j: (j.start_time, j.id)), warnings


def resolve_job(job_id: str, directory: Path | None = None) -> JobInfo:
    """Find a job of a running ``strom run`` process by its id or a unique id prefix.

    A running job wins over ended ones that match the same prefix.

    Raises:
        ControlError: no process, no such job, or an ambiguous prefix.
    """
    needle = job_id.strip().lower()
    if not needle:
        msg = "a job id (or a unique prefix of one) is required"
        raise ControlError(msg)
    directory = directory if directory is not None else run_dir()
    processes = discover_processes(directory)
    if not processes:
        msg = f"no running 'strom run' process found (run directory {directory})"
        raise ControlError(msg)
    jobs, warnings = list_jobs(include_ended=True, processes=processes)
    matches = [j for j in jobs if j.id == needle] or [j for j in jobs if j.id.startswith(needle)]
    running = [j for j in matches if j.status not in _TERMINAL]
    if len(matches) > 1 and running:
        matches = running
    if not matches:
        msg = f"no job with id {job_id!r} in the running strom processes"
        if warnings:
            msg += " (" + "; ".join(warnings) + ")"
        raise ControlError(msg)
    if len(matches) > 1:
        ids = ", ".join(j.id for j in matches)
        msg = f"job id prefix {job_id!r} is ambiguous: {ids}"
        raise ControlError(msg)
    return matches[0]


def cancel_job(job: JobInfo) -> dict[str, Any]:
    """Cancel ``job``.

    Raises:
        ControlError: the process refused or cannot be reached.
    """
    return job.process.request("POST", f"/v1/jobs/{job.id}/cancel")


def savepoint_job(job: JobInfo, target_directory: str, stop: bool, timeout: float) -> str:
    """Take a savepoint of ``job`` into a new directory under ``target_directory`` (and
    with ``stop`` end the job); return the savepoint's path.

    Raises:
        ControlError: the savepoint failed, timed out or was refused.
    """
    action = "stop" if stop else "savepoint"
    answer = job.process.request(
        "POST",
        f"/v1/jobs/{job.id}/{action}",
        {"target_directory": target_directory, "timeout": timeout},
        timeout=timeout + 10,
    )
    return str(answer["path"])
