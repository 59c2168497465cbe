"""Maps ``OperatorSpec.kind`` to runtime operator classes."""

from __future__ import annotations

from strom._graph.transformation import OperatorSpec
from strom._runtime.operators.base import StreamOperator
from strom._runtime.operators.basic import (
    ProcessOperator,
    StreamFilter,
    StreamFlatMap,
    StreamMap,
)
from strom._runtime.operators.keyed import KeyedProcessOperator, StreamGroupedReduce
from strom._runtime.operators.sink import SinkWriterOperator
from strom.errors import InvalidProgramError

__all__ = ["OPERATORS", "create_operator"]

OPERATORS: dict[str, type[StreamOperator]] = {
    "map": StreamMap,
    "flat_map": StreamFlatMap,
    "filter": StreamFilter,
    "process": ProcessOperator,
    "keyed_process": KeyedProcessOperator,
    "keyed_reduce": StreamGroupedReduce,
    "sink": SinkWriterOperator,
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
    return cls(spec)
