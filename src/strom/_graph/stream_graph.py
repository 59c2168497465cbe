"""StreamGraph: the logical operator graph (Flink's ``StreamGraph``/``StreamGraphGenerator``).

One :class:`StreamNode` per physical transformation (source, operator, sink); partition,
union and side-output transformations are resolved into :class:`StreamEdge` properties.
Translation assigns parallelism, max parallelism, default partitioners and uids, and
validates the program.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from strom._graph.partitioner import (
    ForwardPartitioner,
    Partitioner,
    RebalancePartitioner,
)
from strom._graph.transformation import (
    ChainingStrategy,
    OneInputTransformation,
    OperatorSpec,
    PartitionTransformation,
    SideOutputTransformation,
    SinkTransformation,
    SourceTransformation,
    Transformation,
    UnionTransformation,
)
from strom.errors import DuplicateUidError, InvalidProgramError

__all__ = ["StreamEdge", "StreamGraph", "StreamNode", "operator_id_for_uid", "validate_uid"]

_UID_RE = re.compile(r"^[A-Za-z0-9_.:@+-][A-Za-z0-9_.:@+ -]*$")


def validate_uid(uid: Any) -> str:
    """Check a user-given uid: a non-empty str of letters, digits and ``_.:@+-`` (and spaces).

    Raises:
        InvalidProgramError: the uid is not such a string.
    """
    if not isinstance(uid, str) or not _UID_RE.match(uid) or uid != uid.strip():
        msg = (
            f"invalid uid {uid!r}: a uid must be a non-empty string of letters, digits, "
            "'_', '.', ':', '@', '+', '-' or inner spaces (no '/'), e.g. .uid('parse-orders')"
        )
        raise InvalidProgramError(msg)
    return uid


def operator_id_for_uid(uid: str) -> str:
    """The stable OperatorID (32 hex chars) derived from a uid, as Flink hashes uids."""
    return hashlib.md5(uid.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(eq=False)
class StreamEdge:
    """A logical edge between two stream nodes.

    Attributes:
        source_id: upstream node id.
        target_id: downstream node id.
        partitioner: how records are routed.
        tag_id: side output name if the edge carries a side output, else None.
        type_number: input index at the target (0 for one-input operators).
    """

    source_id: int
    target_id: int
    partitioner: Partitioner
    tag_id: str | None = None
    type_number: int = 0


@dataclass(eq=False)
class StreamNode:
    """A physical operator of the logical graph.

    Attributes:
        id: the transformation id.
        name: display name.
        uid: user-given or derived stable id.
        operator_id: stable hex id derived from the uid.
        kind: ``"source"``, ``"operator"`` or ``"sink"``.
        parallelism: number of parallel subtasks.
        max_parallelism: number of key groups.
        chaining: chaining strategy.
        operator: the operator description (None for sources).
        source: the ``Source`` (sources only).
        watermark_strategy: the source's ``WatermarkStrategy`` (sources only).
        key_selector: key selector if the input is keyed.
        in_edges / out_edges: the node's edges.
    """

    id: int
    name: str
    uid: str
    operator_id: str
    kind: str
    parallelism: int
    max_parallelism: int
    chaining: ChainingStrategy
    operator: OperatorSpec | None = None
    source: Any = None
    watermark_strategy: Any = None
    key_selector: Any = None
    uid_is_user_given: bool = False
    in_edges: list[StreamEdge] = field(default_factory=list)
    out_edges: list[StreamEdge] = field(default_factory=list)


@dataclass
class StreamGraph:
    """The logical graph of a job (Flink's ``StreamGraph``).

    Attributes:
        job_name: the job's name.
        nodes: nodes by id, in topological order.
        runtime_mode: ``"STREAMING"`` or ``"BATCH"`` (AUTOMATIC is resolved here).
        config: the job's configuration values.
    """

    job_name: str
    nodes: dict[int, StreamNode]
    runtime_mode: str
    config: dict[str, Any]

    @classmethod
    def generate(
        cls,
        transformations: list[Transformation],
        job_name: str,
        config: dict[str, Any],
    ) -> StreamGraph:
        """Translate transformations to a StreamGraph.

        Args:
            transformations: every transformation registered with the environment.
            job_name: the job's name.
            config: configuration values (``parallelism.default``, ...).

        Raises:
            InvalidProgramError: no sink, duplicate uids, bad parallelism, batch mode over
                an unbounded source, or a forward edge between different parallelisms.
        """
        sinks = [t for t in transformations if isinstance(t, SinkTransformation)]
        if not sinks:
            msg = (
                "No operators defined in streaming topology: the job has no sink. Add one "
                "with .print(), .sink_to(sink) or use .execute_and_collect()."
            )
            raise InvalidProgramError(msg)
        ordered = _topological(sinks)
        default_p = int(config["parallelism.default"])
        default_maxp = int(config["pipeline.max-parallelism"])
        mode = str(config["execution.runtime-mode"]).upper()
        sources = [t for t in ordered if isinstance(t, SourceTransformation)]
        if mode not in ("STREAMING", "BATCH", "AUTOMATIC"):
            msg = f"unknown runtime mode {mode!r}; use STREAMING, BATCH or AUTOMATIC"
            raise InvalidProgramError(msg)
        if mode in ("BATCH", "AUTOMATIC"):
            from strom.connectors.source import Boundedness

            unbounded = [
                t.name for t in sources if t.source.get_boundedness() is not Boundedness.BOUNDED
            ]
            if mode == "AUTOMATIC":
                mode = "STREAMING" if unbounded else "BATCH"
            elif unbounded:
                msg = (
                    f"BATCH execution needs bounded sources, but {unbounded} are unbounded; "
                    "use RuntimeExecutionMode.STREAMING or make the sources bounded"
                )
                raise InvalidProgramError(msg)

        nodes: dict[int, StreamNode] = {}
        seen_uids: dict[str, str] = {}
        counter = 0
        for t in ordered:
            if t.is_virtual:
                continue
            counter += 1
            if t.uid is not None:
                uid = validate_uid(t.uid)
                if uid in seen_uids:
                    msg = (
                        f"duplicate uid {uid!r}: used by '{seen_uids[uid]}' and '{t.name}'. "
                        "Every operator needs a unique uid; rename one of them."
                    )
                    raise DuplicateUidError(msg)
            else:
                uid = f"{_slug(t.name)}_{counter}"
            seen_uids[uid] = t.name
            parallelism = t.parallelism if t.parallelism is not None else default_p
            if isinstance(t, SourceTransformation):
                src_max = t.source.get_max_parallelism()
                if src_max is not None and parallelism > src_max:
                    if t.parallelism is not None:
                        msg = (
                            f"source '{t.name}' supports at most parallelism {src_max}, "
                            f"but {t.parallelism} was set; lower it"
                        )
                        raise InvalidProgramError(msg)
                    parallelism = src_max
            max_p = t.max_parallelism if t.max_parallelism is not None else default_maxp
            if parallelism < 1 or parallelism > max_p:
                msg = (
                    f"operator '{t.name}' has parallelism {parallelism}, which must be "
                    f"between 1 and its max parallelism {max_p}"
                )
                raise InvalidProgramError(msg)
            kind = (
                "source"
                if isinstance(t, SourceTransformation)
                else "sink"
                if isinstance(t, SinkTransformation)
                else "operator"
            )
            node = StreamNode(
                id=t.id,
                name=t.name,
                uid=uid,
                operator_id=operator_id_for_uid(uid),
                kind=kind,
                parallelism=parallelism,
                max_parallelism=max_p,
                chaining=t.chaining,
                uid_is_user_given=t.uid is not None,
            )
            if isinstance(t, SourceTransformation):
                node.source = t.source
                node.watermark_strategy = t.watermark_strategy
            elif isinstance(t, OneInputTransformation):
                node.operator = t.operator
                node.key_selector = t.key_selector
            nodes[t.id] = node

        for t in ordered:
            if t.is_virtual or t.id not in nodes:
                continue
            target = nodes[t.id]
            for inp in t.inputs:
                for src_id, partitioner, tag_id in _resolve(inp):
                    src = nodes[src_id]
                    if partitioner is None:
                        partitioner = (
                            ForwardPartitioner()
                            if src.parallelism == target.parallelism
                            else RebalancePartitioner()
                        )
                    elif partitioner.is_forward and src.parallelism != target.parallelism:
                        msg = (
                            f"forward edge from '{src.name}' (parallelism {src.parallelism}) "
                            f"to '{target.name}' (parallelism {target.parallelism}): forward "
                            "needs equal parallelism; use rebalance() or equal parallelism"
                        )
                        raise InvalidProgramError(msg)
                    edge = StreamEdge(src_id, t.id, partitioner, tag_id, 0)
                    src.out_edges.append(edge)
                    target.in_edges.append(edge)
        return cls(job_name=job_name, nodes=nodes, runtime_mode=mode, config=dict(config))


def _resolve(t: Transformation) -> list[tuple[int, Partitioner | None, str | None]]:
    """Physical upstream nodes of ``t`` with the partitioner/side output on the way."""
    if isinstance(t, PartitionTransformation):
        return [(n, t.partitioner, tag) for n, _p, tag in _resolve(t.inputs[0])]
    if isinstance(t, UnionTransformation):
        return [r for i in t.inputs for r in _resolve(i)]
    if isinstance(t, SideOutputTransformation):
        return [(n, p, t.tag_id) for n, p, _tag in _resolve(t.inputs[0])]
    return [(t.id, None, None)]


def _topological(sinks: Sequence[Transformation]) -> list[Transformation]:
    """All transformations reachable from the sinks, inputs before consumers, by id."""
    seen: dict[int, Transformation] = {}
    stack = list(sinks)
    while stack:
        t = stack.pop()
        if t.id in seen:
            continue
        seen[t.id] = t
        stack.extend(t.inputs)
    # ids grow in creation order and an input is always created before its consumer
    return [seen[i] for i in sorted(seen)]


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return s or "operator"
