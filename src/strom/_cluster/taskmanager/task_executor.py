"""TaskExecutor: the TaskManager process that runs subtasks for the JobManager.

One process, one task thread: like the local executor's loop, the thread steps every
subtask of every job deployed here (cooperative scheduling; operators never need locks),
flushes due buffers, announces network credits and waits on a wake-up event when nothing
can progress. Helper threads only do I/O: the JobManager connection's reader (its
messages are queued for the task thread), the network environment's senders and
receivers, and a heartbeat thread that reports metrics every
:data:`HEARTBEAT_INTERVAL_S`.

Lifecycle per job attempt: ``DeployJob`` (build tasks, create channels, restore state,
open operators; answer ``JobDeployed``) -> ``StartJob`` (connect channels, start source
readers) -> run until each subtask reports ``TaskFinished`` or ``TaskFailed`` ->
``ReleaseJob``/``CancelJob`` (close everything, let queued snapshot writes finish; answer
``JobReleased``). A restart deploys the job again with the next attempt number; its data
connections are registered under ``<job id>@<attempt>`` so nothing of an old attempt can
reach the new one. When the JobManager connection drops the process exits at once: a
TaskManager never outlives its JobManager.

Checkpoints: tasks report snapshots to a :class:`_JobCheckpoints` listener, which hands
the encoded bytes to the process's :class:`AsyncSnapshotWriter` (one background thread)
for the checkpoint's directory (learnt from ``TriggerCheckpoint``; a snapshot taken on an
in-band barrier that overtook that message waits for it) and answers
``AcknowledgeCheckpoint``/``DeclineCheckpoint`` from the writer thread.
"""

from __future__ import annotations

import enum
import functools
import importlib.util
import io
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from strom._checkpoint.snapshots import AsyncSnapshotWriter, discard_encoded
from strom._checkpoint.storage import CheckpointStorage
from strom._cluster.deployment import DeployedTask, TaskBuilder, job_edges, task_metrics
from strom._cluster.failures import ship_exception
from strom._cluster.rpc.messages import (
    AcknowledgeCheckpoint,
    AddSplits,
    CancelJob,
    ClientData,
    DeclineCheckpoint,
    DeployJob,
    Fence,
    FenceReached,
    Heartbeat,
    JobDeployed,
    JobReleased,
    NoMoreSplits,
    NotifyCheckpointAborted,
    NotifyCheckpointComplete,
    ProcessOutput,
    RegisterTaskManager,
    ReleaseJob,
    Shutdown,
    SourceEventToCoordinator,
    SourceEventToReader,
    SplitRequest,
    StartJob,
    TaskEndOfInput,
    TaskFailed,
    TaskFinished,
    TriggerCheckpoint,
)
from strom._cluster.rpc.transport import SocketConnection
from strom._executors import client_link
from strom._graph.job_graph import JobGraph
from strom._runtime.elements import CheckpointBarrier
from strom._runtime.io.channels import LocalInputChannel
from strom._runtime.io.network import (
    NetworkEnvironment,
    NetworkError,
    RemoteInputChannel,
    RemoteOutputChannel,
    connect,
)
from strom._runtime.task.stream_task import StreamTask

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
    net_key: str
    error: BaseException


@dataclass
class _JobRun:
    """The subtasks of one job attempt in this process."""

    job_id: str
    deployed: list[DeployedTask]
    state: _RunState = _RunState.DEPLOYED
    active: list[DeployedTask] = field(default_factory=list)
    by_key: dict[tuple[str, int], DeployedTask] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    attempt: int = 0
    checkpoints: _JobCheckpoints | None = None

    @property
    def net_key(self) -> str:
        """The attempt's key in the network environment."""
        return f"{self.job_id}@{self.attempt}"


def _write_key(job_id: str, attempt: int, vertex_id: str, subtask: int) -> tuple[str, int]:
    """The task key given to the snapshot writer: it names files by ``key[1]`` (the
    subtask index) and hands the key back, so ``key[0]`` routes the acknowledgement."""
    return f"{job_id}\x00{attempt}\x00{vertex_id}", subtask


class _JobCheckpoints:
    """The TaskManager side of one job attempt's checkpoints (the tasks' listener).

    All methods except the writer callback run on the task thread.

    Args:
        executor: the TaskExecutor.
        run: the job attempt.
        storage_url: the job's checkpoint storage base URL (the JobManager's).
    """

    def __init__(self, executor: TaskExecutor, run: _JobRun, storage_url: str) -> None:
        self.executor = executor
        self.run = run
        self.storage = CheckpointStorage(storage_url, run.job_id)
        self.directories: dict[int, str] = {}
        self.waiting: dict[int, list[tuple[tuple[str, int], dict[str, bytes]]]] = {}
        self.last_completed = -1
        self.aborted: set[int] = set()

    # -- CheckpointListener ----------------------------------------------------------------
    def on_snapshot(self, task: StreamTask, checkpoint_id: int, states: dict[str, bytes]) -> None:
        """Queue the encoded states for writing (or hold them until the directory is known)."""
        if checkpoint_id <= self.last_completed or checkpoint_id in self.aborted:
            discard_encoded(states)
            return
        directory = self.directories.get(checkpoint_id)
        if directory is None:  # the in-band barrier overtook TriggerCheckpoint
            self.waiting.setdefault(checkpoint_id, []).append((task.task_key, states))
            return
        self._submit(checkpoint_id, directory, task.task_key, states)

    def on_declined(self, task: StreamTask, checkpoint_id: int, reason: str) -> None:
        """Tell the JobManager."""
        vertex_id, subtask = task.task_key
        self.executor.send(DeclineCheckpoint(
            self.run.job_id, checkpoint_id, vertex_id, subtask, reason,
            attempt=self.run.attempt,
        ))

    def on_finished(self, task: StreamTask) -> None:
        """The task waits for the final checkpoint: tell the JobManager."""
        vertex_id, subtask = task.task_key
        self.executor.flush_output()
        self.executor.send(TaskEndOfInput(self.run.job_id, vertex_id, subtask, self.run.attempt))

    # -- messages --------------------------------------------------------------------------
    def started(self, checkpoint_id: int, directory: str) -> None:
        """The directory of ``checkpoint_id``; writes snapshots that waited for it."""
        if checkpoint_id <= self.last_completed or checkpoint_id in self.aborted:
            return
        self.directories[checkpoint_id] = directory
        for key, states in self.waiting.pop(checkpoint_id, []):
            self._submit(checkpoint_id, directory, key, states)

    def completed(self, checkpoint_id: int) -> None:
        """Forget checkpoints up to ``checkpoint_id``."""
        self.last_completed = max(self.last_completed, checkpoint_id)
        self.directories = {c: d for c, d in self.directories.items() if c > checkpoint_id}
        for c in [c for c in self.waiting if c <= checkpoint_id]:
            for _, states in self.waiting.pop(c):
                discard_encoded(states)
        self.aborted = {c for c in self.aborted if c > checkpoint_id}

    def aborted_checkpoint(self, checkpoint_id: int) -> None:
        """Forget an aborted checkpoint."""
        self.aborted.add(checkpoint_id)
        self.directories.pop(checkpoint_id, None)
        for _, states in self.waiting.pop(checkpoint_id, []):
            discard_encoded(states)  # local native RocksDB checkpoints

    def _submit(self, checkpoint_id: int, directory: str, task_key: tuple[str, int],
                states: dict[str, bytes]) -> None:
        key = _write_key(self.run.job_id, self.run.attempt, task_key[0], task_key[1])
        self.executor.writer().submit_encoded(self.storage, directory, checkpoint_id, key, states,
                                              last_completed=self.last_completed)


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
        self._writer: AsyncSnapshotWriter | None = None

    def send(self, msg: Any) -> None:
        """Send a message to the JobManager (any thread; dropped if it is gone: the
        connection's reader then ends the process)."""
        try:
            self.conn.send(msg)
        except OSError:
            pass

    def writer(self) -> AsyncSnapshotWriter:
        """The process's snapshot writer thread (started on first use)."""
        if self._writer is None:
            self._writer = AsyncSnapshotWriter(self._written)
        return self._writer

    def _written(self, checkpoint_id: int, key: Any, handles: dict[str, str] | None,
                 error: BaseException | None) -> None:
        """Writer thread: a snapshot was written (or failed), or a released job's queued
        writes are done (``key[1] < 0``)."""
        job_id, attempt_s, vertex_id = key[0].split("\x00", 2)
        attempt, subtask = int(attempt_s), int(key[1])
        if subtask < 0:
            self.send(JobReleased(job_id, self.tm_id, attempt))
        elif error is not None:
            logger.warning("TaskManager %s: writing the snapshot of %s[%d] for checkpoint %d "
                           "failed: %s", self.tm_id, vertex_id, subtask, checkpoint_id, error)
            self.send(DeclineCheckpoint(job_id, checkpoint_id, vertex_id, subtask,
                                        f"{type(error).__name__}: {error}", True, attempt))
        else:
            self.send(AcknowledgeCheckpoint(job_id, checkpoint_id, vertex_id, subtask,
                                            handles or {}, attempt))

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

    def _on_network_error(self, net_key: str, error: BaseException) -> None:
        self.inbox.append(_NetworkFailure(net_key, error))
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
                run.attempt,
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
                run.attempt,
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
        if isinstance(msg, DeployJob):
            self._deploy(msg)
            return
        if isinstance(msg, CancelJob | ReleaseJob):  # whatever attempt runs here
            self._release(msg.job_id, msg.attempt)
            return
        if isinstance(msg, Fence):  # every earlier message was handled
            self.send(FenceReached(msg.job_id, self.tm_id, msg.token))
            return
        run = self.jobs.get(getattr(msg, "job_id", ""))
        if run is not None and getattr(msg, "attempt", run.attempt) != run.attempt:
            return  # a message for an attempt that was cancelled
        if isinstance(msg, AddSplits | NoMoreSplits | SourceEventToReader):
            if run is not None and run.state is not _RunState.STOPPED:
                self._to_reader(run, msg)
        elif isinstance(msg, TriggerCheckpoint):
            if run is not None and run.state is _RunState.RUNNING:
                self._trigger(run, msg)
        elif isinstance(msg, NotifyCheckpointComplete):
            if run is not None and run.state is _RunState.RUNNING:
                self._notify_complete(run, msg)
        elif isinstance(msg, NotifyCheckpointAborted):
            if run is not None and run.state is _RunState.RUNNING:
                self._notify_aborted(run, msg)
        elif isinstance(msg, StartJob):
            if run is not None and run.state is _RunState.DEPLOYED:
                self._start(run)
        elif isinstance(msg, _NetworkFailure):
            run = self.jobs.get(msg.net_key.rpartition("@")[0])
            # a connection closing after every local subtask finished is a peer releasing
            if run is not None and run.net_key == msg.net_key and (
                run.state is not _RunState.STOPPED
            ) and (run.active or run.state is _RunState.DEPLOYED):
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

    # -- checkpoints ----------------------------------------------------------------------
    def _trigger(self, run: _JobRun, msg: TriggerCheckpoint) -> None:
        """Record the checkpoint's directory; queue direct triggers in the named tasks'
        mailboxes (behind any split assignment that arrived before)."""
        if run.checkpoints is None:
            return
        run.checkpoints.started(msg.checkpoint_id, msg.directory)
        barrier = CheckpointBarrier(msg.checkpoint_id, msg.timestamp_ms, msg.is_savepoint)
        for key in msg.subtasks:
            d = run.by_key.get(key)
            if d is not None and id(d) not in run.closed:
                d.task.mailbox.append(functools.partial(d.task.trigger_checkpoint, barrier))

    def _notify_complete(self, run: _JobRun, msg: NotifyCheckpointComplete) -> None:
        """Sinks commit now, on the task thread between steps (not through the mailbox,
        so a cancel right behind this message, as after a stop-with-savepoint, cannot
        skip the commit)."""
        if run.checkpoints is not None:
            run.checkpoints.completed(msg.checkpoint_id)
        for d in run.deployed:
            if id(d) in run.closed:
                continue
            try:
                d.task.notify_checkpoint_complete(msg.checkpoint_id, msg.final)
            except Exception as e:
                self._fail(run, d, e)
                return

    def _notify_aborted(self, run: _JobRun, msg: NotifyCheckpointAborted) -> None:
        if run.checkpoints is not None:
            run.checkpoints.aborted_checkpoint(msg.checkpoint_id)
        for d in run.deployed:
            if id(d) not in run.closed:
                d.task.mailbox.append(
                    functools.partial(d.task.notify_checkpoint_aborted, msg.checkpoint_id)
                )

    # -- deployment -------------------------------------------------------------------------
    def _deploy(self, msg: DeployJob) -> None:
        job_id = msg.job_id
        for p in reversed(msg.sys_path):
            if p not in sys.path:
                sys.path.insert(0, p)
        if job_id in self.jobs:  # defensive: the JobManager cancels an attempt first
            self._release(job_id, self.jobs[job_id].attempt)
        run = _JobRun(job_id, [], attempt=msg.attempt)
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
                d.task.initialize(msg.restored)
            except Exception as e:
                self._fail(run, d, e)
                return
        if msg.checkpoint_storage is not None:
            try:
                run.checkpoints = _JobCheckpoints(self, run, msg.checkpoint_storage)
            except Exception as e:
                self._fail(run, None, e)
                return
            cfg = jg.checkpoint_config or {}
            exactly_once = cfg.get("mode", "EXACTLY_ONCE") == "EXACTLY_ONCE"
            for d in deployed:
                d.task.enable_checkpointing(run.checkpoints, exactly_once,
                                            (d.vertex.id, d.subtask))
        self.conn.send(JobDeployed(job_id, self.tm_id, msg.attempt))

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
        attempt = msg.attempt

        def split_request(vertex_id: str, subtask: int) -> None:
            conn.send(SplitRequest(job_id, vertex_id, subtask, attempt))

        def source_event(vertex_id: str, subtask: int, event: Any) -> None:
            conn.send(SourceEventToCoordinator(job_id, vertex_id, subtask, event, attempt))

        builder = TaskBuilder(jg, job_id, msg.job_parameters, split_request, source_event,
                              attempt_number=attempt)
        deployed = builder.build(msg.subtasks, producer_side, consumer_side)
        self.network.register_job(f"{job_id}@{attempt}", inputs, outputs)
        return deployed

    def _start(self, run: _JobRun) -> None:
        try:
            self.network.connect_job(run.net_key)
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

    def _release(self, job_id: str, attempt: int) -> None:
        """Close the job's tasks and connections; answer ``JobReleased`` (with the
        JobManager's ``attempt``) once the writer thread wrote what was queued before, so
        no file of the job appears later."""
        run = self.jobs.pop(job_id, None)
        if run is not None:
            run.state = _RunState.STOPPED
            self._close_tasks(run)
            self.network.release_job(run.net_key)
            if run.checkpoints is not None and self._writer is not None:
                marker = _write_key(job_id, attempt, "", -1)
                self._writer.submit_encoded(run.checkpoints.storage, "", -1, marker, {})
                return
        self.send(JobReleased(job_id, self.tm_id, attempt))


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


def main(tm_id: str, jm_address: str, data_address: str, temp_dir: str | None = None) -> None:
    """TaskManager process entry point (called in a child forked by the launcher).

    Args:
        tm_id: this TaskManager's id.
        jm_address: the JobManager's control address.
        data_address: where to listen for data connections.
        temp_dir: the process's temporary directory (its RocksDB instances go there; the
            MiniCluster deletes it when the process is gone, even after a SIGKILL).
    """
    if temp_dir is not None:
        os.makedirs(temp_dir, exist_ok=True)
        os.environ["TMPDIR"] = temp_dir
        tempfile.tempdir = temp_dir
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client turns Ctrl-C into a cancel
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # The task thread is CPU-bound; network threads need the GIL briefly and often. With
    # the default 5 ms switch interval each of them waits up to 5 ms per wake-up, which
    # throttles every cross-process channel (measured: p2 throughput doubled at 0.5 ms).
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    TaskExecutor(tm_id, jm_address, data_address).run()
