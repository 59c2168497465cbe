"""User function interfaces (Flink's ``pyflink.datastream.functions``).

Every API method that takes a function accepts either one of these classes or a plain
callable. Rich functions get ``open(runtime_context)`` before the first record and
``close()`` after the last. Functions must not keep per-key data in attributes: a
function instance is shared by all keys of its subtask; use keyed state instead.

As in PyFlink, ``flat_map`` and the process functions' ``process_element(value, ctx)``
*yield* their outputs (or return an iterable, or None for no output).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from strom.datastream.accumulators import Accumulator
    from strom.datastream.output_tag import OutputTag
    from strom.datastream.state import (
        AggregatingState,
        AggregatingStateDescriptor,
        ListState,
        ListStateDescriptor,
        MapState,
        MapStateDescriptor,
        ReducingState,
        ReducingStateDescriptor,
        ValueState,
        ValueStateDescriptor,
    )

__all__ = [
    "AggregateFunction",
    "BroadcastProcessFunction",
    "CheckpointedFunction",
    "CoFlatMapFunction",
    "CoGroupFunction",
    "CoMapFunction",
    "CoProcessFunction",
    "FilterFunction",
    "FlatMapFunction",
    "Function",
    "FunctionInitializationContext",
    "FunctionSnapshotContext",
    "JoinFunction",
    "KeySelector",
    "KeyedBroadcastProcessFunction",
    "KeyedCoProcessFunction",
    "KeyedProcessFunction",
    "MapFunction",
    "ProcessFunction",
    "ProcessJoinFunction",
    "ReduceFunction",
    "RuntimeContext",
    "TimerService",
]

IN = TypeVar("IN")
"""Input record type."""
OUT = TypeVar("OUT")
"""Output record type."""
KEY = TypeVar("KEY")
"""Key type of a keyed stream."""
ACC = TypeVar("ACC")
"""Accumulator type of an AggregateFunction."""


class RuntimeContext(abc.ABC):
    """What a rich function knows about where it runs (Flink's ``RuntimeContext``).

    Passed to ``Function.open``; valid for the function's lifetime.
    """

    @abc.abstractmethod
    def get_task_name(self) -> str:
        """The operator's display name."""

    @abc.abstractmethod
    def get_number_of_parallel_subtasks(self) -> int:
        """Parallelism of this operator."""

    @abc.abstractmethod
    def get_max_number_of_parallel_subtasks(self) -> int:
        """Max parallelism (number of key groups)."""

    @abc.abstractmethod
    def get_index_of_this_subtask(self) -> int:
        """0-based index of this parallel subtask."""

    @abc.abstractmethod
    def get_attempt_number(self) -> int:
        """0 on the first run, +1 per restart."""

    def get_task_name_with_subtasks(self) -> str:
        """``"name (index+1/parallelism)"`` as in Flink's logs."""
        return (
            f"{self.get_task_name()} ({self.get_index_of_this_subtask() + 1}/"
            f"{self.get_number_of_parallel_subtasks()})"
        )

    @abc.abstractmethod
    def get_job_parameter(self, key: str, default_value: str | None = None) -> str | None:
        """A global job parameter set with ``env.set_job_parameter`` (or the default)."""

    @abc.abstractmethod
    def add_accumulator(self, name: str, accumulator: Accumulator[Any]) -> None:
        """Register an accumulator; its merged value lands in the ``JobExecutionResult``.

        Raises:
            InvalidProgramError: an accumulator with that name is already registered.
        """

    @abc.abstractmethod
    def get_accumulator(self, name: str) -> Accumulator[Any]:
        """Return a registered accumulator.

        Raises:
            KeyError: no accumulator of that name.
        """

    @abc.abstractmethod
    def get_state(self, state_descriptor: ValueStateDescriptor) -> ValueState:
        """Return keyed value state scoped to the current key (keyed streams only).

        Raises:
            InvalidProgramError: the operator is not on a keyed stream.
        """

    @abc.abstractmethod
    def get_list_state(self, state_descriptor: ListStateDescriptor) -> ListState:
        """Keyed list state of the current key (keyed streams only)."""

    @abc.abstractmethod
    def get_map_state(self, state_descriptor: MapStateDescriptor) -> MapState:
        """Keyed map state of the current key (keyed streams only)."""

    @abc.abstractmethod
    def get_reducing_state(self, state_descriptor: ReducingStateDescriptor) -> ReducingState:
        """Keyed reducing state of the current key (keyed streams only)."""

    @abc.abstractmethod
    def get_aggregating_state(
        self, state_descriptor: AggregatingStateDescriptor
    ) -> AggregatingState:
        """Keyed aggregating state of the current key (keyed streams only)."""


class Function(abc.ABC):  # noqa: B024 - a marker base with optional lifecycle hooks
    """Base of all user functions; ``open``/``close`` are optional lifecycle hooks."""

    def open(self, runtime_context: RuntimeContext) -> None:  # noqa: B027
        """Called once per subtask before the first record."""

    def close(self) -> None:  # noqa: B027
        """Called once per subtask after the last record (also after a failure)."""


class FunctionSnapshotContext(abc.ABC):
    """What ``CheckpointedFunction.snapshot_state`` gets (Flink's
    ``FunctionSnapshotContext``)."""

    @abc.abstractmethod
    def get_checkpoint_id(self) -> int:
        """The checkpoint being taken."""

    @abc.abstractmethod
    def get_checkpoint_timestamp(self) -> int:
        """Its trigger time, epoch ms."""


class FunctionInitializationContext(abc.ABC):
    """What ``CheckpointedFunction.initialize_state`` gets (Flink's
    ``FunctionInitializationContext``)."""

    @abc.abstractmethod
    def is_restored(self) -> bool:
        """True when restoring from a checkpoint or savepoint."""

    @abc.abstractmethod
    def get_operator_state_store(self) -> Any:
        """Operator (non-keyed) state: ``get_list_state`` (even-split redistribution),
        ``get_union_list_state``, ``get_broadcast_state``."""

    @abc.abstractmethod
    def get_keyed_state_store(self) -> Any:
        """Keyed state (keyed operators only, else None)."""


class CheckpointedFunction(abc.ABC):  # noqa: B024 - hooks with defaults
    """Mix into a user function to keep operator state (Flink's ``CheckpointedFunction``).

    ``initialize_state`` runs before ``open`` (fresh or restored); ``snapshot_state`` at
    every checkpoint, before the state handles are copied: write what the function holds
    in attributes into its list state there.
    """

    def snapshot_state(self, context: FunctionSnapshotContext) -> None:  # noqa: B027
        """Move in-memory data into the operator state handles."""

    def initialize_state(self, context: FunctionInitializationContext) -> None:  # noqa: B027
        """Create state handles (``context.get_operator_state_store().get_list_state``) and
        read restored data when ``context.is_restored()``."""


class MapFunction(Function, Generic[IN, OUT]):
    """One record in, one record out (Flink's ``MapFunction``)."""

    @abc.abstractmethod
    def map(self, value: IN) -> OUT:
        """Transform one record."""


class FlatMapFunction(Function, Generic[IN, OUT]):
    """One record in, zero or more out (Flink's ``FlatMapFunction``)."""

    @abc.abstractmethod
    def flat_map(self, value: IN) -> Iterable[OUT] | None:
        """Yield (or return an iterable of) the outputs for one record."""


class FilterFunction(Function, Generic[IN]):
    """Keeps the records for which ``filter`` is true (Flink's ``FilterFunction``)."""

    @abc.abstractmethod
    def filter(self, value: IN) -> bool:
        """True to keep the record."""


class KeySelector(Function, Generic[IN, KEY]):
    """Extracts the key of a record (Flink's ``KeySelector``).

    The key must be deterministic and of a stably hashable type: str, bytes, int, float,
    bool, None, or tuples of those.
    """

    @abc.abstractmethod
    def get_key(self, value: IN) -> KEY:
        """Return the record's key."""


class ReduceFunction(Function, Generic[IN]):
    """Combines two values of one key into one (Flink's ``ReduceFunction``)."""

    @abc.abstractmethod
    def reduce(self, value1: IN, value2: IN) -> IN:
        """Combine the accumulated ``value1`` with the new ``value2``."""


class AggregateFunction(Function, Generic[IN, ACC, OUT]):
    """Incremental aggregation with an accumulator (Flink's ``AggregateFunction``)."""

    @abc.abstractmethod
    def create_accumulator(self) -> ACC:
        """A new, empty accumulator."""

    @abc.abstractmethod
    def add(self, value: IN, accumulator: ACC) -> ACC:
        """Add a value; return the (possibly new) accumulator."""

    @abc.abstractmethod
    def get_result(self, accumulator: ACC) -> OUT:
        """The result for an accumulator."""

    @abc.abstractmethod
    def merge(self, acc_a: ACC, acc_b: ACC) -> ACC:
        """Merge two accumulators (merging windows)."""


class TimerService(abc.ABC):
    """Time and timers (Flink's ``TimerService``); times are int epoch milliseconds."""

    @abc.abstractmethod
    def current_processing_time(self) -> int:
        """Wall-clock time in epoch ms."""

    @abc.abstractmethod
    def current_watermark(self) -> int:
        """The operator's current event-time watermark in epoch ms."""

    @abc.abstractmethod
    def register_event_time_timer(self, timestamp_ms: int) -> None:
        """Fire ``on_timer`` for the current key when the watermark passes ``timestamp_ms``."""

    @abc.abstractmethod
    def register_processing_time_timer(self, timestamp_ms: int) -> None:
        """Fire ``on_timer`` for the current key when the wall clock reaches it."""

    @abc.abstractmethod
    def delete_event_time_timer(self, timestamp_ms: int) -> None:
        """Delete a registered event-time timer of the current key."""

    @abc.abstractmethod
    def delete_processing_time_timer(self, timestamp_ms: int) -> None:
        """Delete a registered processing-time timer of the current key."""


class ProcessFunction(Function, Generic[IN, OUT]):
    """The most general one-input function (Flink's ``ProcessFunction``)."""

    class Context(abc.ABC):
        """Per-record context; valid only during the call."""

        @abc.abstractmethod
        def timestamp(self) -> int | None:
            """The current record's event timestamp (int epoch ms) or None."""

        @abc.abstractmethod
        def timer_service(self) -> TimerService:
            """Time queries (timers need a keyed stream)."""

        @abc.abstractmethod
        def output(self, output_tag: OutputTag, value: Any) -> None:
            """Emit ``value`` to the side output ``output_tag``."""

    @abc.abstractmethod
    def process_element(self, value: IN, ctx: ProcessFunction.Context) -> Iterable[OUT] | None:
        """Handle one record: yield (or return an iterable of) outputs."""


class KeyedProcessFunction(Function, Generic[KEY, IN, OUT]):
    """Process function on a keyed stream, with keyed state and timers.

    Mirrors Flink's ``KeyedProcessFunction``. Timers arrive with the event-time issue;
    ``on_timer`` is then called with an ``OnTimerContext``.
    """

    class Context(ProcessFunction.Context):
        """Per-record context with the current key."""

        @abc.abstractmethod
        def get_current_key(self) -> Any:
            """The key of the record being processed."""

    class OnTimerContext(Context):
        """Context of ``on_timer``."""

        @abc.abstractmethod
        def time_domain(self) -> Any:
            """EVENT_TIME or PROCESSING_TIME."""

    @abc.abstractmethod
    def process_element(self, value: IN, ctx: KeyedProcessFunction.Context) -> Iterable[OUT] | None:
        """Handle one record of the current key: yield outputs."""

    def on_timer(
        self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext
    ) -> Iterable[OUT] | None:
        """A timer of the current key fired at ``timestamp`` (epoch ms): yield outputs."""
        return None


class CoMapFunction(Function, Generic[IN, OUT]):
    """Maps the two inputs of connected streams (Flink's ``CoMapFunction``)."""

    @abc.abstractmethod
    def map1(self, value: Any) -> Any:
        """Map a record of the first input."""

    @abc.abstractmethod
    def map2(self, value: Any) -> Any:
        """Map a record of the second input."""


class CoFlatMapFunction(Function, Generic[IN, OUT]):
    """Flat-maps the two inputs of connected streams (Flink's ``CoFlatMapFunction``)."""

    @abc.abstractmethod
    def flat_map1(self, value: Any) -> Iterable[Any] | None:
        """Yield outputs for a record of the first input."""

    @abc.abstractmethod
    def flat_map2(self, value: Any) -> Iterable[Any] | None:
        """Yield outputs for a record of the second input."""


class CoProcessFunction(Function, Generic[IN, OUT]):
    """Processes the two inputs of connected streams (Flink's ``CoProcessFunction``).

    Both methods get a ``ProcessFunction.Context``-like context (timestamp, timer service,
    side outputs).
    """

    Context = ProcessFunction.Context

    @abc.abstractmethod
    def process_element1(self, value: Any, ctx: ProcessFunction.Context) -> Iterable[Any] | None:
        """Handle a record of the first input."""

    @abc.abstractmethod
    def process_element2(self, value: Any, ctx: ProcessFunction.Context) -> Iterable[Any] | None:
        """Handle a record of the second input."""


class KeyedCoProcessFunction(Function, Generic[KEY, IN, OUT]):
    """Processes two keyed inputs with shared keyed state and timers (Flink's
    ``KeyedCoProcessFunction``)."""

    Context = KeyedProcessFunction.Context
    OnTimerContext = KeyedProcessFunction.OnTimerContext

    @abc.abstractmethod
    def process_element1(
        self, value: Any, ctx: KeyedProcessFunction.Context
    ) -> Iterable[Any] | None:
        """Handle a record of the first input (current key set)."""

    @abc.abstractmethod
    def process_element2(
        self, value: Any, ctx: KeyedProcessFunction.Context
    ) -> Iterable[Any] | None:
        """Handle a record of the second input (current key set)."""

    def on_timer(
        self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext
    ) -> Iterable[Any] | None:
        """A timer of the current key fired."""
        return None


class BroadcastProcessFunction(Function, Generic[IN, OUT]):
    """Connects a non-keyed stream with a broadcast stream (Flink's
    ``BroadcastProcessFunction``).

    ``process_broadcast_element`` sees read-write broadcast state
    (``ctx.get_broadcast_state(descriptor)``), ``process_element`` read-only state. Every
    subtask must update broadcast state identically (deterministically), since each keeps
    its own copy.
    """

    class ReadOnlyContext(ProcessFunction.Context):
        """Context of ``process_element``."""

        @abc.abstractmethod
        def get_broadcast_state(self, state_descriptor: Any) -> Any:
            """Read-only view of a broadcast state."""

    class Context(ProcessFunction.Context):
        """Context of ``process_broadcast_element``."""

        @abc.abstractmethod
        def get_broadcast_state(self, state_descriptor: Any) -> Any:
            """Read-write broadcast state."""

    @abc.abstractmethod
    def process_element(self, value: Any, ctx: Any) -> Iterable[Any] | None:
        """Handle a record of the non-broadcast input."""

    @abc.abstractmethod
    def process_broadcast_element(self, value: Any, ctx: Any) -> Iterable[Any] | None:
        """Handle a record of the broadcast input."""


class KeyedBroadcastProcessFunction(Function, Generic[KEY, IN, OUT]):
    """Connects a keyed stream with a broadcast stream (Flink's
    ``KeyedBroadcastProcessFunction``): keyed state and timers on the keyed side,
    ``ctx.apply_to_keyed_state(descriptor, fn)`` on the broadcast side."""

    @abc.abstractmethod
    def process_element(self, value: Any, ctx: Any) -> Iterable[Any] | None:
        """Handle a keyed record (current key set; read-only broadcast state)."""

    @abc.abstractmethod
    def process_broadcast_element(self, value: Any, ctx: Any) -> Iterable[Any] | None:
        """Handle a broadcast record (read-write broadcast state)."""

    def on_timer(self, timestamp: int, ctx: Any) -> Iterable[Any] | None:
        """A timer of the current key fired."""
        return None


class JoinFunction(Function, Generic[IN, OUT]):
    """Joins one pair of a window join (Flink's ``JoinFunction``)."""

    @abc.abstractmethod
    def join(self, first: Any, second: Any) -> Any:
        """Return the joined record."""


class CoGroupFunction(Function, Generic[IN, OUT]):
    """Receives both sides' elements of one key and window (Flink's ``CoGroupFunction``)."""

    @abc.abstractmethod
    def co_group(self, first: Iterable[Any], second: Iterable[Any]) -> Iterable[Any] | None:
        """Yield outputs for one key and window."""


class ProcessJoinFunction(Function, Generic[IN, OUT]):
    """Handles one pair of an interval join (Flink's ``ProcessJoinFunction``)."""

    class Context(abc.ABC):
        """Context of one joined pair."""

        @abc.abstractmethod
        def get_left_timestamp(self) -> int:
            """Left element's timestamp, epoch ms."""

        @abc.abstractmethod
        def get_right_timestamp(self) -> int:
            """Right element's timestamp, epoch ms."""

        @abc.abstractmethod
        def get_timestamp(self) -> int:
            """The pair's timestamp: the larger of both."""

        @abc.abstractmethod
        def output(self, output_tag: OutputTag, value: Any) -> None:
            """Emit to a side output."""

    @abc.abstractmethod
    def process_element(
        self, left: Any, right: Any, ctx: ProcessJoinFunction.Context
    ) -> Iterable[Any] | None:
        """Yield outputs for one joined pair."""
