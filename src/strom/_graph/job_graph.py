"""JobGraph: the StreamGraph after operator chaining (Flink's ``JobGraph``).

Forward-connected operators of equal parallelism whose chaining strategies allow it are
fused into one :class:`JobVertex` (one task per subtask; records move between chained
operators by direct calls, no queue). A chain is a tree rooted at its head: an operator
may feed several chained successors and several network edges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from strom._graph.partitioner import Partitioner
from strom._graph.stream_graph import StreamEdge, StreamGraph, StreamNode
from strom._graph.transformation import ChainingStrategy

__all__ = ["JobEdge", "JobGraph", "JobVertex"]


@dataclass(eq=False)
class JobEdge:
    """A network edge between two job vertices.

    Attributes:
        source_vertex: upstream vertex id.
        target_vertex: downstream vertex id.
        source_node: the stream node inside the upstream chain that emits.
        target_node: the head node of the downstream chain.
        partitioner: the routing.
        tag_id: side output name or None.
        type_number: input index at the target.
    """

    source_vertex: str
    target_vertex: str
    source_node: int
    target_node: int
    partitioner: Partitioner
    tag_id: str | None
    type_number: int = 0


@dataclass(eq=False)
class JobVertex:
    """A chain of operators executed as one task per parallel subtask.

    Attributes:
        id: hex vertex id (the head operator's id).
        name: chained operator names joined by `` -> `` (as Flink shows them).
        parallelism: number of subtasks.
        max_parallelism: number of key groups.
        nodes: the chained stream nodes, head first, topologically ordered.
        chained_edges: edges inside the chain.
        inputs: network edges into the head.
        outputs: network edges out of any chained node.
    """

    id: str
    name: str
    parallelism: int
    max_parallelism: int
    nodes: list[StreamNode]
    chained_edges: list[StreamEdge] = field(default_factory=list)
    inputs: list[JobEdge] = field(default_factory=list)
    outputs: list[JobEdge] = field(default_factory=list)

    @property
    def head(self) -> StreamNode:
        """The chain's first operator."""
        return self.nodes[0]

    @property
    def is_source(self) -> bool:
        """True if the head is a source."""
        return self.head.kind == "source"


@dataclass
class JobGraph:
    """The chained, parallel plan handed to an executor.

    Attributes:
        job_name: the job's name.
        vertices: vertices in topological order.
        runtime_mode: ``"STREAMING"`` or ``"BATCH"``.
        config: configuration values.
        checkpoint_config: ``CheckpointConfig.to_dict()`` (interval -1 = disabled).
        restart_strategy: a ``RestartStrategyConfiguration`` or None (no restart).
        savepoint_restore: (path, allow_non_restored_state) to start from, or None.
    """

    job_name: str
    vertices: list[JobVertex]
    runtime_mode: str
    config: dict[str, Any]
    checkpoint_config: dict[str, Any] | None = None
    restart_strategy: Any = None
    savepoint_restore: tuple[str, bool] | None = None

    @classmethod
    def from_stream_graph(cls, sg: StreamGraph) -> JobGraph:
        """Chain a StreamGraph into a JobGraph (Flink's ``StreamingJobGraphGenerator``)."""
        chaining_enabled = bool(sg.config.get("pipeline.operator-chaining", True))

        def chainable(edge: StreamEdge) -> bool:
            up, down = sg.nodes[edge.source_id], sg.nodes[edge.target_id]
            return (
                chaining_enabled
                and len(down.in_edges) == 1
                and edge.partitioner.is_forward
                and up.parallelism == down.parallelism
                and up.chaining is not ChainingStrategy.NEVER
                and down.chaining is ChainingStrategy.ALWAYS
                and down.kind != "source"
            )

        node_vertex: dict[int, JobVertex] = {}
        vertices: list[JobVertex] = []
        for node in sg.nodes.values():  # topological order
            if node.id in node_vertex:
                continue
            chain: list[StreamNode] = []
            chained: list[StreamEdge] = []
            stack = [node]
            while stack:
                n = stack.pop(0)
                chain.append(n)
                for e in n.out_edges:
                    if chainable(e):
                        chained.append(e)
                        stack.append(sg.nodes[e.target_id])
            chain.sort(key=lambda n: n.id)
            vertex = JobVertex(
                id=node.operator_id,
                name=" -> ".join(_display(n) for n in chain),
                parallelism=node.parallelism,
                max_parallelism=node.max_parallelism,
                nodes=chain,
                chained_edges=chained,
            )
            for n in chain:
                node_vertex[n.id] = vertex
            vertices.append(vertex)
        for vertex in vertices:
            chained_ids = {id(e) for e in vertex.chained_edges}
            for n in vertex.nodes:
                for e in n.out_edges:
                    if id(e) in chained_ids:
                        continue
                    target = node_vertex[e.target_id]
                    je = JobEdge(
                        source_vertex=vertex.id,
                        target_vertex=target.id,
                        source_node=n.id,
                        target_node=e.target_id,
                        partitioner=e.partitioner,
                        tag_id=e.tag_id,
                        type_number=e.type_number,
                    )
                    vertex.outputs.append(je)
                    target.inputs.append(je)
        return cls(sg.job_name, vertices, sg.runtime_mode, sg.config)

    def vertex(self, vertex_id: str) -> JobVertex:
        """Return the vertex with that id."""
        for v in self.vertices:
            if v.id == vertex_id:
                return v
        raise KeyError(vertex_id)

    def to_plan(self, job_id: str | None = None) -> dict[str, Any]:
        """The plan as Flink's ``JsonPlanGenerator`` writes it (REST ``/jobs/{id}/plan``).

        Each node is one task (a chain); ``operators`` lists the chained operators.
        """
        nodes = []
        for v in self.vertices:
            inputs = [
                {
                    "num": i,
                    "id": e.source_vertex,
                    "ship_strategy": e.partitioner.ship_strategy,
                    "exchange": "pipelined_bounded",
                    **({"side_output": e.tag_id} if e.tag_id else {}),
                }
                for i, e in enumerate(v.inputs)
            ]
            nodes.append(
                {
                    "id": v.id,
                    "parallelism": v.parallelism,
                    "operator": "",
                    "operator_strategy": "",
                    "description": v.name,
                    "optimizer_properties": {},
                    "operators": [
                        {
                            "id": n.operator_id,
                            "uid": n.uid,
                            "name": n.name,
                            "type": n.kind,
                            "parallelism": n.parallelism,
                        }
                        for n in v.nodes
                    ],
                    **({"inputs": inputs} if inputs else {}),
                }
            )
        return {
            "jid": job_id or "",
            "name": self.job_name,
            "type": self.runtime_mode,
            "nodes": nodes,
        }

    def to_plan_json(self, job_id: str | None = None) -> str:
        """:meth:`to_plan` as an indented JSON string."""
        return json.dumps(self.to_plan(job_id), indent=2)


def _display(node: StreamNode) -> str:
    if node.kind == "source":
        return f"Source: {node.name}"
    if node.kind == "sink":
        return f"Sink: {node.name}"
    return node.name
