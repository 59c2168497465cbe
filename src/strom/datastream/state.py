"""State interfaces, state descriptors and state TTL (Flink's ``pyflink.datastream.state``).

Keyed state is scoped to the key of the record being processed (and, inside windows, to
the window). A function obtains a handle from its ``RuntimeContext`` in ``open`` or in a
process function by passing a *descriptor*: a declarative, picklable description of the
state (its name, optional type information, optional time-to-live). The state backend
chosen for the job (heap or RocksDB) resolves the descriptor to a handle and stores the
values by key group, so that checkpoints and rescaling cover them.

Key classes:

- Keyed state handles: :class:`ValueState`, :class:`ListState`, :class:`MapState`,
  :class:`ReducingState`, :class:`AggregatingState`.
- Their descriptors: :class:`ValueStateDescriptor`, :class:`ListStateDescriptor`,
  :class:`MapStateDescriptor`, :class:`ReducingStateDescriptor`,
  :class:`AggregatingStateDescriptor`.
- :class:`StateTtlConfig`: expiry of keyed state after a time-to-live.
- Operator (non-keyed) state: :class:`OperatorStateStore`, :class:`BroadcastState`,
  :class:`ReadOnlyBroadcastState`.

Example::

    class Count(KeyedProcessFunction):
        def open(self, runtime_context):
            ttl = StateTtlConfig.new_builder(timedelta(hours=1)).build()
            descriptor = ValueStateDescriptor("count", int)
            descriptor.enable_time_to_live(ttl)
            self.count = runtime_context.get_state(descriptor)

        def process_element(self, value, ctx):
            n = (self.count.value() or 0) + 1
            self.count.update(n)
            yield ctx.get_current_key(), n

Type information (``type_info``) is optional. ``None`` stores values with pickle; the
Python types ``int``, ``float``, ``str``, ``bytes`` and ``bool`` select compact typed
serializers in the RocksDB backend (the heap backend keeps Python objects and ignores it).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from strom.datastream.state_ttl import StateTtlConfig

__all__ = [
    "AggregatingState",
    "AggregatingStateDescriptor",
    "AppendingState",
    "BroadcastState",
    "ListState",
    "ListStateDescriptor",
    "MapState",
    "MapStateDescriptor",
    "MergingState",
    "OperatorStateStore",
    "ReadOnlyBroadcastState",
    "ReducingState",
    "ReducingStateDescriptor",
    "State",
    "StateDescriptor",
    "StateTtlConfig",
    "ValueState",
    "ValueStateDescriptor",
]

T = TypeVar("T")
"""The type of a state's value (or of a list state's elements)."""
K = TypeVar("K")
"""The type of a map state's user keys."""
V = TypeVar("V")
"""The type of a map state's user values."""
IN = TypeVar("IN")
"""The type of values added to an appending state."""
OUT = TypeVar("OUT")
"""The type of what an appending state's ``get()`` returns."""


# -- state handles ---------------------------------------------------------------------------


class State(abc.ABC):
    """Base of all state handles (Flink's ``State``).

    A keyed handle always reads and writes the state of the *current key* (the key of the
    record or timer being processed); it must not be used from another thread.
    """

    __slots__ = ()

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove the state of the current key (and namespace)."""


class ValueState(State, Generic[T]):
    """A single value per key (Flink's ``ValueState``)."""

    __slots__ = ()

    @abc.abstractmethod
    def value(self) -> T | None:
        """Return the current key's value, or None if it has none (or it expired)."""

    @abc.abstractmethod
    def update(self, value: T | None) -> None:
        """Set the current key's value; ``None`` removes it, as in Flink."""


class AppendingState(State, Generic[IN, OUT]):
    """State to which values are added and whose combined contents can be read."""

    __slots__ = ()

    @abc.abstractmethod
    def get(self) -> OUT:
        """Return the current key's combined contents."""

    @abc.abstractmethod
    def add(self, value: IN) -> None:
        """Add ``value`` to the current key's state."""


class MergingState(AppendingState[IN, OUT]):
    """Appending state whose contents of several windows can be merged (session windows)."""

    __slots__ = ()


class ReducingState(MergingState[T, T | None]):
    """A value per key, combined with a reduce function on every ``add`` (Flink's
    ``ReducingState``); ``get`` returns None if nothing was added."""

    __slots__ = ()


class AggregatingState(MergingState[IN, OUT | None]):
    """An accumulator per key, fed through an ``AggregateFunction`` (Flink's
    ``AggregatingState``); ``get`` returns ``get_result(accumulator)`` or None if empty."""

    __slots__ = ()


class ListState(MergingState[T, list[T]]):
    """A list of values per key (Flink's ``ListState``).

    ``get()`` returns a new list (empty if the key has none); changing it does not change
    the state. ``None`` elements are rejected.
    """

    __slots__ = ()

    @abc.abstractmethod
    def update(self, values: list[T]) -> None:
        """Replace the current key's list with ``values`` (empty clears it).

        Raises:
            ValueError: ``values`` is None or contains None.
        """

    @abc.abstractmethod
    def add_all(self, values: list[T]) -> None:
        """Append ``values`` to the current key's list.

        Raises:
            ValueError: ``values`` is None or contains None.
        """

    def __iter__(self) -> Iterator[T]:
        """Iterate over the current key's elements."""
        return iter(self.get())


class MapState(State, Generic[K, V]):
    """A map of user keys to values per key (Flink's ``MapState``).

    ``keys()``, ``values()`` and ``items()`` return lists (a snapshot), so the state may be
    changed while they are iterated. Iteration order is insertion order in the heap
    backend and serialized-key order in the RocksDB backend.
    """

    __slots__ = ()

    @abc.abstractmethod
    def get(self, key: K) -> V | None:
        """Return the value of ``key``, or None."""

    @abc.abstractmethod
    def put(self, key: K, value: V) -> None:
        """Map ``key`` to ``value``."""

    @abc.abstractmethod
    def put_all(self, dict_value: dict[K, V]) -> None:
        """Copy every mapping of ``dict_value`` into the state."""

    @abc.abstractmethod
    def remove(self, key: K) -> None:
        """Remove the mapping of ``key`` (no error if absent)."""

    @abc.abstractmethod
    def contains(self, key: K) -> bool:
        """Return True if ``key`` is mapped."""

    @abc.abstractmethod
    def items(self) -> list[tuple[K, V]]:
        """Return all ``(key, value)`` pairs."""

    @abc.abstractmethod
    def keys(self) -> list[K]:
        """Return all user keys."""

    @abc.abstractmethod
    def values(self) -> list[V]:
        """Return all values."""

    @abc.abstractmethod
    def is_empty(self) -> bool:
        """Return True if the current key has no mappings."""

    def __getitem__(self, key: K) -> V | None:
        """``state[key]`` is ``state.get(key)``."""
        return self.get(key)

    def __setitem__(self, key: K, value: V) -> None:
        """``state[key] = value`` is ``state.put(key, value)``."""
        self.put(key, value)

    def __delitem__(self, key: K) -> None:
        """``del state[key]`` is ``state.remove(key)``."""
        self.remove(key)

    def __contains__(self, key: object) -> bool:
        """``key in state`` is ``state.contains(key)``."""
        return self.contains(key)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[K]:
        """Iterate over the user keys."""
        return iter(self.keys())


class ReadOnlyBroadcastState(State, Generic[K, V]):
    """Read-only view of a :class:`BroadcastState` (what non-broadcast inputs see).

    Values are not copied: do not modify what ``get`` or ``items`` return. ``clear``
    raises ``TypeError`` on a read-only view.
    """

    __slots__ = ()

    @abc.abstractmethod
    def get(self, key: K) -> V | None:
        """Return the value of ``key``, or None."""

    @abc.abstractmethod
    def contains(self, key: K) -> bool:
        """Return True if ``key`` is mapped."""

    @abc.abstractmethod
    def items(self) -> list[tuple[K, V]]:
        """Return all ``(key, value)`` pairs."""

    @abc.abstractmethod
    def keys(self) -> list[K]:
        """Return all keys."""

    @abc.abstractmethod
    def values(self) -> list[V]:
        """Return all values."""

    @abc.abstractmethod
    def is_empty(self) -> bool:
        """Return True if the state has no mappings."""

    def __getitem__(self, key: K) -> V | None:
        """``state[key]`` is ``state.get(key)``."""
        return self.get(key)

    def __contains__(self, key: object) -> bool:
        """``key in state`` is ``state.contains(key)``."""
        return self.contains(key)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[K]:
        """Iterate over the keys."""
        return iter(self.keys())


class BroadcastState(ReadOnlyBroadcastState[K, V]):
    """Operator state of a broadcast input: one map, identical on every subtask.

    Every subtask receives every broadcast element, so each subtask must apply the same
    changes in the same way (the user's guarantee, as in Flink). On restore, with any
    parallelism, every subtask gets the copy of subtask 0.
    """

    __slots__ = ()

    @abc.abstractmethod
    def put(self, key: K, value: V) -> None:
        """Map ``key`` to ``value``."""

    @abc.abstractmethod
    def put_all(self, dict_value: dict[K, V]) -> None:
        """Copy every mapping of ``dict_value`` into the state."""

    @abc.abstractmethod
    def remove(self, key: K) -> None:
        """Remove the mapping of ``key`` (no error if absent)."""

    def __setitem__(self, key: K, value: V) -> None:
        """``state[key] = value`` is ``state.put(key, value)``."""
        self.put(key, value)

    def __delitem__(self, key: K) -> None:
        """``del state[key]`` is ``state.remove(key)``."""
        self.remove(key)


class OperatorStateStore(abc.ABC):
    """Non-keyed state of one operator subtask (Flink's ``OperatorStateStore``).

    Used by ``CheckpointedFunction``-style functions, sources, sinks and broadcast
    operators. Each method returns the same handle for the same state name.
    """

    @abc.abstractmethod
    def get_list_state(self, state_descriptor: ListStateDescriptor) -> ListState[Any]:
        """List state redistributed by *even split* when the parallelism changes.

        On restore with a different parallelism the elements of all subtasks are
        concatenated (in subtask order) and split into contiguous, near-equal parts.
        """

    @abc.abstractmethod
    def get_union_list_state(self, state_descriptor: ListStateDescriptor) -> ListState[Any]:
        """List state of which every subtask gets *all* elements on restore."""

    @abc.abstractmethod
    def get_broadcast_state(self, state_descriptor: MapStateDescriptor) -> BroadcastState[Any, Any]:
        """The read-write broadcast state described by ``state_descriptor``."""


# -- descriptors -----------------------------------------------------------------------------


def _rebuild_descriptor(
    cls: type[StateDescriptor], args: tuple[Any, ...], ttl: StateTtlConfig | None
) -> StateDescriptor:
    """Unpickle a descriptor."""
    d = cls(*args)
    if ttl is not None:
        d.enable_time_to_live(ttl)
    return d


class StateDescriptor:
    """Names and describes a piece of state (Flink's ``StateDescriptor``).

    Descriptors are immutable apart from :meth:`enable_time_to_live`, which must be called
    before the state is first requested. Two descriptors are equal if they have the same
    class, name and type information.

    Args:
        name: the state's name, unique within its operator; part of every snapshot, so
            renaming it loses the state of existing checkpoints.
        type_info: optional type information of the value (see the module docstring).

    Raises:
        ValueError: ``name`` is empty.
        TypeError: ``name`` is not a str.
    """

    __slots__ = ("_ttl_config", "name", "type_info")

    name: str
    type_info: Any
    _ttl_config: StateTtlConfig | None

    def __init__(self, name: str, type_info: Any = None) -> None:
        """Validate and store the name and type information."""
        if not isinstance(name, str):
            msg = f"a state name must be a str, got {type(name).__name__}"
            raise TypeError(msg)
        if not name:
            msg = "a state name must not be empty"
            raise ValueError(msg)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "type_info", type_info)
        object.__setattr__(self, "_ttl_config", None)

    def __setattr__(self, name: str, value: Any) -> None:
        """Descriptors are immutable."""
        msg = f"{type(self).__name__} is immutable"
        raise AttributeError(msg)

    def _init_args(self) -> tuple[Any, ...]:
        """The constructor arguments (for pickling, equality and repr)."""
        return (self.name, self.type_info)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by constructor arguments."""
        return (_rebuild_descriptor, (type(self), self._init_args(), self._ttl_config))

    def __eq__(self, other: object) -> bool:
        """Same class, same constructor arguments."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, StateDescriptor)
        return self._init_args() == other._init_args()

    def __hash__(self) -> int:
        """Hash of the class and the name."""
        return hash((type(self).__name__, self.name))

    def __repr__(self) -> str:
        """``ValueStateDescriptor('count', int)``."""
        args = ", ".join(repr(a) for a in self._init_args())
        return f"{type(self).__name__}({args})"

    def get_name(self) -> str:
        """The state's name."""
        return self.name

    @property
    def ttl_config(self) -> StateTtlConfig | None:
        """The TTL config, or None if the state never expires."""
        return self._ttl_config

    def enable_time_to_live(self, ttl_config: StateTtlConfig) -> None:
        """Let the state's entries expire as ``ttl_config`` describes.

        Raises:
            TypeError: ``ttl_config`` is not a :class:`StateTtlConfig`.
        """
        if not isinstance(ttl_config, StateTtlConfig):
            msg = f"enable_time_to_live() needs a StateTtlConfig, got {type(ttl_config).__name__}"
            raise TypeError(msg)
        object.__setattr__(self, "_ttl_config", ttl_config if ttl_config.is_enabled() else None)


class ValueStateDescriptor(StateDescriptor):
    """Describes a :class:`ValueState` (Flink's ``ValueStateDescriptor``).

    Args:
        name: the state's name.
        type_info: optional type information of the value.
    """

    __slots__ = ()


class ListStateDescriptor(StateDescriptor):
    """Describes a :class:`ListState` (keyed, or operator list state).

    Args:
        name: the state's name.
        type_info: optional type information of the *elements*.
    """

    __slots__ = ()


class MapStateDescriptor(StateDescriptor):
    """Describes a :class:`MapState` or a :class:`BroadcastState`.

    Args:
        name: the state's name.
        key_type_info: optional type information of the user keys.
        value_type_info: optional type information of the values (also ``type_info``).
    """

    __slots__ = ("key_type_info", "value_type_info")

    key_type_info: Any
    value_type_info: Any

    def __init__(self, name: str, key_type_info: Any = None, value_type_info: Any = None) -> None:
        """Validate and store the name and type information."""
        super().__init__(name, value_type_info)
        object.__setattr__(self, "key_type_info", key_type_info)
        object.__setattr__(self, "value_type_info", value_type_info)

    def _init_args(self) -> tuple[Any, ...]:
        """The constructor arguments."""
        return (self.name, self.key_type_info, self.value_type_info)


class ReducingStateDescriptor(StateDescriptor):
    """Describes a :class:`ReducingState` (Flink's ``ReducingStateDescriptor``).

    Args:
        name: the state's name.
        reduce_function: a ``ReduceFunction`` or a callable ``(acc, value) -> acc``; it is
            called with the stored value and each added value.
        type_info: optional type information of the value.

    Raises:
        TypeError: ``reduce_function`` is not callable and not a ``ReduceFunction``.
    """

    __slots__ = ("reduce_function",)

    reduce_function: Any

    def __init__(self, name: str, reduce_function: Any, type_info: Any = None) -> None:
        """Validate and store the name, the function and the type information."""
        super().__init__(name, type_info)
        reduce = getattr(reduce_function, "reduce", None)
        if not callable(reduce) and not callable(reduce_function):
            msg = (
                "ReducingStateDescriptor needs a ReduceFunction or a callable "
                f"(acc, value) -> acc, got {type(reduce_function).__name__}"
            )
            raise TypeError(msg)
        object.__setattr__(self, "reduce_function", reduce_function)

    def _init_args(self) -> tuple[Any, ...]:
        """The constructor arguments."""
        return (self.name, self.reduce_function, self.type_info)

    def get_reduce_function(self) -> Callable[[Any, Any], Any]:
        """The reduce callable ``(acc, value) -> acc``."""
        reduce = getattr(self.reduce_function, "reduce", None)
        fn: Callable[[Any, Any], Any] = reduce if callable(reduce) else self.reduce_function
        return fn


class AggregatingStateDescriptor(StateDescriptor):
    """Describes an :class:`AggregatingState` (Flink's ``AggregatingStateDescriptor``).

    The state stores the accumulator of ``agg_function``.

    Args:
        name: the state's name.
        agg_function: a ``strom.datastream.functions.AggregateFunction``.
        type_info: optional type information of the *accumulator*.

    Raises:
        TypeError: ``agg_function`` is not an ``AggregateFunction``.
    """

    __slots__ = ("agg_function",)

    agg_function: Any

    def __init__(self, name: str, agg_function: Any, type_info: Any = None) -> None:
        """Validate and store the name, the function and the type information."""
        from strom.datastream.functions import AggregateFunction

        super().__init__(name, type_info)
        if not isinstance(agg_function, AggregateFunction):
            msg = (
                "AggregatingStateDescriptor needs a strom.datastream.functions."
                f"AggregateFunction, got {type(agg_function).__name__}"
            )
            raise TypeError(msg)
        object.__setattr__(self, "agg_function", agg_function)

    def _init_args(self) -> tuple[Any, ...]:
        """The constructor arguments."""
        return (self.name, self.agg_function, self.type_info)

    def get_agg_function(self) -> Any:
        """The aggregate function."""
        return self.agg_function
