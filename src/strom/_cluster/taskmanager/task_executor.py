"""TaskExecutor: the TaskManager process that runs subtasks for the JobManager.

One process, one task thread: like the local executor's loop, the thread steps every
subtask of every job deployed here (cooperative scheduling; operators never need locks),
flushes due buffers, announces network credits and waits on a wake-up event when nothing
can progress. Helper threads only do I/O: the JobManager connection's reader (its
messages are queued for the task thread), the network environment's senders and
receivers, and a heartbeat thread that reports metrics every
:data:`HEARTBEAT_INTERVAL_S`.

Lifecycle per job: ``DeployJob`` (build tasks, create channels, open operators; answer
``JobDeployed``) -> ``StartJob`` (connect channels, start source readers) -> run until each
subtask reports ``TaskFinished`` or ``TaskFailed`` -> ``ReleaseJob``/``CancelJob`` (close
everything; answer ``JobReleased``). When the JobManager connection drops the process
exits at once: a TaskManager never outlives its JobManager.
"""

from __future__ import annotations

import enum
import importlib.util
import io
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from strom._cluster.deployment import DeployedTask, TaskBuilder, job_edges, task_metrics
from strom._cluster.failures import ship_exception
from strom._cluster.rpc.messages import (
    AddSplits,
    CancelJob,
    ClientData,
    DeployJob,
    Heartbeat,
    JobDeployed,
    JobReleased,
    NoMoreSplits,
    ProcessOutput,
    RegisterTaskManager,
    ReleaseJob,
    Shutdown,
    SourceEventToCoordinator,
    SourceEventToReader,
    SplitRequest,
    StartJob,
    TaskFailed,
    TaskFinished,
)
from strom._cluster.rpc.transport import SocketConnection
from strom._executors import client_link
from strom._graph.job_graph import JobGraph
from strom._runtime.io.channels import LocalInputChannel
from strom._runtime.io.network import (
    NetworkEnvironment,
    NetworkError,
    RemoteInputChannel,
    RemoteOutputChannel,
    connect,
)

__all__ = ["HEARTBEAT_INTERVAL_S", "TaskExecutor", "main"]

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 0.25
"""Seconds between heartbeats (each carries fresh metrics for the progress display)."""

_SWITCH_INTERVAL_S = float(os.environ.get("STROM_TM_SWITCH_INTERVAL", "0.0005"))
_IDLE_WAIT_MAX_S = 0.005  # longest wait when nothing can progress (bounds added latency)


class _RunState(enum.Enum):
    DEPLOYED = "DEPLOYED"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"  # failed here; waiting for the JobManager's cancel


@dataclass
class _NetworkFailure:
    job_id: str
    error: BaseException


@dataclass
class _JobRun:
    """The subtasks of one job in this process."""

    job_id: str
    deployed: list[DeployedTask]
    state: _RunState = _RunState.DEPLOYED
    active: list[DeployedTask] = field(default_factory=list)
    by_key: dict[tuple[str, int], DeployedTask] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)


class TaskExecutor:
    """Runs deployed subtasks on this process's task thread.

    Args:
        tm_id: this TaskManager's id.
        jm_address: the JobManager's control address.
        data_address: where to listen for data connections (``"unix:..."``/``"tcp:..."``).
    """

    def __init__(self, tm_id: str, jm_address: str, data_address: str) -> None:
        self.tm_id = tm_id
        self.inbox: deque[Any] = deque()
        self.jobs: dict[str, _JobRun] = {}
        self.running = True
        self.network = NetworkEnvironment(tm_id, data_address, self._on_network_error)
        self.wake = self.network.wake
        self.conn = SocketConnection(connect(jm_address), f"tm-{tm_id}")
        self._streams: list[_ForwardedStream] = []

    # -- process lifecycle ----------------------------------------------------------------
    def run(self) -> None:
        """Register with the JobManager and run the task loop until shutdown."""
        self.conn.send(RegisterTaskManager(self.tm_id, os.getpid(), self.network.address))
        self.conn.start(self._on_message, self._on_jm_lost)
        client_link.install_remote_sender(
            lambda rid, values, ts: self.conn.send(ClientData(rid, values, ts))
        )
        self._streams = [
            _ForwardedStream("stdout", sys.stdout),
            _ForwardedStream("stderr", sys.stderr),
        ]
        sys.stdout, sys.stderr = self._streams
        threading.Thread(target=self._heartbeat_loop, name="strom-heartbeat", daemon=True).start()
        try:
            self._loop()
        finally:
            self.network.close()
            self.conn.close()

    def flush_output(self) -> None:
        """Send what user code printed (before any message that must follow it)."""
        for s in self._streams:
            if s.has_pending():
                text = s.drain()
                if text:
                    self.conn.send(ProcessOutput(s.stream_name, text))

    def _on_message(self, msg: Any) -> None:
        if isinstance(msg, CancelJob | Shutdown):  # cut the running step short
            runs = list(self.jobs.values()) if isinstance(msg, Shutdown) else [
                r for r in [self.jobs.get(msg.job_id)] if r is not None
            ]
            for run in runs:
                for d in run.deployed:
                    d.task.stop_requested = True
        self.inbox.append(msg)
        self.wake.set()

    def _on_jm_lost(self, error: BaseException | None) -> None:
        if self.running:
            # the JobManager is gone (exit, crash, kill -9): nobody can use our results
            logger.info("TaskManager %s: JobManager connection closed; exiting", self.tm_id)
            os._exit(0)

    def _on_network_error(self, job_id: str, error: BaseException) -> None:
        self.inbox.append(_NetworkFailure(job_id, error))
        self.wake.set()

    def _heartbeat_loop(self) -> None:
        while self.running:
            time.sleep(HEARTBEAT_INTERVAL_S)
            try:
                self.flush_output()
                self.conn.send(Heartbeat(self.tm_id, self._metrics()))
            except Exception:  # connection gone: the reader thread ends the process
                return

    def _metrics(self) -> dict[str, list[tuple[str, int, list[dict[str, Any]]]]]:
        now_ms = time.monotonic_ns() // 1_000_000
        out: dict[str, list[tuple[str, int, list[dict[str, Any]]]]] = {}
        for job_id, run in list(self.jobs.items()):
            if run.state is not _RunState.RUNNING:
                continue
            out[job_id] = [
                (d.vertex.id, d.subtask, task_metrics(d, now_ms, self.tm_id))
                for d in list(run.deployed)
            ]
        return out

    # -- the task loop --------------------------------------------------------------------
    def _loop(self) -> None:
        idle = 0.0
        inbox = self.inbox
        wake = self.wake
        network = self.network
        while self.running:
            while inbox:
                self._handle(inbox.popleft())
            now_ms = time.monotonic_ns() // 1_000_000
            progressed = False
            for run in list(self.jobs.values()):
                if run.state is _RunState.RUNNING and self._step(run, now_ms):
                    progressed = True
            network.announce_credits()
            if self._streams[0].has_pending() or self._streams[1].has_pending():
                self.flush_output()
            if progressed:
                idle = 0.0
            elif not inbox:
                idle = min(_IDLE_WAIT_MAX_S, idle * 2 or 0.0001)
                wake.wait(idle)
                wake.clear()

    def _step(self, run: _JobRun, now_ms: int) -> bool:
        progressed = False
        finished: list[DeployedTask] = []
        for d in run.active:
            task = d.task
            try:
                if task.step(now_ms):
                    progressed = True
                if task.is_finished:
                    finished.append(d)
                else:
                    task.flush_if_due(now_ms)
            except Exception as e:
                self._fail(run, d, e)
                return True
        if finished:
            run.active = [d for d in run.active if not d.task.is_finished]
            for d in finished:
                self._finish_task(run, d)
                if run.state is not _RunState.RUNNING:
                    break
        return progressed

    def _finish_task(self, run: _JobRun, d: DeployedTask) -> None:
        errors = d.task.close()
        run.closed.add(id(d))
        if errors:
            self._fail(run, d, errors[0])
            return
        accumulators: dict[str, Any] = {}
        for ctx in d.contexts:
            accumulators.update(ctx.accumulators)
        now_ms = time.monotonic_ns() // 1_000_000
        self.flush_output()
        self.conn.send(
            TaskFinished(
                run.job_id,
                d.vertex.id,
                d.subtask,
                cloudpickle.dumps(list(accumulators.items()), 5),
                task_metrics(d, now_ms, self.tm_id),
            )
        )

    def _fail(self, run: _JobRun, d: DeployedTask | None, error: BaseException,
              peer: str | None = None) -> None:
        """Report a failure and stop the job's subtasks here (the JM then cancels)."""
        if run.state is _RunState.STOPPED:
            return
        run.state = _RunState.STOPPED
        self.flush_output()
        self.conn.send(
            TaskFailed(
                run.job_id,
                self.tm_id,
                d.vertex.id if d is not None else None,
                d.subtask if d is not None else None,
                ship_exception(error),
                peer,
            )
        )
        self._close_tasks(run)

    def _close_tasks(self, run: _JobRun) -> None:
        for d in run.deployed:
            if id(d) in run.closed:
                continue
            run.closed.add(id(d))
            try:
                for err in d.task.close():
                    logger.warning("error while closing %s: %s", d.task.name, err)
            except Exception as e:
                logger.warning("error while closing %s: %s", d.task.name, e)
        run.active = []

    # -- messages from the JobManager -----------------------------------------------------
    def _handle(self, msg: Any) -> None:
        run = self.jobs.get(getattr(msg, "job_id", ""))
        if isinstance(msg, AddSplits | NoMoreSplits | SourceEventToReader):
            if run is not None and run.state is not _RunState.STOPPED:
                self._to_reader(run, msg)
        elif isinstance(msg, DeployJob):
            self._deploy(msg)
        elif isinstance(msg, StartJob):
            if run is not None and run.state is _RunState.DEPLOYED:
                self._start(run)
        elif isinstance(msg, CancelJob | ReleaseJob):
            self._release(msg.job_id)
        elif isinstance(msg, _NetworkFailure):
            # a connection closing after every local subtask finished is a peer releasing
            if run is not None and run.state is not _RunState.STOPPED and (
                run.active or run.state is _RunState.DEPLOYED
            ):
                peer = msg.error.peer if isinstance(msg.error, NetworkError) else None
                self._fail(run, None, msg.error, peer)
        elif isinstance(msg, Shutdown):
            self.running = False
        else:  # pragma: no cover - protocol bug
            logger.warning("TaskManager %s: unexpected message %r", self.tm_id, msg)

    def _to_reader(self, run: _JobRun, msg: AddSplits | NoMoreSplits | SourceEventToReader) -> None:
        d = run.by_key.get((msg.vertex_id, msg.subtask))
        if d is None or d.task.source is None:
            return
        src = d.task.source
        if isinstance(msg, AddSplits):
            splits = msg.splits
            d.task.mailbox.append(lambda: src.add_splits(splits))
        elif isinstance(msg, NoMoreSplits):
            d.task.mailbox.append(src.notify_no_more_splits)
        else:
            event = msg.event
            d.task.mailbox.append(
                lambda: src.reader.handle_source_event(event)  # type: ignore[union-attr]
            )

    def _deploy(self, msg: DeployJob) -> None:
        job_id = msg.job_id
        for p in reversed(msg.sys_path):
            if p not in sys.path:
                sys.path.insert(0, p)
        run = _JobRun(job_id, [])
        self.jobs[job_id] = run
        try:
            for name, path in msg.modules.items():
                if name not in sys.modules:
                    _load_module_from_file(name, path)
            jg: JobGraph = cloudpickle.loads(msg.job_graph)
            deployed = self._build(msg, jg)
        except Exception as e:
            self._fail(run, None, e)
            return
        run.deployed = deployed
        run.by_key = {(d.vertex.id, d.subtask): d for d in deployed}
        for d in reversed(deployed):
            try:
                d.task.initialize(None)
            except Exception as e:
                self._fail(run, d, e)
                return
        self.conn.send(JobDeployed(job_id, self.tm_id))

    def _build(self, msg: DeployJob, jg: JobGraph) -> list[DeployedTask]:
        job_id = msg.job_id
        capacity = int(jg.config["execution.channel-capacity"])
        edges = job_edges(jg)
        producer_side: dict[tuple[int, int, int], Any] = {}
        consumer_side: dict[tuple[int, int, int], LocalInputChannel] = {}
        inputs: list[RemoteInputChannel] = []
        outputs: dict[str, tuple[str, list[RemoteOutputChannel]]] = {}
        me = self.tm_id
        for spec in msg.channels:
            key = (spec.edge, spec.producer, spec.consumer)
            e = edges[spec.edge]
            name = (
                f"{e.source_vertex[:8]}[{spec.producer}] -> "
                f"{e.target_vertex[:8]}[{spec.consumer}]"
            )
            if spec.producer_tm == me and spec.consumer_tm == me:
                ch = LocalInputChannel(capacity, name)
                producer_side[key] = ch
                consumer_side[key] = ch
            elif spec.producer_tm == me:
                out = RemoteOutputChannel(spec.channel_id, capacity, name)
                producer_side[key] = out
                peer = spec.consumer_tm
                outputs.setdefault(peer, (msg.peers[peer], []))[1].append(out)
            elif spec.consumer_tm == me:
                inp = RemoteInputChannel(spec.channel_id, capacity, name, spec.producer_tm)
                consumer_side[key] = inp
                inputs.append(inp)

        conn = self.conn

        def split_request(vertex_id: str, subtask: int) -> None:
            conn.send(SplitRequest(job_id, vertex_id, subtask))

        def source_event(vertex_id: str, subtask: int, event: Any) -> None:
            conn.send(SourceEventToCoordinator(job_id, vertex_id, subtask, event))

        builder = TaskBuilder(jg, job_id, msg.job_parameters, split_request, source_event)
        deployed = builder.build(msg.subtasks, producer_side, consumer_side)
        self.network.register_job(job_id, inputs, outputs)
        return deployed

    def _start(self, run: _JobRun) -> None:
        try:
            self.network.connect_job(run.job_id)
        except NetworkError as e:
            self._fail(run, None, e, e.peer)
            return
        run.state = _RunState.RUNNING
        run.active = list(run.deployed)
        for d in run.deployed:
            try:
                d.task.start_source()
            except Exception as e:
                self._fail(run, d, e)
                return

    def _release(self, job_id: str) -> None:
        run = self.jobs.pop(job_id, None)
        if run is not None:
            run.state = _RunState.STOPPED
            self._close_tasks(run)
        self.network.release_job(job_id)
        try:
            self.conn.send(JobReleased(job_id, self.tm_id))
        except ConnectionError:
            pass


def _load_module_from_file(name: str, path: str) -> None:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


class _ForwardedStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of a TaskManager: text is sent to the client."""

    def __init__(self, name: str, original: Any) -> None:
        self.stream_name = name
        self.original = original
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            self._parts.append(s)
        return len(s)

    def drain(self) -> str:
        """Take the text written so far."""
        with self._lock:
            parts, self._parts = self._parts, []
        return "".join(parts)

    def has_pending(self) -> bool:
        """True if text waits to be sent."""
        return bool(self._parts)

    def fileno(self) -> int:
        return int(self.original.fileno())

    def isatty(self) -> bool:
        return False


def main(tm_id: str, jm_address: str, data_address: str) -> None:
    """TaskManager process entry point (called in a child forked by the launcher)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client turns Ctrl-C into a cancel
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # The task thread is CPU-bound; network threads need the GIL briefly and often. With
    # the default 5 ms switch interval each of them waits up to 5 ms per wake-up, which
    # throttles every cross-process channel (measured: p2 throughput doubled at 0.5 ms).
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    TaskExecutor(tm_id, jm_address, data_address).run()
