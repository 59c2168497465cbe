"""Progress display and end-of-job summaries for ``strom run``.

:class:`ProgressReporter` registers itself in ``strom._executors.local.JOB_LISTENERS``.
Each job started while it is installed gets a :class:`JobMonitor`: a daemon thread that
samples the job's metrics every :data:`POLL_INTERVAL_S` seconds. When live output is
enabled, the reporter shows one rich ``Live`` table per running job (records in, records
out and rate per operator, subtasks aggregated by ``uid``). Whether live output is on or
off, each job ends with a one-line summary (see :class:`JobSummary`).

Everything is written to the reporter's console, which the CLI points at stderr:
stdout belongs to the job. The one exception is deliberate: when stdout *and* the
console are both terminals, the live display routes the job's stdout lines through the
console so they scroll above the table instead of being overwritten by it. Then the
lines still reach the same screen, and a redirected stdout is never touched.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from strom._executors.local import JOB_LISTENERS, LocalJobClient
from strom.datastream.execution import JobClient, JobStatus

__all__ = [
    "POLL_INTERVAL_S",
    "JobMonitor",
    "JobSummary",
    "OperatorProgress",
    "ProgressReporter",
    "aggregate_metrics",
]

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
"""Seconds between two metric samples (and table refreshes) of a running job."""

_DONE_CHECK_S = 0.05  # how often a monitor checks is_done(): bounds summary latency, costs ~nothing

_JOIN_TIMEOUT_S = 5.0  # a monitor needs one metrics read to finish; more means it is stuck

_CHAIN_SEPARATOR = " -> "  # how JobGraph joins operator names into a chained vertex name


@dataclass
class OperatorProgress:
    """Counters of one operator, summed over its subtasks.

    Attributes:
        uid: the operator's stable uid (the aggregation key).
        name: its display name.
        vertex: the name of the chained vertex it runs in.
        subtasks: how many subtasks reported.
        records_in: records received, all subtasks.
        records_out: records emitted, all subtasks.
        is_source: True for a source operator (head of a vertex named ``"Source: ..."``).
        is_sink: True for a sink operator (its segment of the vertex name is
            ``"Sink: <name>"``).
        rate: records per second over the last sampling interval: records out for
            sources, records in for every other operator; None before two samples exist.
    """

    uid: str
    name: str
    vertex: str
    subtasks: int = 0
    records_in: int = 0
    records_out: int = 0
    is_source: bool = False
    is_sink: bool = False
    rate: float | None = None

    @property
    def processed(self) -> int:
        """Records this operator handled: emitted for a source, received otherwise."""
        return self.records_out if self.is_source else self.records_in


def _has_segment(vertex: str, segment: str) -> bool:
    """True if ``segment`` is one whole ``" -> "``-separated part of ``vertex``."""
    sep = _CHAIN_SEPARATOR
    return (
        vertex == segment
        or vertex.startswith(segment + sep)
        or vertex.endswith(sep + segment)
        or f"{sep}{segment}{sep}" in vertex
    )


def aggregate_metrics(rows: Sequence[dict[str, Any]]) -> list[OperatorProgress]:
    """Sum per-subtask metric rows by operator uid.

    Args:
        rows: ``JobClient.get_metrics()`` output, one dict per operator and subtask
            (keys ``vertex``, ``operator``, ``uid``, ``subtask``, ``records_in``,
            ``records_out``).

    Returns:
        One entry per uid, in order of first appearance (the job's topological order);
        ``rate`` is left None.
    """
    by_uid: dict[str, OperatorProgress] = {}
    for row in rows:
        uid = str(row["uid"])
        op = by_uid.get(uid)
        if op is None:
            vertex = str(row["vertex"])
            name = str(row["operator"])
            op = OperatorProgress(
                uid=uid,
                name=name,
                vertex=vertex,
                is_source=vertex == f"Source: {name}"
                or vertex.startswith(f"Source: {name}{_CHAIN_SEPARATOR}"),
                is_sink=_has_segment(vertex, f"Sink: {name}"),
            )
            by_uid[uid] = op
        op.subtasks += 1
        op.records_in += int(row["records_in"])
        op.records_out += int(row["records_out"])
    return list(by_uid.values())


@dataclass(frozen=True)
class JobSummary:
    """What the one-line end-of-job summary reports.

    Attributes:
        job_name: the name given to ``execute()``.
        job_id: the hex job id.
        status: the final status name (``FINISHED``, ``FAILED``, ``CANCELED``...).
        duration_s: run time in seconds.
        records_read: records emitted by all source operators.
        records_written: records received by all sink operators.
    """

    job_name: str
    job_id: str
    status: str
    duration_s: float
    records_read: int
    records_written: int

    def format(self) -> str:
        """Render the summary as one line of plain text."""
        return (
            f"Job '{self.job_name}' ({self.job_id}) {self.status} in "
            f"{self.duration_s:.2f} s: {self.records_read:,} records read by sources, "
            f"{self.records_written:,} written by sinks"
        )


@dataclass
class _Sample:
    """One metric sample of a job, with rates relative to the previous one."""

    operators: list[OperatorProgress]
    status: JobStatus
    elapsed_s: float
    taken_at: float = field(default_factory=time.monotonic)


class JobMonitor:
    """Samples one job's metrics on a daemon thread until the job is done.

    Args:
        client: the job to watch.
        reporter: where samples and the final summary go.
        interval_s: seconds between two samples.
    """

    def __init__(
        self, client: JobClient, reporter: ProgressReporter, interval_s: float = POLL_INTERVAL_S
    ) -> None:
        self.client = client
        self.reporter = reporter
        self.interval_s = interval_s
        self.job_id = client.get_job_id()
        self.job_name = (
            client.executor.job_graph.job_name if isinstance(client, LocalJobClient) else "job"
        )
        self._started_at = time.monotonic()
        self._stop = threading.Event()
        self._last: _Sample | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"strom-progress-{self.job_id[:8]}", daemon=True
        )

    def start(self) -> None:
        """Start the polling thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to take a last sample, report the summary and exit."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to exit."""
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            next_sample = 0.0
            while not self._stop.is_set() and not self.job_done():
                now = time.monotonic()
                if now >= next_sample:
                    self.reporter.update(self, self.sample())
                    next_sample = now + self.interval_s
                self._stop.wait(_DONE_CHECK_S)
            last = self.sample()
            self.reporter.finish(self, last, self.summary(last))
        except Exception:  # a display bug must never take the job down
            logger.exception("progress monitor of job %s failed", self.job_id)
            self.reporter.finish(self, None, None)

    def job_done(self) -> bool:
        """True once the watched job reached a terminal state."""
        client = self.client
        if isinstance(client, LocalJobClient):
            return client.is_done()
        return client.get_job_status().is_globally_terminal

    def _elapsed_s(self) -> float:
        client = self.client
        if isinstance(client, LocalJobClient):
            ex = client.executor
            if ex.start_time:
                return (ex.end_time or time.monotonic()) - ex.start_time
            return 0.0
        return time.monotonic() - self._started_at

    def sample(self) -> _Sample:
        """Take one metric sample and compute per-operator rates against the previous.

        Returns:
            The new sample (also remembered as the previous one for the next call).
        """
        ops = aggregate_metrics(self.client.get_metrics())
        new = _Sample(ops, self.client.get_job_status(), self._elapsed_s())
        prev = self._last
        if prev is not None:
            dt = new.taken_at - prev.taken_at
            before = {op.uid: op.processed for op in prev.operators}
            if dt > 0:
                for op in ops:
                    op.rate = max(0.0, (op.processed - before.get(op.uid, 0)) / dt)
        self._last = new
        return new

    def summary(self, sample: _Sample) -> JobSummary:
        """Build the end-of-job summary from a (final) sample."""
        status = sample.status.value
        client = self.client
        # Ctrl-C stops a foreground job with status FAILED; report what the user did.
        if isinstance(client, LocalJobClient) and isinstance(client._error, KeyboardInterrupt):
            status = JobStatus.CANCELED.value
        return JobSummary(
            job_name=self.job_name,
            job_id=self.job_id,
            status=status,
            duration_s=sample.elapsed_s,
            records_read=sum(op.records_out for op in sample.operators if op.is_source),
            records_written=sum(op.records_in for op in sample.operators if op.is_sink),
        )


def _render_job(monitor: JobMonitor, sample: _Sample) -> Table:
    table = Table(
        title=Text(
            f"Job '{monitor.job_name}' ({monitor.job_id[:8]}) "
            f"{sample.status.value}  {sample.elapsed_s:.1f} s"
        ),
        title_justify="left",
    )
    table.add_column("Operator")
    table.add_column("Subtasks", justify="right")
    table.add_column("Records in", justify="right")
    table.add_column("Records out", justify="right")
    table.add_column("Rate (rec/s)", justify="right")
    for op in sample.operators:
        table.add_row(
            Text(op.name),
            str(op.subtasks),
            f"{op.records_in:,}",
            f"{op.records_out:,}",
            "-" if op.rate is None else f"{op.rate:,.0f}",
        )
    return table


class ProgressReporter:
    """Watches every job started in this process; owns the live display.

    Use :meth:`installed` around the code that starts jobs. At most one rich ``Live``
    is active (rich allows one per console); it shows a table per running job and is
    stopped whenever no job runs, so output between jobs is never disturbed.

    Args:
        console: where the table and the summaries go (stderr in the CLI).
        live: show the live table; summaries are printed either way.
        interval_s: seconds between two metric samples of a job.
    """

    def __init__(self, console: Console, live: bool, interval_s: float = POLL_INTERVAL_S) -> None:
        self.console = console
        self.live = live
        self.interval_s = interval_s
        self._lock = threading.RLock()
        self._monitors: list[JobMonitor] = []
        self._running: dict[str, tuple[JobMonitor, _Sample]] = {}
        self._live: Live | None = None

    @contextmanager
    def installed(self) -> Iterator[ProgressReporter]:
        """Register in ``JOB_LISTENERS`` for the duration of the block.

        On exit (normal or not) the listener is removed and :meth:`close` runs, so every
        job's summary is printed before the caller reports an error.
        """
        JOB_LISTENERS.append(self.on_job_started)
        try:
            yield self
        finally:
            JOB_LISTENERS.remove(self.on_job_started)
            self.close()

    def on_job_started(self, client: JobClient) -> None:
        """``JOB_LISTENERS`` callback: start a monitor thread for ``client``'s job.

        Called on the thread that starts the job, after it is built and before it runs.
        Summaries of jobs that already ended are flushed first, so a script that runs
        jobs one after another gets its summaries in the same order.
        """
        self._reap(finished_only=True)
        monitor = JobMonitor(client, self, self.interval_s)
        with self._lock:
            self._monitors.append(monitor)
        monitor.start()

    def update(self, monitor: JobMonitor, sample: _Sample) -> None:
        """Show a new sample of a running job (called by its monitor thread)."""
        with self._lock:
            self._running[monitor.job_id] = (monitor, sample)
            if not self.live:
                return
            if self._live is None:
                self._live = Live(
                    self._renderable(),
                    console=self.console,
                    auto_refresh=False,
                    redirect_stdout=_is_terminal(sys.stdout),
                    redirect_stderr=True,
                )
                self._live.start()
            self._live.update(self._renderable(), refresh=True)

    def finish(
        self, monitor: JobMonitor, sample: _Sample | None, summary: JobSummary | None
    ) -> None:
        """Show a job's final table, then print its summary (called by its monitor)."""
        with self._lock:
            if sample is not None and self._live is not None:
                self._running[monitor.job_id] = (monitor, sample)
                self._live.update(self._renderable(), refresh=True)
            self._running.pop(monitor.job_id, None)
            if self._live is not None and not self._running:
                self._live.stop()
                self._live = None
            elif self._live is not None:
                self._live.update(self._renderable(), refresh=True)
            if summary is not None:
                self.console.print(
                    Text(summary.format()), soft_wrap=True, highlight=False, markup=False
                )

    def close(self, timeout_s: float = _JOIN_TIMEOUT_S) -> None:
        """Stop every monitor, wait for their summaries and stop the live display.

        Args:
            timeout_s: longest wait for each monitor thread.
        """
        self._reap(finished_only=False, timeout_s=timeout_s)
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def _reap(self, finished_only: bool, timeout_s: float = _JOIN_TIMEOUT_S) -> None:
        """Stop and join monitors (only those whose job ended if ``finished_only``)."""
        with self._lock:
            reaped = [m for m in self._monitors if not finished_only or m.job_done()]
            self._monitors = [m for m in self._monitors if m not in reaped]
        for m in reaped:  # not under the lock: a monitor takes it to print its summary
            m.stop()
        for m in reaped:
            m.join(timeout_s)

    def _renderable(self) -> RenderableType:
        return Group(*(_render_job(m, s) for m, s in self._running.values()))


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # closed stream
        return False
