"""Maps ``OperatorSpec.kind`` to runtime operator classes."""

from __future__ import annotations

import copy
import logging

from strom._graph.transformation import OperatorSpec
from strom._runtime.operators.base import StreamOperator
from strom._runtime.operators.basic import (
    ProcessOperator,
    StreamFilter,
    StreamFlatMap,
    StreamMap,
)
from strom._runtime.operators.co import (
    BroadcastProcessOperator,
    CoFlatMapOperator,
    CoMapOperator,
    CoProcessOperator,
    IntervalJoinOperator,
    KeyedBroadcastProcessOperator,
    KeyedCoProcessOperator,
)
from strom._runtime.operators.keyed import KeyedProcessOperator, StreamGroupedReduce
from strom._runtime.operators.sink import SinkWriterOperator
from strom._runtime.operators.timestamps import TimestampsAndWatermarksOperator
from strom._runtime.operators.window import WindowOperator
from strom.errors import InvalidProgramError

__all__ = ["OPERATORS", "create_operator"]

logger = logging.getLogger(__name__)

OPERATORS: dict[str, type[StreamOperator]] = {
    "map": StreamMap,
    "flat_map": StreamFlatMap,
    "filter": StreamFilter,
    "process": ProcessOperator,
    "keyed_process": KeyedProcessOperator,
    "keyed_reduce": StreamGroupedReduce,
    "sink": SinkWriterOperator,
    "timestamps": TimestampsAndWatermarksOperator,
    "window": WindowOperator,
    "co_map": CoMapOperator,
    "co_flat_map": CoFlatMapOperator,
    "co_process": CoProcessOperator,
    "keyed_co_process": KeyedCoProcessOperator,
    "broadcast_process": BroadcastProcessOperator,
    "keyed_broadcast_process": KeyedBroadcastProcessOperator,
    "interval_join": IntervalJoinOperator,
}


def create_operator(spec: OperatorSpec) -> StreamOperator:
    """Instantiate the operator described by ``spec``.

    Raises:
        InvalidProgramError: unknown operator kind.
    """
    cls = OPERATORS.get(spec.kind)
    if cls is None:
        msg = f"unknown operator kind {spec.kind!r}"
        raise InvalidProgramError(msg)
    if spec.function is not None:
        # every subtask gets its own copy of the user function, as Flink deserialises one
        # per subtask: attributes set in open() must not leak between subtasks
        try:
            fn = copy.deepcopy(spec.function)
        except Exception as e:  # e.g. a function holding a lock or an open file
            logger.warning(
                "user function %r cannot be copied per subtask (%s); sharing one instance",
                spec.function,
                e,
            )
            fn = spec.function
        spec = OperatorSpec(spec.kind, fn, spec.params)
    return cls(spec)
