"""The operator contract: one hook per runtime event, with safe defaults.

A :class:`StreamOperator` is created per parallel subtask from an ``OperatorSpec``. The
task calls its hooks in this order (Flink's ``StreamOperator`` lifecycle)::

    setup(context, output)
    initialize_state(state_context)          # fresh start or restore from a snapshot
    open()
    ( process_batch(values, timestamps)       # records; the default loops process_element
    | process_watermark(watermark)           # default: forward downstream
    | process_watermark_status(status)       # default: forward downstream
    | prepare_snapshot_pre_barrier(id)       # before a checkpoint barrier is forwarded
    | snapshot_state(id) -> dict             # operator + keyed state for checkpoint ``id``
    | notify_checkpoint_complete(id)
    | notify_checkpoint_aborted(id) )*
    end_input()                              # all input consumed (bounded inputs)
    finish()                                 # emit final results (after end_input)
    close()                                  # always called, also after failures

Operators of one chain call each other directly through :class:`Output` objects;
``process_batch`` receives lists it must not mutate and emits new lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strom._runtime.time.processing_time import ProcessingTimeService
from strom.datastream.accumulators import Accumulator
from strom.datastream.functions import (
    Function,
    FunctionInitializationContext,
    FunctionSnapshotContext,
    RuntimeContext,
)
from strom.errors import InvalidProgramError, TaskError, UserFunctionError

if TYPE_CHECKING:
    from strom._graph.transformation import OperatorSpec
    from strom._runtime.elements import WatermarkStatus
    from strom._state.backend import KeyedStateBackend
    from strom.datastream.state import ValueState, ValueStateDescriptor
    from strom.datastream.watermark import Watermark

__all__ = [
    "OperatorContext",
    "OperatorMetrics",
    "Output",
    "RestoredState",
    "StreamOperator",
    "StreamingRuntimeContext",
    "UdfStreamOperator",
]


@dataclass
class OperatorMetrics:
    """Per-operator, per-subtask counters (Flink's ``numRecordsIn``/``numRecordsOut``)."""

    records_in: int = 0
    records_out: int = 0


@dataclass
class OperatorContext:
    """Everything an operator instance knows about where it runs.

    Attributes:
        job_id: hex job id.
        uid: the operator's stable uid.
        name: display name.
        operator_id: hex id derived from the uid.
        subtask_index: 0-based subtask index.
        parallelism: the operator's parallelism.
        max_parallelism: number of key groups.
        attempt_number: 0, +1 per restart.
        runtime_mode: ``"STREAMING"`` or ``"BATCH"``.
        config: the job configuration values.
        key_selector: the input's key selector (keyed operators), else None.
        accumulators: the task's accumulators by name (merged by the executor).
        job_parameters: global job parameters.
        metrics: this operator's counters.
        processing_time_service: the task's processing-time timers and clock.
    """

    job_id: str
    uid: str
    name: str
    operator_id: str
    subtask_index: int
    parallelism: int
    max_parallelism: int
    attempt_number: int
    runtime_mode: str
    config: dict[str, Any]
    key_selector: Any = None
    accumulators: dict[str, Accumulator[Any]] = field(default_factory=dict)
    job_parameters: dict[str, str] = field(default_factory=dict)
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    processing_time_service: ProcessingTimeService = field(default_factory=ProcessingTimeService)

    def processing_time_ms(self) -> int:
        """Processing time (wall clock, or the test clock) in epoch ms."""
        return self.processing_time_service.get_current_processing_time()


@dataclass
class RestoredState:
    """An operator's snapshots from a checkpoint/savepoint, handed to ``initialize_state``.

    Every subtask gets the snapshots of *all* old subtasks of its uid, so it can pick what
    belongs to it after a parallelism change: keyed state and timers by key group, splits
    and committables by ``old_index % parallelism``, broadcast state from subtask 0.

    Attributes:
        subtask_states: old subtask index -> that subtask's ``snapshot_state`` dict.
        old_parallelism: the operator's parallelism when the snapshot was taken.
        checkpoint_id: the restored checkpoint's id.
    """

    subtask_states: dict[int, dict[str, Any]]
    old_parallelism: int
    checkpoint_id: int = 0

    def mine(self, subtask_index: int, parallelism: int) -> list[dict[str, Any]]:
        """Old subtask states assigned to ``subtask_index`` round-robin (splits,
        committables, per-subtask writer state)."""
        return [
            st for i, st in sorted(self.subtask_states.items()) if i % parallelism == subtask_index
        ]

    def all(self, field_name: str) -> list[Any]:
        """``field_name`` of every old subtask that has it, in subtask order."""
        return [
            st[field_name] for _i, st in sorted(self.subtask_states.items()) if field_name in st
        ]


class Output:
    """Where an operator emits records and control elements.

    The runtime provides implementations that call the next chained operator directly or
    write into network buffers; side outputs are addressed by tag name.
    """

    def emit_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Emit a batch of records (with optional parallel timestamps) on the main output."""

    def emit_side(self, tag_id: str, values: list[Any], timestamps: list[int] | None) -> None:
        """Emit records to the side output ``tag_id`` (dropped if nobody reads it)."""

    def emit_watermark(self, watermark: Watermark) -> None:
        """Forward a watermark to every output, side outputs included."""

    def emit_watermark_status(self, status: WatermarkStatus) -> None:
        """Forward an idle/active status to every output."""


class StreamOperator:
    """Base class of every runtime operator; all hooks default to no-op or forward.

    Args:
        spec: the operator's declarative description (None for built-in operators).
    """

    context: OperatorContext
    output: Output

    def __init__(self, spec: OperatorSpec | None = None) -> None:
        self.spec = spec

    def setup(self, context: OperatorContext, output: Output) -> None:
        """Bind the operator to its subtask and output; called once, first."""
        self.context = context
        self.output = output

    def initialize_state(self, state: RestoredState | None) -> None:
        """Restore from the snapshots of a checkpoint (see :class:`RestoredState`) or start
        fresh (None). Called before :meth:`open`."""
        self.restored = state

    def open(self) -> None:
        """Prepare for records (open user functions, create state handles)."""

    restored: RestoredState | None = None

    def key_group_filter(self) -> Any:
        """``key -> bool``: whether a key belongs to this subtask's key-group range."""
        from strom._runtime.key_groups import KeyGroupRangeAssignment as A

        c = self.context
        rng = A.compute_key_group_range_for_operator_index(
            c.max_parallelism, c.parallelism, c.subtask_index
        )
        maxp = c.max_parallelism
        return lambda key: A.assign_to_key_group(key, maxp) in rng

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Process a batch; the default calls :meth:`process_element` per record."""
        if timestamps is None:
            for v in values:
                self.process_element(v, None)
        else:
            for v, t in zip(values, timestamps):
                self.process_element(v, t)

    def process_element(self, value: Any, timestamp: int | None) -> None:
        """Process one record; operators override this or :meth:`process_batch`."""
        msg = f"{type(self).__name__} must override process_element or process_batch"
        raise NotImplementedError(msg)

    def process_watermark(self, watermark: Watermark) -> None:
        """Event time advanced to ``watermark``; the default forwards it."""
        self.output.emit_watermark(watermark)

    def process_watermark_status(self, status: WatermarkStatus) -> None:
        """An input became idle or active; the default forwards it."""
        self.output.emit_watermark_status(status)

    def prepare_snapshot_pre_barrier(self, checkpoint_id: int) -> None:
        """Last chance to emit records before the barrier of ``checkpoint_id`` is forwarded."""

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """Return this operator's state (operator + keyed) for checkpoint ``checkpoint_id``."""
        return {}

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Checkpoint ``checkpoint_id`` completed on every task (commit point for 2PC)."""

    def notify_checkpoint_aborted(self, checkpoint_id: int) -> None:
        """Checkpoint ``checkpoint_id`` was aborted."""

    def end_input(self) -> None:
        """Every input of this operator has ended (no more records will arrive)."""

    def finish(self) -> None:
        """Emit final results; called after :meth:`end_input`, before :meth:`close`."""

    def close(self) -> None:
        """Release resources; always called, also after a failure."""

    # -- helpers -------------------------------------------------------------------------
    def user_error(self, exc: BaseException, what: str = "user function") -> TaskError:
        """Wrap ``exc`` raised by user code with this operator's context."""
        if isinstance(exc, TaskError):
            return exc
        c = self.context
        msg = f"{type(exc).__name__}: {exc} (raised by the {what})"
        return UserFunctionError(
            msg,
            job_id=c.job_id,
            operator_uid=c.uid,
            operator_name=c.name,
            subtask_index=c.subtask_index,
        )


class StreamingRuntimeContext(RuntimeContext):
    """The runtime's :class:`RuntimeContext` given to rich functions in ``open``.

    Args:
        operator: the operator hosting the function.
    """

    def __init__(self, operator: StreamOperator) -> None:
        self._op = operator
        self._ctx = operator.context

    def get_task_name(self) -> str:
        """The operator's display name."""
        return self._ctx.name

    def get_number_of_parallel_subtasks(self) -> int:
        """The operator's parallelism."""
        return self._ctx.parallelism

    def get_max_number_of_parallel_subtasks(self) -> int:
        """The number of key groups."""
        return self._ctx.max_parallelism

    def get_index_of_this_subtask(self) -> int:
        """0-based subtask index."""
        return self._ctx.subtask_index

    def get_attempt_number(self) -> int:
        """0, +1 per restart."""
        return self._ctx.attempt_number

    def get_job_parameter(self, key: str, default_value: str | None = None) -> str | None:
        """A global job parameter or the default."""
        return self._ctx.job_parameters.get(key, default_value)

    def add_accumulator(self, name: str, accumulator: Accumulator[Any]) -> None:
        """Register an accumulator under ``name``.

        Raises:
            InvalidProgramError: the name is already taken in this subtask.
        """
        if name in self._ctx.accumulators:
            msg = f"accumulator {name!r} is already registered in operator '{self._ctx.name}'"
            raise InvalidProgramError(msg)
        self._ctx.accumulators[name] = accumulator

    def get_accumulator(self, name: str) -> Accumulator[Any]:
        """Return the accumulator registered under ``name``."""
        return self._ctx.accumulators[name]

    def _keyed_state(self, state_descriptor: Any) -> Any:
        backend: KeyedStateBackend | None = getattr(self._op, "keyed_backend", None)
        if backend is None:
            msg = (
                f"keyed state {state_descriptor.name!r} requested in operator "
                f"'{self._ctx.name}' (uid '{self._ctx.uid}'), which is not on a keyed "
                "stream; call key_by() first"
            )
            raise InvalidProgramError(msg)
        return backend.get_or_create_keyed_state(state_descriptor)

    def get_state(self, state_descriptor: ValueStateDescriptor) -> ValueState:
        """Keyed value state of the current key.

        Raises:
            InvalidProgramError: the operator is not keyed.
        """
        return self._keyed_state(state_descriptor)

    def get_list_state(self, state_descriptor: Any) -> Any:
        """Keyed list state of the current key."""
        return self._keyed_state(state_descriptor)

    def get_map_state(self, state_descriptor: Any) -> Any:
        """Keyed map state of the current key."""
        return self._keyed_state(state_descriptor)

    def get_reducing_state(self, state_descriptor: Any) -> Any:
        """Keyed reducing state of the current key."""
        return self._keyed_state(state_descriptor)

    def get_aggregating_state(self, state_descriptor: Any) -> Any:
        """Keyed aggregating state of the current key."""
        return self._keyed_state(state_descriptor)


class UdfStreamOperator(StreamOperator):
    """An operator that hosts one user function and manages its ``open``/``close``.

    Args:
        spec: description whose ``function`` is a :class:`Function` or a callable.
        method: name of the method to call on :class:`Function` objects (``"map"``, ...).
    """

    method = ""

    def __init__(self, spec: OperatorSpec) -> None:
        super().__init__(spec)
        fn = spec.function
        self.user_function = fn
        if isinstance(fn, Function) and self.method and hasattr(fn, self.method):
            self.fn = getattr(fn, self.method)
        else:
            self.fn = fn

    def initialize_state(self, state: RestoredState | None) -> None:
        """Remember restored state; give a ``CheckpointedFunction`` its operator state."""
        super().initialize_state(state)
        from strom.datastream.functions import CheckpointedFunction

        if not isinstance(self.user_function, CheckpointedFunction):
            return
        from strom._state.operator import OperatorStateBackend, redistribute_operator_state

        c = self.context
        self.operator_state = OperatorStateBackend(c.subtask_index, c.parallelism)
        if state is not None:
            old = [
                state.subtask_states.get(i, {}).get("operator_state")
                for i in range(state.old_parallelism)
            ]
            if any(o is not None for o in old):
                parts = redistribute_operator_state(old, c.parallelism)
                self.operator_state.restore(parts[c.subtask_index])
        ctx = _FunctionInitContext(self.operator_state, state is not None, self)
        try:
            self.user_function.initialize_state(ctx)
        except Exception as e:
            raise self.user_error(e, "initialize_state() of the user function") from e

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """Let a ``CheckpointedFunction`` write its state, then snapshot it."""
        backend = getattr(self, "operator_state", None)
        if backend is None:
            return {}
        ctx = _FunctionSnapshotContext(checkpoint_id, self.context.processing_time_ms())
        try:
            self.user_function.snapshot_state(ctx)
        except Exception as e:
            raise self.user_error(e, "snapshot_state() of the user function") from e
        return {"operator_state": backend.snapshot(checkpoint_id)}

    def open(self) -> None:
        """Open the user function with a runtime context."""
        if isinstance(self.user_function, Function):
            try:
                self.user_function.open(StreamingRuntimeContext(self))
            except Exception as e:
                raise self.user_error(e, "open() of the user function") from e

    def close(self) -> None:
        """Close the user function; release keyed state (local files of RocksDB)."""
        try:
            if isinstance(self.user_function, Function):
                self.user_function.close()
        finally:
            backend = getattr(self, "keyed_backend", None)
            if backend is not None:
                backend.dispose()


class _FunctionInitContext(FunctionInitializationContext):
    """``FunctionInitializationContext`` given to ``CheckpointedFunction.initialize_state``."""

    def __init__(self, store: Any, restored: bool, op: StreamOperator) -> None:
        self._store = store
        self._restored = restored
        self._op = op

    def is_restored(self) -> bool:
        return self._restored

    def get_operator_state_store(self) -> Any:
        return self._store

    def get_keyed_state_store(self) -> Any:
        return getattr(self._op, "keyed_backend", None)


class _FunctionSnapshotContext(FunctionSnapshotContext):
    """``FunctionSnapshotContext`` given to ``CheckpointedFunction.snapshot_state``."""

    def __init__(self, checkpoint_id: int, timestamp_ms: int) -> None:
        self._id = checkpoint_id
        self._ts = timestamp_ms

    def get_checkpoint_id(self) -> int:
        return self._id

    def get_checkpoint_timestamp(self) -> int:
        return self._ts
