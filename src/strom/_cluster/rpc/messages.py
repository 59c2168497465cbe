"""Typed RPC messages between the JobManager (JM) and TaskManagers (TM).

Every message is a frozen dataclass; the transport pickles it (cloudpickle, so splits and
source events defined in user code travel too). Messages of one connection arrive in the
order they were sent, which the protocol relies on: a sink's :class:`ClientData` always
precedes the :class:`TaskFinished` of its subtask.

Deployment is two-phase: the JM sends :class:`DeployJob` to every TM, each TM builds and
opens its tasks and answers :class:`JobDeployed`; only then the JM sends
:class:`StartJob`, so every consumer channel exists before any producer connects.

Checkpoints: the JM sends :class:`TriggerCheckpoint` to *every* TM of the job (it carries
the checkpoint's directory, which tasks reached by in-band barriers need too, and names
the subtasks to trigger directly: sources and tasks past their end of input); split
assignments travel on the same connection, so an assignment sent before a trigger
reaches the reader before its snapshot. The TM writes each task's snapshot into that
directory itself (shared filesystem) and answers :class:`AcknowledgeCheckpoint` with the
file names, or :class:`DeclineCheckpoint`; :class:`TaskEndOfInput` tells the JM a task
waits for the final checkpoint. :class:`NotifyCheckpointComplete` lets sinks commit.

Job-scoped messages carry the job's ``attempt`` (0, +1 per restart): messages of an
attempt that was cancelled are ignored by both sides. :class:`CancelJob` and
:class:`ReleaseJob` end whatever attempt the TM runs (and are answered with the JM's
current attempt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AcknowledgeCheckpoint",
    "AddSplits",
    "CancelJob",
    "ChannelSpec",
    "ClientData",
    "DeclineCheckpoint",
    "DeployJob",
    "Fence",
    "FenceReached",
    "Heartbeat",
    "JobDeployed",
    "JobReleased",
    "NoMoreSplits",
    "NotifyCheckpointAborted",
    "NotifyCheckpointComplete",
    "ProcessOutput",
    "RegisterTaskManager",
    "ReleaseJob",
    "RemoteFailure",
    "Shutdown",
    "SourceEventToCoordinator",
    "SourceEventToReader",
    "SplitRequest",
    "StartJob",
    "TaskEndOfInput",
    "TaskFailed",
    "TaskFinished",
    "TriggerCheckpoint",
]


# -- shared payloads ---------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelSpec:
    """One channel of a job edge between producer subtask ``i`` and consumer ``j``.

    Attributes:
        edge: index of the edge in the job's edge list (vertices in order, outputs in order).
        producer: producer subtask index.
        consumer: consumer subtask index.
        channel_id: id unique within the job (used on the wire when the channel is remote).
        producer_tm: TaskManager running the producer.
        consumer_tm: TaskManager running the consumer.
    """

    edge: int
    producer: int
    consumer: int
    channel_id: int
    producer_tm: str
    consumer_tm: str


@dataclass(frozen=True)
class RemoteFailure:
    """An exception shipped from a TaskManager.

    Attributes:
        chain: the exception and its causes, outermost first, each pickled (or None when it
            cannot be pickled).
        descriptions: per exception ``(qualified type name, message)``.
        tracebacks: per exception its formatted traceback (frames only).
    """

    chain: list[bytes | None]
    descriptions: list[tuple[str, str]]
    tracebacks: list[str]


# -- TM -> JM ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RegisterTaskManager:
    """A TaskManager process is up.

    Attributes:
        tm_id: its id (given at launch).
        pid: its OS process id.
        data_address: where its network environment listens for data connections.
    """

    tm_id: str
    pid: int
    data_address: str


@dataclass(frozen=True)
class Heartbeat:
    """Periodic liveness signal carrying the latest metrics.

    Attributes:
        tm_id: the sender.
        metrics: per job id, ``(vertex id, subtask, rows)`` per subtask (rows as
            ``strom._cluster.deployment.task_metrics`` makes them).
    """

    tm_id: str
    metrics: dict[str, list[tuple[str, int, list[dict[str, Any]]]]]


@dataclass(frozen=True)
class JobDeployed:
    """The TM built and opened its tasks of the job."""

    job_id: str
    tm_id: str
    attempt: int = 0


@dataclass(frozen=True)
class TaskFinished:
    """A subtask processed its end of input and closed.

    Attributes:
        accumulators: pickled ``{name: Accumulator}`` of its operators, in chain order.
        metrics: its final metric rows.
        attempt: the job attempt it belongs to.
    """

    job_id: str
    vertex_id: str
    subtask: int
    accumulators: bytes
    metrics: list[dict[str, Any]]
    attempt: int = 0


@dataclass(frozen=True)
class TaskFailed:
    """A subtask (or the deployment, when ``vertex_id`` is None) failed.

    Attributes:
        subtask: the subtask index, or None.
        network_peer: set when the failure is a lost data connection to that TM.
        attempt: the job attempt it belongs to.
    """

    job_id: str
    tm_id: str
    vertex_id: str | None
    subtask: int | None
    failure: RemoteFailure
    network_peer: str | None = None
    attempt: int = 0


@dataclass(frozen=True)
class JobReleased:
    """The TM dropped every task and connection of the job (after cancel/release) and
    finished writing its snapshots (no file of the job is written after this)."""

    job_id: str
    tm_id: str
    attempt: int = 0


@dataclass(frozen=True)
class SplitRequest:
    """A source reader asks its enumerator for a split."""

    job_id: str
    vertex_id: str
    subtask: int
    attempt: int = 0


@dataclass(frozen=True)
class SourceEventToCoordinator:
    """A custom event from a source reader to its enumerator."""

    job_id: str
    vertex_id: str
    subtask: int
    event: Any
    attempt: int = 0


@dataclass(frozen=True)
class FenceReached:
    """Answer to :class:`Fence`: the TM handled every message sent before it."""

    job_id: str
    tm_id: str
    token: int


@dataclass(frozen=True)
class TaskEndOfInput:
    """A subtask processed its end of input and waits for the final checkpoint (only
    with checkpointing; :class:`TaskFinished` follows once that checkpoint completed)."""

    job_id: str
    vertex_id: str
    subtask: int
    attempt: int = 0


@dataclass(frozen=True)
class AcknowledgeCheckpoint:
    """A subtask's snapshot is written to the checkpoint's directory.

    Attributes:
        handles: operator uid -> state file name (relative to the directory).
    """

    job_id: str
    checkpoint_id: int
    vertex_id: str
    subtask: int
    handles: dict[str, str]
    attempt: int = 0


@dataclass(frozen=True)
class DeclineCheckpoint:
    """A subtask could not take a checkpoint.

    Attributes:
        reason: why (for logs).
        io_error: True if writing the snapshot failed (else the task declined it).
    """

    job_id: str
    checkpoint_id: int
    vertex_id: str
    subtask: int
    reason: str
    io_error: bool = False
    attempt: int = 0


@dataclass(frozen=True)
class ClientData:
    """Records for a receiver in the client process (collect sink, TestingSink).

    Attributes:
        receiver_id: the registered receiver.
        values: the records.
        timestamps: their timestamps or None.
    """

    receiver_id: str
    values: list[Any]
    timestamps: list[int | None] | None


@dataclass(frozen=True)
class ProcessOutput:
    """Text a TaskManager wrote to ``sys.stdout``/``sys.stderr`` (e.g. ``print()`` in a
    user function or a PrintSink), written to the client's stream of the same name.

    Attributes:
        stream: ``"stdout"`` or ``"stderr"``.
        text: the text.
    """

    stream: str
    text: str


# -- JM -> TM ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DeployJob:
    """Build, initialise and open this TM's subtasks of a job.

    Attributes:
        job_id: hex job id.
        job_graph: cloudpickled ``JobGraph``.
        job_parameters: global job parameters.
        sys_path: the client's ``sys.path`` (so user modules import alike).
        subtasks: ``(vertex id, subtask index)`` pairs to run here.
        channels: every channel touching a subtask of this TM.
        peers: data address of every TM of the job.
        modules: user modules the TM cannot import from ``sys_path`` (loaded from a file
            in the client, e.g. with ``spec_from_file_location``): name -> file path.
        attempt: the job attempt (0, +1 per restart).
        restored: operator uid -> ``RestoredState`` for the operators of this TM's
            subtasks (every old subtask's state of each uid), or None for a fresh start.
        checkpoint_storage: base URL of the job's checkpoint storage (the JM's, so both
            resolve the same directories), or None without checkpointing.
    """

    job_id: str
    job_graph: bytes
    job_parameters: dict[str, str]
    sys_path: list[str]
    subtasks: list[tuple[str, int]]
    channels: list[ChannelSpec]
    peers: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    attempt: int = 0
    restored: dict[str, Any] | None = None
    checkpoint_storage: str | None = None


@dataclass(frozen=True)
class StartJob:
    """Every TM deployed: connect channels and start the sources."""

    job_id: str
    attempt: int = 0


@dataclass(frozen=True)
class CancelJob:
    """Stop and close the job's tasks (whatever attempt runs), then answer
    :class:`JobReleased` carrying ``attempt``."""

    job_id: str
    attempt: int = 0


@dataclass(frozen=True)
class ReleaseJob:
    """The job finished: drop its connections and state, then answer
    :class:`JobReleased` carrying ``attempt``."""

    job_id: str
    attempt: int = 0


@dataclass(frozen=True)
class AddSplits:
    """Splits the enumerator assigned to a reader."""

    job_id: str
    vertex_id: str
    subtask: int
    splits: list[Any]
    attempt: int = 0


@dataclass(frozen=True)
class NoMoreSplits:
    """The enumerator has no more splits for a reader."""

    job_id: str
    vertex_id: str
    subtask: int
    attempt: int = 0


@dataclass(frozen=True)
class SourceEventToReader:
    """A custom event from an enumerator to a reader."""

    job_id: str
    vertex_id: str
    subtask: int
    event: Any
    attempt: int = 0


@dataclass(frozen=True)
class TriggerCheckpoint:
    """Checkpoint (or savepoint) ``checkpoint_id`` started; sent to every TM of the job.

    Attributes:
        checkpoint_id: its id.
        timestamp_ms: its trigger time (epoch ms), for the barrier.
        is_savepoint: True for savepoints.
        directory: where the TM writes its tasks' snapshots for this checkpoint.
        subtasks: ``(vertex id, subtask)`` of this TM to trigger directly (sources and
            tasks past their end of input); the others get the barrier in-band.
    """

    job_id: str
    checkpoint_id: int
    timestamp_ms: int
    is_savepoint: bool
    directory: str
    subtasks: list[tuple[str, int]]
    attempt: int = 0


@dataclass(frozen=True)
class Fence:
    """Answer :class:`FenceReached` once every earlier message was handled (the JM uses
    it to know that a completion notice, and so the sinks' commit, was processed
    everywhere before it cancels the tasks of a stop-with-savepoint)."""

    job_id: str
    token: int


@dataclass(frozen=True)
class NotifyCheckpointComplete:
    """Checkpoint ``checkpoint_id`` completed (sinks commit); ``final``: the final
    checkpoint, after which tasks waiting at their end of input finish."""

    job_id: str
    checkpoint_id: int
    final: bool
    attempt: int = 0


@dataclass(frozen=True)
class NotifyCheckpointAborted:
    """Checkpoint ``checkpoint_id`` was aborted."""

    job_id: str
    checkpoint_id: int
    attempt: int = 0


@dataclass(frozen=True)
class Shutdown:
    """Exit the TaskManager process."""
