"""Transformations: one node per DataStream API call (Flink's ``Transformation``).

Physical transformations (source, one-input operator, sink) become StreamGraph nodes;
virtual ones (partition, union, side output) only shape the edges between them. An
operator is described declaratively by an :class:`OperatorSpec` (kind + parameters) that
the runtime turns into a ``StreamOperator``, so the public API never imports the runtime.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Any

from strom._graph.partitioner import Partitioner

__all__ = [
    "ChainingStrategy",
    "OneInputTransformation",
    "OperatorSpec",
    "PartitionTransformation",
    "SideOutputTransformation",
    "SinkTransformation",
    "SourceTransformation",
    "Transformation",
    "UnionTransformation",
]

_ids = itertools.count(1)


class ChainingStrategy(enum.Enum):
    """How an operator may be chained (Flink's ``ChainingStrategy``)."""

    ALWAYS = "always"
    """Chain to the predecessor and successors when the edge allows it."""
    HEAD = "head"
    """Start a new chain (``start_new_chain``); successors may chain to it."""
    NEVER = "never"
    """Never chain (``disable_chaining``)."""


@dataclass
class OperatorSpec:
    """Declarative description of a runtime operator.

    Attributes:
        kind: registry key of the operator class in ``strom._runtime.operators``
            (``"map"``, ``"filter"``, ``"keyed_reduce"``, ...).
        function: the user function (object or callable), if any.
        params: further operator parameters.
    """

    kind: str
    function: Any = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Transformation:
    """A node of the logical plan built by the DataStream API.

    Attributes:
        name: display name.
        inputs: upstream transformations.
        parallelism: explicit parallelism, or None for the environment default.
        max_parallelism: explicit max parallelism (number of key groups), or None.
        uid: user-given stable id, or None (an id is derived at translation).
        chaining: chaining strategy.
        id: unique, increasing id in creation order.
    """

    name: str
    inputs: list[Transformation] = field(default_factory=list)
    parallelism: int | None = None
    max_parallelism: int | None = None
    uid: str | None = None
    chaining: ChainingStrategy = ChainingStrategy.ALWAYS
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def is_virtual(self) -> bool:
        """True for partition/union/side-output nodes that are not operators."""
        return False


@dataclass(eq=False)
class SourceTransformation(Transformation):
    """A source (``from_source``/``from_collection``).

    Attributes:
        source: the ``Source``.
        watermark_strategy: its ``WatermarkStrategy`` (or None for no watermarks).
    """

    source: Any = None
    watermark_strategy: Any = None


@dataclass(eq=False)
class OneInputTransformation(Transformation):
    """An operator with one logical input.

    Attributes:
        operator: the operator description.
        key_selector: the key selector if the input is keyed, else None.
    """

    operator: OperatorSpec = field(default_factory=lambda: OperatorSpec("map"))
    key_selector: Any = None


@dataclass(eq=False)
class SinkTransformation(OneInputTransformation):
    """A sink (``sink_to``/``print``); terminal."""


@dataclass(eq=False)
class PartitionTransformation(Transformation):
    """Changes how records reach the next operator (``key_by``, ``rebalance``, ...)."""

    partitioner: Partitioner = field(default_factory=Partitioner)

    @property
    def is_virtual(self) -> bool:
        """Always True."""
        return True


@dataclass(eq=False)
class UnionTransformation(Transformation):
    """Merges several streams of the same type (``union``)."""

    @property
    def is_virtual(self) -> bool:
        """Always True."""
        return True


@dataclass(eq=False)
class SideOutputTransformation(Transformation):
    """Selects a side output of its input operator (``get_side_output``).

    Attributes:
        tag_id: the ``OutputTag``'s name.
    """

    tag_id: str = ""

    @property
    def is_virtual(self) -> bool:
        """Always True."""
        return True
