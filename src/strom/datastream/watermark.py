"""Event time: watermarks, watermark generators, timestamp assigners and WatermarkStrategy.

This mirrors Flink's ``org.apache.flink.api.common.eventtime`` package with snake_case
names. Timestamps and watermarks are ``int`` epoch milliseconds; public durations accept
a ``datetime.timedelta`` or an ``int`` of milliseconds.

A :class:`Watermark` with timestamp ``t`` declares that no more records with a timestamp
``<= t`` are expected, so event-time windows and timers up to ``t`` may fire. A source
emits watermarks per split (Kafka partition, file split); downstream tasks take the
minimum over their inputs, leaving out inputs marked idle.

Key classes:

* :class:`WatermarkStrategy`: the immutable, declarative description a user passes to
  ``env.from_source(source, watermark_strategy, name)``: which :class:`TimestampAssigner`
  extracts event timestamps and which :class:`WatermarkGenerator` turns them into
  watermarks, optionally with idleness detection.
* :class:`WatermarkGenerator`: stateful per-split logic built from the strategy by the
  runtime; sees every event (:meth:`~WatermarkGenerator.on_event`) and is polled
  periodically (:meth:`~WatermarkGenerator.on_periodic_emit`) to emit into a
  :class:`WatermarkOutput`.
* Built-in generators: :class:`BoundedOutOfOrdernessWatermarks`,
  :class:`AscendingTimestampsWatermarks`, :class:`NoWatermarksGenerator`,
  :class:`WatermarksWithIdleness`.
* :class:`TimestampAssigner`, :class:`RecordTimestampAssigner`.

Example::

    from datetime import timedelta

    strategy = (
        WatermarkStrategy.for_bounded_out_of_orderness(timedelta(seconds=5))
        .with_timestamp_assigner(lambda event: event["ts_ms"])
        .with_idleness(timedelta(minutes=1))
    )

Everything here is pure: no threads, no I/O. The runtime's SourceOperator drives the
generators; it calls :meth:`WatermarkStrategy.create_watermark_generator` once per split.
"""

from __future__ import annotations

import abc
import enum
import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from strom._utils.time import to_millis
from strom.errors import ConfigurationError, InvalidProgramError

if TYPE_CHECKING:
    from typing_extensions import override
else:

    def override(method: Callable[..., Any]) -> Callable[..., Any]:
        """Mark a method as overriding its base (``typing.override`` on Python >= 3.12)."""
        return method


__all__ = [
    "MAX_WATERMARK_MS",
    "MIN_WATERMARK_MS",
    "AscendingTimestampsWatermarks",
    "BoundedOutOfOrdernessWatermarks",
    "NoWatermarksGenerator",
    "RecordTimestampAssigner",
    "TimeDomain",
    "TimestampAssigner",
    "Watermark",
    "WatermarkGenerator",
    "WatermarkOutput",
    "WatermarkStrategy",
    "WatermarksWithIdleness",
]

T = TypeVar("T")
"""The type of the stream's records (events)."""

MAX_WATERMARK_MS = 2**63 - 1
"""Largest timestamp (Java's ``Long.MAX_VALUE``): a watermark with it ends event time."""

MIN_WATERMARK_MS = -(2**63)
"""Smallest timestamp (Java's ``Long.MIN_VALUE``): the watermark before any event."""


class TimeDomain(enum.Enum):
    """Which clock a timer or window uses (Flink's ``TimeDomain``)."""

    EVENT_TIME = "event_time"
    """Time given by record timestamps and advanced by watermarks."""
    PROCESSING_TIME = "processing_time"
    """The wall clock of the machine running the task."""


@dataclass(frozen=True, slots=True, order=True)
class Watermark:
    """A point in event time: no more records with a timestamp ``<= timestamp_ms`` follow.

    Mirrors Flink's ``org.apache.flink.api.common.eventtime.Watermark``. Watermarks are
    ordered by timestamp.

    Args:
        timestamp_ms: epoch milliseconds, an ``int`` in
            ``[MIN_WATERMARK_MS, MAX_WATERMARK_MS]`` (Java ``long`` range).

    Raises:
        TypeError: ``timestamp_ms`` is not an ``int`` (``bool`` is rejected).
        ValueError: ``timestamp_ms`` is outside the ``long`` range.
    """

    MAX_WATERMARK: ClassVar[Watermark]
    """The watermark that ends event time (``timestamp_ms = 2**63 - 1``); a bounded
    source emits it when it finishes, firing every remaining event-time timer."""

    MIN_WATERMARK: ClassVar[Watermark]
    """The lowest watermark (``timestamp_ms = -2**63``)."""

    timestamp_ms: int

    def __post_init__(self) -> None:
        """Validate the timestamp."""
        ts = self.timestamp_ms
        if type(ts) is not int:
            msg = f"Watermark timestamp_ms must be an int (epoch ms), got {type(ts).__name__}"
            raise TypeError(msg)
        if not MIN_WATERMARK_MS <= ts <= MAX_WATERMARK_MS:
            msg = f"Watermark timestamp_ms {ts} is outside the 64-bit range"
            raise ValueError(msg)


Watermark.MAX_WATERMARK = Watermark(MAX_WATERMARK_MS)
Watermark.MIN_WATERMARK = Watermark(MIN_WATERMARK_MS)


class WatermarkOutput(abc.ABC):
    """Where a :class:`WatermarkGenerator` sends watermarks and idleness (Flink's name).

    Implemented by the runtime (one output per source split); tests use a collecting
    implementation.
    """

    @abc.abstractmethod
    def emit_watermark(self, watermark: Watermark) -> None:
        """Emit a watermark.

        Emitting a watermark also implicitly marks the output active again, ending a
        previous :meth:`mark_idle`, as in Flink. Outputs ignore watermarks that do not
        advance time, so generators may emit the same watermark repeatedly.
        """

    @abc.abstractmethod
    def mark_idle(self) -> None:
        """Mark this output idle: downstream stops waiting for its watermarks."""

    @abc.abstractmethod
    def mark_active(self) -> None:
        """Mark this output active again: downstream waits for its watermarks."""


class WatermarkGenerator(abc.ABC, Generic[T]):
    """Generates watermarks from the events of one source split (Flink's name).

    The runtime creates one generator per split from a :class:`WatermarkStrategy` and
    calls it from the task thread only, so it may keep plain mutable state. Call order:
    :meth:`on_event` (or :meth:`on_events`) for every record, interleaved with
    :meth:`on_periodic_emit` every ``pipeline.auto-watermark-interval`` (200 ms by
    default). A *punctuated* generator emits in :meth:`on_event`; a *periodic* one
    only remembers there and emits in :meth:`on_periodic_emit`.
    """

    @abc.abstractmethod
    def on_event(self, event: T, event_timestamp_ms: int, output: WatermarkOutput) -> None:
        """Observe one event; may emit a watermark (punctuated generators).

        Args:
            event: the record.
            event_timestamp_ms: its timestamp as returned by the timestamp assigner,
                epoch milliseconds.
            output: where to emit watermarks or idleness.
        """

    @abc.abstractmethod
    def on_periodic_emit(self, output: WatermarkOutput) -> None:
        """Called periodically by the runtime; may emit a watermark (periodic generators).

        Args:
            output: where to emit watermarks or idleness.
        """

    def on_events(self, events: list[T], timestamps_ms: list[int], output: WatermarkOutput) -> None:
        """Observe a batch of events (Strom's batch fast path; not in Flink).

        The default calls :meth:`on_event` per event, so overriding it is optional; the
        built-in generators override it with a vectorised version.

        Args:
            events: the records of one batch, in order.
            timestamps_ms: their timestamps (epoch ms), parallel to ``events``.
            output: where to emit watermarks or idleness.
        """
        on_event = self.on_event
        for event, timestamp_ms in zip(events, timestamps_ms, strict=True):
            on_event(event, timestamp_ms, output)


class BoundedOutOfOrdernessWatermarks(WatermarkGenerator[Any]):
    """Periodic watermarks trailing the highest timestamp seen by a fixed bound.

    Flink's ``BoundedOutOfOrdernessWatermarks``: the emitted watermark is
    ``max_timestamp - max_out_of_orderness - 1``, so events up to ``max_out_of_orderness``
    late are still on time. Watermarks are emitted only in :meth:`on_periodic_emit`.
    Before any event it emits :data:`MIN_WATERMARK_MS` (the maximum starts at
    ``MIN_WATERMARK_MS + bound + 1``, so nothing underflows).

    Args:
        max_out_of_orderness: how late events may be, a ``timedelta`` or int ms ``>= 0``.

    Raises:
        ConfigurationError: the bound is negative, not a duration, or beyond 2**63 - 1 ms.
    """

    def __init__(self, max_out_of_orderness: timedelta | int) -> None:
        """Create the generator; see the class docstring for the arguments."""
        bound = to_millis(max_out_of_orderness, name="max_out_of_orderness")
        if bound > MAX_WATERMARK_MS:
            msg = f"max_out_of_orderness {bound} ms exceeds the 64-bit range"
            raise ConfigurationError(msg)
        self._out_of_orderness_ms = bound
        self._max_timestamp_ms = MIN_WATERMARK_MS + bound + 1

    @override
    def on_event(self, event: Any, event_timestamp_ms: int, output: WatermarkOutput) -> None:
        """Remember the highest timestamp; emits nothing."""
        if event_timestamp_ms > self._max_timestamp_ms:
            self._max_timestamp_ms = event_timestamp_ms

    @override
    def on_events(
        self, events: list[Any], timestamps_ms: list[int], output: WatermarkOutput
    ) -> None:
        """Remember the highest timestamp of the batch with one ``max()``; emits nothing."""
        if timestamps_ms:
            highest = max(timestamps_ms)
            if highest > self._max_timestamp_ms:
                self._max_timestamp_ms = highest

    @override
    def on_periodic_emit(self, output: WatermarkOutput) -> None:
        """Emit ``Watermark(max_timestamp - max_out_of_orderness - 1)``."""
        output.emit_watermark(Watermark(self._max_timestamp_ms - self._out_of_orderness_ms - 1))


class AscendingTimestampsWatermarks(BoundedOutOfOrdernessWatermarks):
    """Periodic watermarks for timestamps that never decrease (Flink's name).

    A :class:`BoundedOutOfOrdernessWatermarks` with a bound of 0: the watermark is the
    highest timestamp seen minus 1. Events with a timestamp below an earlier event's
    are late.
    """

    def __init__(self) -> None:
        """Create the generator."""
        super().__init__(0)


class NoWatermarksGenerator(WatermarkGenerator[Any]):
    """Emits no watermarks: for processing-time-only programs (Flink's name)."""

    @override
    def on_event(self, event: Any, event_timestamp_ms: int, output: WatermarkOutput) -> None:
        """Do nothing."""

    @override
    def on_events(
        self, events: list[Any], timestamps_ms: list[int], output: WatermarkOutput
    ) -> None:
        """Do nothing."""

    @override
    def on_periodic_emit(self, output: WatermarkOutput) -> None:
        """Do nothing."""


def _monotonic_ms() -> int:
    """Return a monotonic clock reading in milliseconds (the default idleness clock)."""
    return time.monotonic_ns() // 1_000_000


class WatermarksWithIdleness(WatermarkGenerator[T]):
    """Wraps a generator and marks the output idle when no events arrive for a while.

    Flink's ``WatermarksWithIdleness``: an idle split is left out of the downstream
    watermark minimum, so one quiet Kafka partition does not stall event time. Idleness
    is checked in :meth:`on_periodic_emit`: the inactivity timer starts at the first
    periodic call that sees no event since the previous call, and the output is marked
    idle once more than ``idle_timeout_ms`` pass on ``clock`` without events (so the
    actual delay is up to one emit interval longer). While idle, the wrapped generator
    is not asked to emit. When events resume, the next periodic call first calls
    :meth:`WatermarkOutput.mark_active`, then delegates again.

    :meth:`WatermarkOutput.mark_idle` and ``mark_active`` are called only on a change
    of state, not on every periodic call.

    Args:
        generator: the generator to wrap.
        idle_timeout_ms: inactivity (ms, ``> 0``; a ``timedelta`` is accepted too)
            after which the output is marked idle.
        clock: returns the current time in milliseconds; any monotonic origin. Defaults
            to ``time.monotonic_ns() // 1_000_000``; tests pass a manual clock.

    Raises:
        ConfigurationError: ``idle_timeout_ms`` is not a positive duration.
    """

    def __init__(
        self,
        generator: WatermarkGenerator[T],
        idle_timeout_ms: timedelta | int,
        clock: Callable[[], int] = _monotonic_ms,
    ) -> None:
        """Create the wrapper; see the class docstring for the arguments."""
        timeout = to_millis(idle_timeout_ms, name="idle_timeout")
        if timeout <= 0:
            msg = f"idle_timeout must be greater than zero, got {idle_timeout_ms!r}"
            raise ConfigurationError(msg)
        self._generator = generator
        self._idle_timeout_ms = timeout
        self._clock = clock
        self._activity_count = 0
        self._last_activity_count = 0
        self._inactive_since_ms: int | None = None
        self._idle = False

    @override
    def on_event(self, event: T, event_timestamp_ms: int, output: WatermarkOutput) -> None:
        """Delegate to the wrapped generator and record activity."""
        self._generator.on_event(event, event_timestamp_ms, output)
        self._activity_count += 1

    @override
    def on_events(self, events: list[T], timestamps_ms: list[int], output: WatermarkOutput) -> None:
        """Delegate the batch to the wrapped generator and record activity."""
        self._generator.on_events(events, timestamps_ms, output)
        if events:
            self._activity_count += 1

    @override
    def on_periodic_emit(self, output: WatermarkOutput) -> None:
        """Mark the output idle or active on a change; delegate while active."""
        if self._check_if_idle():
            if not self._idle:
                self._idle = True
                output.mark_idle()
            return
        if self._idle:
            self._idle = False
            output.mark_active()
        self._generator.on_periodic_emit(output)

    def _check_if_idle(self) -> bool:
        """Return True if there was no activity for longer than the timeout.

        Flink's ``IdlenessTimer.checkIfIdle``, with ``None`` instead of 0 as "timer not
        started" so that a manual clock may start at 0.
        """
        if self._activity_count != self._last_activity_count:
            self._last_activity_count = self._activity_count
            self._inactive_since_ms = None
            return False
        now_ms = self._clock()
        if self._inactive_since_ms is None:
            self._inactive_since_ms = now_ms
            return False
        return now_ms - self._inactive_since_ms > self._idle_timeout_ms


class TimestampAssigner(abc.ABC, Generic[T]):
    """Extracts the event timestamp of a record (Flink's name).

    Must be stateless and cheap: it is called once per record, on the source's task
    thread.
    """

    @abc.abstractmethod
    def extract_timestamp(self, value: T, record_timestamp: int | None) -> int:
        """Return the event timestamp of ``value``.

        Args:
            value: the record.
            record_timestamp: the timestamp the source attached to the record (e.g. the
                Kafka record timestamp), epoch ms, or ``None`` if it has none.

        Returns:
            The event timestamp in epoch milliseconds.
        """


class RecordTimestampAssigner(TimestampAssigner[Any]):
    """Keeps the timestamp the source attached to each record (Flink's name).

    A record without one gets :data:`MIN_WATERMARK_MS`, Flink's ``NO_TIMESTAMP``.
    """

    @override
    def extract_timestamp(self, value: Any, record_timestamp: int | None) -> int:
        """Return ``record_timestamp`` (``MIN_WATERMARK_MS`` if it is ``None``)."""
        return MIN_WATERMARK_MS if record_timestamp is None else record_timestamp


class _FunctionTimestampAssigner(TimestampAssigner[T]):
    """A :class:`TimestampAssigner` calling a user function of 1 or 2 arguments."""

    def __init__(self, function: Callable[..., int], takes_record_timestamp: bool) -> None:
        """Wrap ``function``; it is called as ``f(value, record_ts)`` or ``f(value)``."""
        self.function = function
        self.takes_record_timestamp = takes_record_timestamp

    @override
    def extract_timestamp(self, value: T, record_timestamp: int | None) -> int:
        """Call the wrapped function."""
        if self.takes_record_timestamp:
            return self.function(value, record_timestamp)
        return self.function(value)

    def __repr__(self) -> str:
        """Name the wrapped function."""
        return f"{type(self).__name__}({self.function!r})"


def _as_timestamp_assigner(
    assigner: TimestampAssigner[T] | Callable[..., int],
) -> TimestampAssigner[T]:
    """Return ``assigner`` as a TimestampAssigner, wrapping a 1- or 2-argument callable.

    The arity is read once from the signature: a callable that accepts two positional
    arguments (or ``*args``) is called as ``f(value, record_timestamp)``, one that
    accepts one as ``f(value)``. A callable without an introspectable signature
    (``operator.attrgetter``, ``operator.itemgetter``) is called with the value only.
    """
    if isinstance(assigner, TimestampAssigner):
        return assigner
    if not callable(assigner):
        msg = (
            "with_timestamp_assigner() needs a TimestampAssigner or a callable "
            f"(value) -> int / (value, record_timestamp) -> int, got {type(assigner).__name__}"
        )
        raise InvalidProgramError(msg)
    try:
        parameters = inspect.signature(assigner).parameters.values()
    except (TypeError, ValueError):
        return _FunctionTimestampAssigner(assigner, takes_record_timestamp=False)
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    has_var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    if len(required) > 2 or (not positional and not has_var_positional):
        msg = (
            "a timestamp assigner function must take (value) or (value, record_timestamp), "
            f"got {getattr(assigner, '__qualname__', repr(assigner))}{inspect.signature(assigner)}"
        )
        raise InvalidProgramError(msg)
    takes_two = has_var_positional or len(positional) >= 2
    return _FunctionTimestampAssigner(assigner, takes_record_timestamp=takes_two)


def _check_generator_factory(factory: Callable[[], WatermarkGenerator[T]]) -> None:
    """Reject a non-callable generator factory at build time."""
    if not callable(factory) or isinstance(factory, WatermarkGenerator):
        msg = (
            "for_generator() needs a zero-argument callable returning a new "
            f"WatermarkGenerator (e.g. the generator class), got {factory!r}; pass a "
            "factory, not an instance, because every source split needs its own generator"
        )
        raise InvalidProgramError(msg)


@dataclass(frozen=True, slots=True)
class WatermarkStrategy(Generic[T]):
    """How a source assigns event timestamps and generates watermarks (Flink's name).

    Immutable and declarative: build one with a static constructor, refine it with the
    ``with_*`` methods (each returns a new strategy), and pass it to
    ``env.from_source(source, strategy, name)``. The runtime then calls
    :meth:`create_watermark_generator` and :meth:`create_timestamp_assigner` once per
    source split. Keep strategies picklable (module-level functions or classes rather
    than lambdas) if the job runs on several processes.

    Build strategies with :meth:`for_monotonous_timestamps`,
    :meth:`for_bounded_out_of_orderness`, :meth:`no_watermarks` or :meth:`for_generator`
    rather than the constructor.

    Attributes:
        generator_factory: creates a fresh :class:`WatermarkGenerator` (one per split).
        timestamp_assigner: extracts event timestamps; ``None`` keeps the source's
            record timestamps.
        idle_timeout_ms: idleness timeout in ms (``> 0``), or ``None`` for none.
    """

    generator_factory: Callable[[], WatermarkGenerator[T]]
    timestamp_assigner: TimestampAssigner[T] | None = None
    idle_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        """Validate the fields, so that a hand-built strategy fails at build time too."""
        _check_generator_factory(self.generator_factory)
        if self.timestamp_assigner is not None and not isinstance(
            self.timestamp_assigner, TimestampAssigner
        ):
            msg = (
                "timestamp_assigner must be a TimestampAssigner or None; use "
                "with_timestamp_assigner() to pass a function"
            )
            raise InvalidProgramError(msg)
        timeout = self.idle_timeout_ms
        if timeout is not None and (type(timeout) is not int or timeout <= 0):
            msg = f"idle_timeout_ms must be a positive int or None, got {timeout!r}"
            raise ConfigurationError(msg)

    @staticmethod
    def for_monotonous_timestamps() -> WatermarkStrategy[Any]:
        """Watermarks for ascending timestamps (:class:`AscendingTimestampsWatermarks`)."""
        return WatermarkStrategy(AscendingTimestampsWatermarks)

    @staticmethod
    def for_bounded_out_of_orderness(
        max_out_of_orderness: timedelta | int,
    ) -> WatermarkStrategy[Any]:
        """Watermarks trailing the highest timestamp by a bound.

        Uses :class:`BoundedOutOfOrdernessWatermarks`.

        Args:
            max_out_of_orderness: how late events may be, a ``timedelta`` or int ms
                ``>= 0``.

        Raises:
            ConfigurationError: the bound is negative or not a duration.
        """
        bound_ms = to_millis(max_out_of_orderness, name="max_out_of_orderness")
        return WatermarkStrategy(functools.partial(BoundedOutOfOrdernessWatermarks, bound_ms))

    @staticmethod
    def no_watermarks() -> WatermarkStrategy[Any]:
        """No watermarks at all (:class:`NoWatermarksGenerator`): processing time only."""
        return WatermarkStrategy(NoWatermarksGenerator)

    @staticmethod
    def for_generator(factory: Callable[[], WatermarkGenerator[T]]) -> WatermarkStrategy[T]:
        """A strategy for a custom :class:`WatermarkGenerator`.

        Args:
            factory: zero-argument callable returning a *new* generator each call (e.g.
                the generator class); called once per source split.

        Raises:
            InvalidProgramError: ``factory`` is not callable or is a generator instance.
        """
        _check_generator_factory(factory)
        return WatermarkStrategy(factory)

    def with_timestamp_assigner(
        self, assigner: TimestampAssigner[T] | Callable[..., int]
    ) -> WatermarkStrategy[T]:
        """Return a copy that extracts event timestamps with ``assigner``.

        Args:
            assigner: a :class:`TimestampAssigner`, or a callable
                ``(value, record_timestamp) -> int`` or ``(value) -> int`` returning
                epoch milliseconds (the arity is read once from the signature; a
                callable without one, like ``operator.itemgetter("ts")``, gets the value
                only).

        Raises:
            InvalidProgramError: ``assigner`` is neither a TimestampAssigner nor a
                callable of one or two positional arguments.
        """
        return WatermarkStrategy(
            self.generator_factory, _as_timestamp_assigner(assigner), self.idle_timeout_ms
        )

    def with_idleness(self, idle_timeout: timedelta | int) -> WatermarkStrategy[T]:
        """Return a copy that marks a split idle after ``idle_timeout`` without events.

        See :class:`WatermarksWithIdleness`.

        Args:
            idle_timeout: a ``timedelta`` or int ms, ``> 0``.

        Raises:
            ConfigurationError: the timeout is not a positive duration.
        """
        timeout_ms = to_millis(idle_timeout, name="idle_timeout")
        if timeout_ms <= 0:
            msg = f"idle_timeout must be greater than zero, got {idle_timeout!r}"
            raise ConfigurationError(msg)
        return WatermarkStrategy(self.generator_factory, self.timestamp_assigner, timeout_ms)

    def create_watermark_generator(
        self, clock: Callable[[], int] | None = None
    ) -> WatermarkGenerator[T]:
        """Create a new generator for one source split, wrapped for idleness if configured.

        Args:
            clock: the clock (ms) for idleness detection; defaults to a monotonic clock.
                Ignored without :meth:`with_idleness`.

        Returns:
            A fresh generator; the runtime creates one per split.

        Raises:
            InvalidProgramError: the factory did not return a :class:`WatermarkGenerator`.
        """
        generator = self.generator_factory()
        if not isinstance(generator, WatermarkGenerator):
            msg = (
                f"the watermark generator factory {self.generator_factory!r} returned "
                f"{type(generator).__name__}, not a WatermarkGenerator"
            )
            raise InvalidProgramError(msg)
        if self.idle_timeout_ms is None:
            return generator
        return WatermarksWithIdleness(
            generator, self.idle_timeout_ms, _monotonic_ms if clock is None else clock
        )

    def create_timestamp_assigner(self) -> TimestampAssigner[T] | None:
        """Return the timestamp assigner, or ``None`` to keep the records' own timestamps."""
        return self.timestamp_assigner

    def has_timestamp_assigner(self) -> bool:
        """Return True if a timestamp assigner was set with :meth:`with_timestamp_assigner`."""
        return self.timestamp_assigner is not None

    def get_idle_timeout_ms(self) -> int | None:
        """Return the idleness timeout in ms, or ``None`` if idleness is not detected.

        :meth:`create_watermark_generator` already applies it; this is informational.
        """
        return self.idle_timeout_ms

    def timestamp_function(self) -> Callable[[T], int] | None:
        """Return a 1-argument ``value -> timestamp_ms`` function, if there is one.

        A fast path for the runtime (``list(map(f, values))`` per batch). It is not
        ``None`` only when the assigner was given as a 1-argument callable, i.e. it
        provably ignores the record timestamp; otherwise call
        :meth:`TimestampAssigner.extract_timestamp` per record.
        """
        assigner = self.timestamp_assigner
        if isinstance(assigner, _FunctionTimestampAssigner) and not assigner.takes_record_timestamp:
            function: Callable[[T], int] = assigner.function
            return function
        return None
