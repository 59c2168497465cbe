"""ExecutionGraph: the parallel form of a JobGraph, scheduled into slots.

Every job vertex expands into one :class:`ExecutionVertex` per subtask. Scheduling uses
Flink's default **slot sharing**: subtask ``i`` of every vertex goes to the job's slot
``i``, so a slot runs one whole pipeline and forward edges (subtask ``i`` to subtask
``i``) never leave the process. The job needs ``max parallelism`` slots; slots are spread
contiguously over the chosen TaskManagers (slot ``i`` on TaskManager ``i * n // slots``),
which keeps rescale neighbours together too. Every channel of every edge gets a
:class:`~strom._cluster.rpc.messages.ChannelSpec` naming both ends' TaskManagers; a
channel whose ends share a TaskManager is an in-memory handoff, the others go over the
network.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from strom._cluster.deployment import connected_pairs, job_edges
from strom._cluster.rpc.messages import ChannelSpec
from strom._graph.job_graph import JobGraph, JobVertex

__all__ = ["ExecutionGraph", "ExecutionState", "ExecutionVertex"]


class ExecutionState(enum.Enum):
    """One subtask execution's state (Flink's ``ExecutionState``, reduced)."""

    CREATED = "CREATED"
    DEPLOYING = "DEPLOYING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    FAILED = "FAILED"


@dataclass
class ExecutionVertex:
    """One parallel subtask of a job vertex and where it runs.

    Attributes:
        vertex: the job vertex.
        subtask: 0-based subtask index (also its slot under slot sharing).
        tm_id: the TaskManager that runs it.
        state: its execution state.
        attempt: 0, +1 per restart.
    """

    vertex: JobVertex
    subtask: int
    tm_id: str
    state: ExecutionState = ExecutionState.CREATED
    attempt: int = 0


class ExecutionGraph:
    """Subtasks, slot assignment and channel plan of one job.

    Args:
        job_graph: the chained plan.
        tm_ids: TaskManagers to spread the job's slots over (at most ``num_slots`` used).
    """

    def __init__(self, job_graph: JobGraph, tm_ids: list[str]) -> None:
        self.job_graph = job_graph
        self.num_slots = max(v.parallelism for v in job_graph.vertices)
        n = min(len(tm_ids), self.num_slots)
        if n < 1:
            msg = "no TaskManager available to run the job"
            raise RuntimeError(msg)
        self.slot_tm = [tm_ids[i * n // self.num_slots] for i in range(self.num_slots)]
        self.tm_ids = list(dict.fromkeys(self.slot_tm))
        self.vertices: dict[tuple[str, int], ExecutionVertex] = {}
        for v in job_graph.vertices:
            for i in range(v.parallelism):
                self.vertices[(v.id, i)] = ExecutionVertex(v, i, self.slot_tm[i])
        self.channels: list[ChannelSpec] = []
        cid = 1
        for k, e in enumerate(job_edges(job_graph)):
            p = job_graph.vertex(e.source_vertex).parallelism
            q = job_graph.vertex(e.target_vertex).parallelism
            for i, j in connected_pairs(e, p, q):
                self.channels.append(
                    ChannelSpec(k, i, j, cid, self.slot_tm[i], self.slot_tm[j])
                )
                cid += 1

    def subtasks_of(self, tm_id: str) -> list[tuple[str, int]]:
        """``(vertex id, subtask)`` of every execution on ``tm_id``."""
        return [key for key, ev in self.vertices.items() if ev.tm_id == tm_id]

    def channels_of(self, tm_id: str) -> list[ChannelSpec]:
        """Channels with at least one end on ``tm_id``."""
        return [c for c in self.channels if tm_id in (c.producer_tm, c.consumer_tm)]

    def remote_channel_count(self) -> int:
        """Channels that cross processes."""
        return sum(1 for c in self.channels if c.producer_tm != c.consumer_tm)

    def all_finished(self) -> bool:
        """True once every execution finished."""
        return all(ev.state is ExecutionState.FINISHED for ev in self.vertices.values())
