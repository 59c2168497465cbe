"""MiniCluster: a JobManager in this process and TaskManager processes on this machine.

The JobManager side listens on a Unix socket in a private temporary directory; each
TaskManager, forked by the :class:`~strom._cluster.taskmanager.launcher.ProcessLauncher`,
connects and registers. Messages from a TaskManager are routed by job id to the job's
:class:`~strom._cluster.jobmanager.job_master.JobMaster`; heartbeats carry metrics;
``ClientData`` goes straight to its receiver (collect sink, TestingSink).

Failure detection: a TaskManager that dies closes its connection, which the reader
thread sees at once (well within the 2 s budget); the launcher then reports how it
ended (exit code or signal), which goes into the error message. A live but silent
TaskManager (no heartbeat for :data:`HEARTBEAT_TIMEOUT_S`) is killed and handled the same
way.

Clean-up: :meth:`MiniCluster.shutdown` asks every TaskManager to exit, SIGKILLs any that
do not within a grace period, and stops the launcher; it also runs at interpreter exit.
TaskManagers exit by themselves when the JobManager's connection drops, so even a
``kill -9`` of the client leaves no orphans. Each TaskManager's temporary files (RocksDB
instances) live in its own directory under the cluster's private one, deleted when the
process is gone, so a killed TaskManager leaves no files behind either.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strom._cluster.rpc.messages import (
    ClientData,
    Heartbeat,
    ProcessOutput,
    RegisterTaskManager,
    Shutdown,
)
from strom._cluster.rpc.transport import SocketConnection
from strom._cluster.taskmanager.launcher import ProcessLauncher, describe_exit
from strom._executors import client_link
from strom._runtime.io.network import listen

if TYPE_CHECKING:
    from strom._cluster.jobmanager.job_master import JobMaster

__all__ = ["HEARTBEAT_TIMEOUT_S", "MiniCluster", "TaskManagerHandle"]

logger = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_S = 30.0
"""A connected TaskManager silent this long is considered hung and is killed. Death is
detected far sooner through the connection; this only catches a wedged process."""

_REGISTER_TIMEOUT_S = 30.0  # a forked TaskManager only connects; generous for loaded CI
_SHUTDOWN_GRACE_S = 2.0  # then remaining TaskManagers are killed
_EXIT_STATUS_WAIT_S = 0.3  # after a connection drops, wait this long for the exit status


@dataclass(eq=False)
class TaskManagerHandle:
    """The JobManager's view of one TaskManager process.

    Attributes:
        tm_id: its id (``tm-<n>``).
        pid: its process id.
        data_address: where it accepts data connections.
        conn: the control connection (None until it registered).
        alive: False once its connection dropped.
        exit_description: how it ended, once known (``"was killed by SIGKILL"``).
        temp_dir: its temporary directory (deleted once the process is gone).
    """

    tm_id: str
    pid: int
    data_address: str = ""
    temp_dir: str | None = None
    conn: SocketConnection | None = None
    alive: bool = True
    exit_description: str | None = None
    last_heartbeat: float = field(default_factory=time.monotonic)
    busy: int = 0
    registered: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> str:
        """``"TaskManager tm-1 (pid 1234)"``."""
        return f"TaskManager {self.tm_id} (pid {self.pid})"

    def send(self, msg: Any) -> bool:
        """Send a message; False if the TaskManager is gone."""
        conn = self.conn
        if conn is None or not self.alive:
            return False
        try:
            conn.send(msg)
        except OSError:
            return False
        return True


class MiniCluster:
    """Embedded cluster: JobManager here, ``num_taskmanagers`` TaskManager processes.

    Slots are not a hard limit: a job with parallelism P uses P slots spread over at most
    P TaskManagers (see ``ExecutionGraph``); several jobs may share the TaskManagers.

    Args:
        num_taskmanagers: TaskManager processes to start (default: one per CPU core).
    """

    def __init__(self, num_taskmanagers: int | None = None) -> None:
        self.num_taskmanagers = num_taskmanagers or (os.cpu_count() or 1)
        self._tms: dict[str, TaskManagerHandle] = {}
        self._by_pid: dict[int, TaskManagerHandle] = {}
        self._jobs: dict[str, JobMaster] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count()
        self._dir: str | None = None
        self._launcher: ProcessLauncher | None = None
        self._listener: Any = None
        self.address = ""
        self._closed = False
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> MiniCluster:
        """Start the JobManager endpoint and the TaskManagers (blocks until registered).

        Raises:
            RuntimeError: the TaskManagers did not come up.
        """
        if self._started:
            return self
        self._started = True
        self._dir = tempfile.mkdtemp(prefix="strom-")
        self._listener, self.address = listen(f"unix:{self._dir}/jm.sock")
        threading.Thread(target=self._accept_loop, name="strom-jm-accept", daemon=True).start()
        self._launcher = ProcessLauncher(self._on_process_exit)
        atexit.register(self.shutdown)
        threading.Thread(target=self._watchdog, name="strom-jm-watchdog", daemon=True).start()
        try:
            self.ensure_taskmanagers(self.num_taskmanagers)
        except BaseException:
            self.shutdown()
            raise
        return self

    def __enter__(self) -> MiniCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def ensure_taskmanagers(self, n: int) -> None:
        """Start TaskManagers until ``n`` are alive (replaces dead ones).

        Raises:
            RuntimeError: a TaskManager did not register in time.
        """
        assert self._launcher is not None and self._dir is not None
        new: list[TaskManagerHandle] = []
        with self._lock:
            missing = n - len(self.taskmanagers())
            for _ in range(max(0, missing)):
                tm_id = f"tm-{next(self._ids)}"
                data_address = f"unix:{self._dir}/{tm_id}.sock"
                temp_dir = f"{self._dir}/{tm_id}-tmp"
                pid = self._launcher.spawn(tm_id, self.address, data_address, temp_dir=temp_dir)
                handle = TaskManagerHandle(tm_id, pid, data_address, temp_dir=temp_dir)
                self._tms[tm_id] = handle
                self._by_pid[pid] = handle
                new.append(handle)
        deadline = time.monotonic() + _REGISTER_TIMEOUT_S
        for h in new:
            if not h.registered.wait(max(0.0, deadline - time.monotonic())):
                msg = f"{h.describe()} did not register within {_REGISTER_TIMEOUT_S:.0f} s"
                raise RuntimeError(msg)
            if not h.alive:
                msg = f"{h.describe()} {h.exit_description or 'died'} while starting"
                raise RuntimeError(msg)

    def taskmanagers(self) -> list[TaskManagerHandle]:
        """Alive TaskManagers, oldest first."""
        with self._lock:
            return [h for h in self._tms.values() if h.alive]

    def pids(self) -> list[int]:
        """Process ids of every TaskManager ever started (for clean-up checks)."""
        with self._lock:
            return list(self._by_pid)

    def shutdown(self) -> None:
        """Stop every TaskManager (kill those that do not exit) and the launcher."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            handles = list(self._tms.values())
        for h in handles:
            h.send(Shutdown())
        launcher = self._launcher
        deadline = time.monotonic() + _SHUTDOWN_GRACE_S
        for h in handles:
            if launcher is None:
                break
            left = max(0.0, deadline - time.monotonic())
            if launcher.wait_exit(h.pid, left) is None and _pid_alive(h.pid):
                logger.warning("%s did not exit; killing it", h.describe())
                _kill(h.pid)
                launcher.wait_exit(h.pid, 1.0)
        for h in handles:
            if h.conn is not None:
                h.conn.close()
        if self._listener is not None:
            self._listener.close()
        if launcher is not None:
            launcher.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        try:
            atexit.unregister(self.shutdown)
        except Exception:  # pragma: no cover - interpreter shutting down
            pass

    # -- jobs ------------------------------------------------------------------------------
    def add_job(self, job: JobMaster) -> None:
        """Route the job's messages to ``job``."""
        with self._lock:
            self._jobs[job.job_id] = job

    def remove_job(self, job_id: str) -> None:
        """Stop routing messages of ``job_id``."""
        with self._lock:
            self._jobs.pop(job_id, None)

    # -- connections -----------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(
                target=self._handshake, args=(sock,), name="strom-jm-handshake", daemon=True
            ).start()

    def _handshake(self, sock: Any) -> None:
        conn = SocketConnection(sock, "jm")
        try:
            reg = conn.recv()
        except OSError:
            conn.close()
            return
        if not isinstance(reg, RegisterTaskManager):
            conn.close()
            return
        with self._lock:
            h = self._tms.get(reg.tm_id)
        if h is None or self._closed:
            conn.close()
            return
        h.conn = conn
        h.data_address = reg.data_address
        h.last_heartbeat = time.monotonic()
        conn.name = f"jm-{h.tm_id}"
        conn.start(functools.partial(self._on_message, h), functools.partial(self._on_closed, h))
        h.registered.set()

    def _on_message(self, h: TaskManagerHandle, msg: Any) -> None:
        h.last_heartbeat = time.monotonic()
        if isinstance(msg, ClientData):
            h.busy += 1  # a blocking receiver back-pressures this TaskManager: not hung
            try:
                client_link.dispatch(msg.receiver_id, msg.values, msg.timestamps)
            finally:
                h.busy -= 1
            return
        if isinstance(msg, ProcessOutput):
            stream = sys.stderr if msg.stream == "stderr" else sys.stdout
            stream.write(msg.text)
            stream.flush()
            return
        if isinstance(msg, Heartbeat):
            for job_id, rows in msg.metrics.items():
                job = self._jobs.get(job_id)
                if job is not None:
                    job.update_metrics(rows)
            return
        job = self._jobs.get(getattr(msg, "job_id", ""))
        if job is not None:
            job.post(msg)

    def _on_closed(self, h: TaskManagerHandle, error: BaseException | None) -> None:
        h.alive = False
        if self._closed:
            return
        launcher = self._launcher
        status = launcher.wait_exit(h.pid, _EXIT_STATUS_WAIT_S) if launcher else None
        if status is None and _pid_alive(h.pid):
            h.exit_description = "closed its connection to the JobManager"
            _kill(h.pid)  # a TaskManager without JobManager connection is useless
        else:
            h.exit_description = describe_exit(status)
        from strom._cluster.jobmanager.job_master import TaskManagerLost

        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.post(TaskManagerLost(h))
        # a killed TaskManager cannot clean up (RocksDB instances, ...): remove its files
        if launcher is not None and h.temp_dir is not None:
            if status is None:
                launcher.wait_exit(h.pid, 2.0)
            shutil.rmtree(h.temp_dir, ignore_errors=True)

    def _on_process_exit(self, pid: int, status: int) -> None:
        h = self._by_pid.get(pid)
        if h is not None and h.exit_description is None:
            h.exit_description = describe_exit(status)
            if not h.registered.is_set():
                h.alive = False
                h.registered.set()

    def _watchdog(self) -> None:
        while not self._closed:
            time.sleep(1.0)
            now = time.monotonic()
            for h in self.taskmanagers():
                silent_s = now - h.last_heartbeat
                if h.conn is not None and not h.busy and silent_s > HEARTBEAT_TIMEOUT_S:
                    logger.warning("%s sent no heartbeat for %.0f s; killing it",
                                   h.describe(), now - h.last_heartbeat)
                    h.exit_description = (
                        f"sent no heartbeat for {HEARTBEAT_TIMEOUT_S:.0f} s and was killed"
                    )
                    _kill(h.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - not ours
        return True
    return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
