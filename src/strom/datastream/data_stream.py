"""DataStream and KeyedStream: the fluent API that builds a job's transformations.

Every method appends a ``Transformation`` and returns a new stream; nothing runs until
``env.execute()``. Function arguments may be the Flink-style function classes from
``strom.datastream.functions`` or plain callables. ``name``, ``uid``,
``set_parallelism``, ``disable_chaining`` and ``start_new_chain`` configure the operator
that produced the stream and return the same stream (PyFlink style).
"""

from __future__ import annotations

import copy
import operator as _operator
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from strom._graph.partitioner import (
    BroadcastPartitioner,
    CustomPartitionerWrapper,
    ForwardPartitioner,
    KeyGroupStreamPartitioner,
    Partitioner,
    RebalancePartitioner,
    RescalePartitioner,
    ShufflePartitioner,
)
from strom._graph.stream_graph import validate_uid
from strom._graph.transformation import (
    ChainingStrategy,
    OneInputTransformation,
    OperatorSpec,
    PartitionTransformation,
    SideOutputTransformation,
    SinkTransformation,
    Transformation,
    UnionTransformation,
)
from strom.datastream.functions import (
    FilterFunction,
    FlatMapFunction,
    Function,
    KeyedProcessFunction,
    KeySelector,
    MapFunction,
    ProcessFunction,
    ReduceFunction,
)
from strom.datastream.output_tag import OutputTag
from strom.errors import DuplicateUidError, InvalidKeySelectorError, InvalidProgramError

if TYPE_CHECKING:
    from strom.connectors.sink import Sink
    from strom.datastream.environment import StreamExecutionEnvironment

__all__ = ["CloseableIterator", "DataStream", "DataStreamSink", "KeyedStream"]


def _check_function(fn: Any, cls: type[Function], method: str, api: str) -> Any:
    if isinstance(fn, cls) or (callable(fn) and not isinstance(fn, Function)):
        return fn
    if isinstance(fn, Function) and hasattr(fn, method):
        return fn
    msg = (
        f"{api}() needs a {cls.__name__} or a callable, got {type(fn).__name__} {fn!r}; "
        f"pass e.g. lambda value: ... or a subclass of {cls.__name__} implementing {method}()"
    )
    raise InvalidProgramError(msg)


def _key_selector(key: Any) -> Callable[[Any], Any]:
    """Normalise a key_by argument to a callable ``record -> key``."""
    if isinstance(key, KeySelector):
        return key.get_key
    if isinstance(key, bool):
        pass
    elif isinstance(key, int):
        return _operator.itemgetter(key)
    elif isinstance(key, str):
        return _field_getter(key)
    elif callable(key) and not isinstance(key, Function):
        return key
    msg = (
        f"key_by() needs a KeySelector, a callable record -> key, a tuple index (int) or a "
        f"field name (str); got {type(key).__name__} {key!r}. For a composite key return a "
        "tuple, e.g. key_by(lambda r: (r['origin'], r['carrier']))"
    )
    raise InvalidKeySelectorError(msg)


def _field_getter(field: int | str) -> Callable[[Any], Any]:
    """Getter for a tuple index, dict key or attribute name."""
    if isinstance(field, int):
        return _operator.itemgetter(field)

    def get(value: Any) -> Any:
        if isinstance(value, dict):
            return value[field]
        return getattr(value, field)

    return get


def _with_field(value: Any, field: int | str, new: Any) -> Any:
    """A copy of ``value`` with ``field`` replaced by ``new`` (tuple/list/dict/object)."""
    if isinstance(value, tuple):
        assert isinstance(field, int)
        if hasattr(value, "_replace"):  # namedtuple
            return value._replace(**{value._fields[field]: new})  # type: ignore[attr-defined]
        return (*value[:field], new, *value[field + 1 :])
    if isinstance(value, list):
        out = list(value)
        out[field] = new  # type: ignore[index]
        return out
    if isinstance(value, dict):
        d = dict(value)
        d[field] = new
        return d
    if isinstance(field, str):
        obj = copy.copy(value)
        setattr(obj, field, new)
        return obj
    msg = f"cannot set field {field!r} of {type(value).__name__}"
    raise TypeError(msg)


def _tuple_combiner(
    size: int, field: int, how: str, slow: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    """A compiled ``(acc, value) -> acc`` for plain tuples of ``size`` that combines one
    field and keeps the others of ``acc`` (no slicing, no per-call dispatch); any other
    value falls back to ``slow``."""
    op = {"sum": "a[{f}] + b[{f}]", "min": "min(a[{f}], b[{f}])",
          "max": "max(a[{f}], b[{f}])"}[how].format(f=field)
    items = ", ".join(op if i == field else f"a[{i}]" for i in range(size))
    src = (f"lambda a, b: ({items},) if type(b) is tuple and len(b) == {size} "
           "and type(a) is tuple else slow(a, b)")
    fn: Callable[[Any, Any], Any] = eval(src, {"slow": slow, "min": min, "max": max})
    return fn


class _FieldAggregator:
    """Reducer behind ``sum``/``min``/``max``: combines one field, keeps the rest of the
    accumulated record (Flink's ``SumAggregator``/``ComparableAggregator``).

    ``specialize`` compiles a combiner for plain tuples of a given size.
    """

    def __init__(self, field: int | str | None, how: str) -> None:
        self.field = field
        self.how = how
        self.get = _field_getter(field) if field is not None else None
        combiners: dict[str, Callable[[Any, Any], Any]] = {
            "sum": _operator.add, "min": min, "max": max,
        }
        self._combine = combiners[how]

    def specialize(self, sample: Any) -> Callable[[Any, Any], Any]:
        """A faster equivalent of ``self`` for records shaped like ``sample`` (used by the
        runtime's keyed reduce on its first batch)."""
        if type(sample) is tuple and isinstance(self.field, int) and self.field < len(sample):
            return _tuple_combiner(len(sample), self.field, self.how, self)
        return self

    def __call__(self, acc: Any, value: Any) -> Any:
        if self.get is None or (isinstance(acc, (int, float)) and self.field in (0, None)):
            return self._combine(acc, value)
        new = self._combine(self.get(acc), self.get(value))
        return _with_field(acc, self.field, new)  # type: ignore[arg-type]


class _ByAggregator:
    """Reducer behind ``min_by``/``max_by``: keeps the whole record with the extreme field."""

    def __init__(self, field: int | str, how: str, first: bool) -> None:
        self.get = _field_getter(field)
        self.how = how
        self.first = first

    def __call__(self, acc: Any, value: Any) -> Any:
        a, b = self.get(acc), self.get(value)
        if a == b:
            return acc if self.first else value
        if self.how == "min":
            return value if b < a else acc
        return value if b > a else acc


class DataStream:
    """A stream of records (Flink's ``DataStream``).

    Args:
        env: the owning environment.
        transformation: the transformation that produces this stream.
    """

    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation) -> None:
        self._env = env
        self._t = transformation

    # -- operator configuration -----------------------------------------------------------
    def _physical(self, what: str) -> Transformation:
        if self._t.is_virtual:
            msg = (
                f"{what}() must follow an operator, not a partitioning/union/side-output "
                f"step ('{self._t.name}'); call it on the operator before"
            )
            raise InvalidProgramError(msg)
        return self._t

    def name(self, name: str) -> DataStream:
        """Set the operator's display name (shown in the plan, metrics and logs)."""
        if not isinstance(name, str) or not name:
            msg = f"name() needs a non-empty str, got {name!r}"
            raise InvalidProgramError(msg)
        self._t.name = name
        return self

    def get_name(self) -> str:
        """The producing operator's name."""
        return self._t.name

    def uid(self, uid: str) -> DataStream:
        """Set the operator's stable, unique id (keys its state in snapshots).

        Raises:
            InvalidProgramError: malformed uid.
            DuplicateUidError: another operator of this environment has it.
        """
        t = self._physical("uid")
        validate_uid(uid)
        for other in self._env._transformations:
            if other is not t and other.uid == uid:
                msg = (
                    f"duplicate uid {uid!r}: already used by '{other.name}'; every operator "
                    "needs a unique uid"
                )
                raise DuplicateUidError(msg)
        t.uid = uid
        return self

    def set_uid_hash(self, uid_hash: str) -> DataStream:
        """Not supported: use :meth:`uid`."""
        msg = "set_uid_hash() is not supported; use uid()"
        raise InvalidProgramError(msg)

    def set_parallelism(self, parallelism: int) -> DataStream:
        """Set the operator's parallelism (>= 1)."""
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            msg = f"set_parallelism() needs an int >= 1, got {parallelism!r}"
            raise InvalidProgramError(msg)
        self._physical("set_parallelism").parallelism = parallelism
        return self

    def set_max_parallelism(self, max_parallelism: int) -> DataStream:
        """Set the operator's max parallelism (number of key groups, 1..32768)."""
        if (
            isinstance(max_parallelism, bool)
            or not isinstance(max_parallelism, int)
            or not 1 <= max_parallelism <= 32768
        ):
            msg = f"set_max_parallelism() needs an int in [1, 32768], got {max_parallelism!r}"
            raise InvalidProgramError(msg)
        self._physical("set_max_parallelism").max_parallelism = max_parallelism
        return self

    def get_parallelism(self) -> int:
        """The operator's parallelism (the environment default if unset)."""
        return self._t.parallelism or self._env.get_parallelism()

    def disable_chaining(self) -> DataStream:
        """Never chain this operator with its neighbours."""
        self._physical("disable_chaining").chaining = ChainingStrategy.NEVER
        return self

    def start_new_chain(self) -> DataStream:
        """Start a new chain at this operator (do not chain to the predecessor)."""
        self._physical("start_new_chain").chaining = ChainingStrategy.HEAD
        return self

    def slot_sharing_group(self, name: str) -> DataStream:
        """Accepted for PyFlink compatibility; slot sharing is automatic in Strom."""
        return self

    def get_execution_environment(self) -> StreamExecutionEnvironment:
        """The owning environment."""
        return self._env

    # -- transformations ------------------------------------------------------------------
    def _one_input(self, name: str, spec: OperatorSpec, key_selector: Any = None) -> Transformation:
        t = OneInputTransformation(
            name=name, inputs=[self._t], operator=spec, key_selector=key_selector
        )
        self._env._add(t)
        return t

    def map(
        self, func: MapFunction[Any, Any] | Callable[[Any], Any], output_type: Any = None
    ) -> DataStream:
        """Apply ``func`` to every record (one out per one in)."""
        fn = _check_function(func, MapFunction, "map", "map")
        return DataStream(self._env, self._one_input("Map", OperatorSpec("map", fn)))

    def flat_map(
        self, func: FlatMapFunction[Any, Any] | Callable[[Any], Any], output_type: Any = None
    ) -> DataStream:
        """Apply ``func`` to every record; it yields (or returns an iterable of) outputs."""
        fn = _check_function(func, FlatMapFunction, "flat_map", "flat_map")
        return DataStream(self._env, self._one_input("FlatMap", OperatorSpec("flat_map", fn)))

    def filter(self, func: FilterFunction[Any] | Callable[[Any], bool]) -> DataStream:
        """Keep the records for which ``func`` returns true."""
        fn = _check_function(func, FilterFunction, "filter", "filter")
        return DataStream(self._env, self._one_input("Filter", OperatorSpec("filter", fn)))

    def process(
        self, func: ProcessFunction[Any, Any] | Callable[[Any, Any], Any], output_type: Any = None
    ) -> DataStream:
        """Run a ``ProcessFunction``: ``process_element(value, ctx)`` yields outputs and may
        emit to side outputs with ``ctx.output(tag, value)``."""
        fn = _check_function(func, ProcessFunction, "process_element", "process")
        return DataStream(self._env, self._one_input("Process", OperatorSpec("process", fn)))

    def assign_timestamps_and_watermarks(self, watermark_strategy: Any) -> DataStream:
        """Assign event timestamps and generate watermarks from here on (Flink's
        ``assignTimestampsAndWatermarks``); upstream watermarks are replaced.

        Prefer a strategy on ``from_source``: it tracks watermarks per source split.

        Raises:
            InvalidProgramError: not a ``WatermarkStrategy``.
        """
        from strom.datastream.watermark import WatermarkStrategy

        if not isinstance(watermark_strategy, WatermarkStrategy):
            msg = (
                "assign_timestamps_and_watermarks() needs a WatermarkStrategy, e.g. "
                "WatermarkStrategy.for_bounded_out_of_orderness(timedelta(seconds=2))"
                ".with_timestamp_assigner(lambda e: e['ts'])"
            )
            raise InvalidProgramError(msg)
        spec = OperatorSpec("timestamps", params={"strategy": watermark_strategy})
        return DataStream(self._env, self._one_input("Timestamps/Watermarks", spec))

    def key_by(
        self,
        key_selector: KeySelector[Any, Any] | Callable[[Any], Any] | int | str,
        key_type: Any = None,
    ) -> KeyedStream:
        """Partition the stream by key (Flink's ``keyBy``): records with equal keys go to
        the same subtask, which holds their keyed state.

        Args:
            key_selector: a ``KeySelector``, a callable ``record -> key``, a tuple index
                or a field name. Keys must be str, bytes, int, float, bool, None or tuples.

        Raises:
            InvalidKeySelectorError: the argument cannot select a key.
        """
        selector = _key_selector(key_selector)
        t = PartitionTransformation(
            name="KeyBy",
            inputs=[self._t],
            partitioner=KeyGroupStreamPartitioner(key_selector=selector),
        )
        self._env._add(t)
        return KeyedStream(self._env, t, selector)

    def _partition(self, name: str, partitioner: Partitioner) -> DataStream:
        t = PartitionTransformation(name=name, inputs=[self._t], partitioner=partitioner)
        self._env._add(t)
        return DataStream(self._env, t)

    def forward(self) -> DataStream:
        """Send subtask i's records to subtask i of the next operator."""
        return self._partition("Forward", ForwardPartitioner())

    def rebalance(self) -> DataStream:
        """Distribute records round-robin over all next subtasks."""
        return self._partition("Rebalance", RebalancePartitioner())

    def rescale(self) -> DataStream:
        """Round-robin over a local subset of the next subtasks."""
        return self._partition("Rescale", RescalePartitioner())

    def shuffle(self) -> DataStream:
        """Send each record to a uniformly random next subtask."""
        return self._partition("Shuffle", ShufflePartitioner())

    def broadcast(self, *broadcast_state_descriptors: Any) -> Any:
        """Without arguments: send every record to every next subtask. With
        ``MapStateDescriptor`` s: a ``BroadcastStream`` for ``connect`` (broadcast state)."""
        if broadcast_state_descriptors:
            from strom.datastream.connected_streams import BroadcastStream

            return BroadcastStream(self, broadcast_state_descriptors)
        return self._partition("Broadcast", BroadcastPartitioner())

    def connect(self, other: Any) -> Any:
        """Connect with another stream (``ConnectedStreams``) or a ``BroadcastStream``
        (``BroadcastConnectedStream``)."""
        from strom.datastream.connected_streams import (
            BroadcastConnectedStream,
            BroadcastStream,
            ConnectedStreams,
        )

        if isinstance(other, BroadcastStream):
            return BroadcastConnectedStream(self, other)
        if not isinstance(other, DataStream):
            msg = f"connect() needs a DataStream or BroadcastStream, got {other!r}"
            raise InvalidProgramError(msg)
        return ConnectedStreams(self, other)

    def join(self, other: DataStream) -> Any:
        """Window join: ``.where(k1).equal_to(k2).window(assigner).apply(join_fn)``."""
        from strom.datastream.connected_streams import JoinedStreams

        return JoinedStreams(self, other)

    def co_group(self, other: DataStream) -> Any:
        """Window co-group: ``.where(k1).equal_to(k2).window(assigner).apply(fn)``."""
        from strom.datastream.connected_streams import CoGroupedStreams

        return CoGroupedStreams(self, other)

    def partition_custom(
        self,
        partitioner: Callable[[Any, int], int],
        key_selector: Callable[[Any], Any] | KeySelector[Any, Any],
    ) -> DataStream:
        """Route by ``partitioner(key, num_partitions) -> index``."""
        if not callable(partitioner):
            msg = "partition_custom() needs a callable partitioner(key, num_partitions) -> int"
            raise InvalidProgramError(msg)
        return self._partition(
            "Custom",
            CustomPartitionerWrapper(
                partitioner=partitioner, key_selector=_key_selector(key_selector)
            ),
        )

    def union(self, *streams: DataStream) -> DataStream:
        """Merge this stream with others of the same type."""
        for s in streams:
            if not isinstance(s, DataStream):
                msg = f"union() takes DataStreams, got {type(s).__name__}"
                raise InvalidProgramError(msg)
            if s._env is not self._env:
                msg = "union() of streams from different environments"
                raise InvalidProgramError(msg)
        t = UnionTransformation(name="Union", inputs=[self._t, *(s._t for s in streams)])
        self._env._add(t)
        return DataStream(self._env, t)

    def window_all(self, window_assigner: Any) -> Any:
        """Windows over the whole stream (not keyed), evaluated by one subtask.

        Returns:
            An ``AllWindowedStream``.
        """
        from strom.datastream.windowed_stream import AllWindowedStream

        return AllWindowedStream(self.key_by(_constant_key), window_assigner)

    def count_window_all(self, size: int, slide: int | None = None) -> Any:
        """Count windows over the whole stream (see ``KeyedStream.count_window``)."""
        from strom.datastream.windowed_stream import AllWindowedStream

        return _count_window(AllWindowedStream, self.key_by(_constant_key), size, slide)

    def get_side_output(self, output_tag: OutputTag) -> DataStream:
        """The side output ``output_tag`` of the operator that produced this stream."""
        if not isinstance(output_tag, OutputTag):
            msg = f"get_side_output() needs an OutputTag, got {output_tag!r}"
            raise InvalidProgramError(msg)
        self._physical("get_side_output")
        t = SideOutputTransformation(
            name=f"SideOutput({output_tag.tag_id})", inputs=[self._t], tag_id=output_tag.tag_id
        )
        self._env._add(t)
        return DataStream(self._env, t)

    # -- sinks ----------------------------------------------------------------------------
    def sink_to(self, sink: Sink[Any, Any]) -> DataStreamSink:
        """Write the stream to a ``Sink`` (Flink's ``sinkTo``)."""
        from strom.connectors.sink import Sink

        if not isinstance(sink, Sink):
            msg = f"sink_to() needs a strom.connectors.sink.Sink, got {type(sink).__name__}"
            raise InvalidProgramError(msg)
        t = SinkTransformation(
            name=type(sink).__name__,
            inputs=[self._t],
            operator=OperatorSpec("sink", params={"sink": sink}),
        )
        self._env._add(t)
        return DataStreamSink(self._env, t)

    def print(self, sink_identifier: str | None = None) -> DataStreamSink:
        """Print every record to stdout (``"identifier:subtask> record"`` as Flink)."""
        from strom.connectors.print_sink import PrintSink

        s = self.sink_to(PrintSink(sink_identifier))
        s._t.name = "Print to Std. Out"
        return s

    def execute_and_collect(
        self, job_execution_name: str | None = None, limit: int | None = None
    ) -> CloseableIterator:
        """Run the job and iterate over this stream's records (PyFlink's
        ``execute_and_collect``).

        Args:
            job_execution_name: the job's name.
            limit: stop (and cancel the job) after this many records; None for all.

        Returns:
            An iterator; close it (or use ``with``) to cancel an unfinished job.

        Raises:
            JobExecutionError: from iteration, if the job fails.
        """
        from strom._executors.collect import CollectSink

        if limit is not None and (not isinstance(limit, int) or limit < 0):
            msg = f"limit must be an int >= 0 or None, got {limit!r}"
            raise InvalidProgramError(msg)
        sink = CollectSink()
        t = SinkTransformation(
            name="Collect", inputs=[self._t], operator=OperatorSpec("sink", params={"sink": sink})
        )
        self._env._add(t)
        client = self._env.execute_async(job_execution_name or "collect")
        return CloseableIterator(sink.iterate(client, limit), client)


def _constant_key(value: Any) -> int:
    """The key of ``window_all``: every record in one group."""
    return 0


def _count_window(cls: Any, keyed: KeyedStream, size: int, slide: int | None) -> Any:
    from strom.datastream.window import CountEvictor, CountTrigger, GlobalWindows, PurgingTrigger

    for n, what in ((size, "size"), (slide, "slide")):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            msg = f"count_window() {what} must be an int >= 1, got {n!r}"
            raise InvalidProgramError(msg)
    ws = cls(keyed, GlobalWindows.create())
    if slide is None:
        return ws.trigger(PurgingTrigger.of(CountTrigger.of(size)))
    return ws.evictor(CountEvictor.of(size)).trigger(CountTrigger.of(slide))


class CloseableIterator(Iterator[Any]):
    """Iterator over collected results; ``close()`` cancels the job if still running.

    Args:
        it: the underlying iterator.
        client: the job's client.
    """

    def __init__(self, it: Iterator[Any], client: Any) -> None:
        self._it = it
        self.job_client = client

    def __iter__(self) -> CloseableIterator:
        return self

    def __next__(self) -> Any:
        return next(self._it)

    def close(self) -> None:
        """Stop iterating; cancel the job if it still runs."""
        close = getattr(self._it, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> CloseableIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DataStreamSink:
    """The end of a stream written to a sink (Flink's ``DataStreamSink``)."""

    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation) -> None:
        self._env = env
        self._t = transformation

    def name(self, name: str) -> DataStreamSink:
        """Set the sink's display name."""
        DataStream(self._env, self._t).name(name)
        return self

    def uid(self, uid: str) -> DataStreamSink:
        """Set the sink's uid."""
        DataStream(self._env, self._t).uid(uid)
        return self

    def set_parallelism(self, parallelism: int) -> DataStreamSink:
        """Set the sink's parallelism."""
        DataStream(self._env, self._t).set_parallelism(parallelism)
        return self

    def disable_chaining(self) -> DataStreamSink:
        """Never chain the sink."""
        self._t.chaining = ChainingStrategy.NEVER
        return self


class KeyedStream(DataStream):
    """A stream partitioned by key (Flink's ``KeyedStream``).

    Args:
        env: the environment.
        transformation: the key_by partition transformation.
        key_selector: ``record -> key``.
    """

    def __init__(
        self,
        env: StreamExecutionEnvironment,
        transformation: Transformation,
        key_selector: Callable[[Any], Any],
    ) -> None:
        super().__init__(env, transformation)
        self._key_selector = key_selector

    def get_key_selector(self) -> Callable[[Any], Any]:
        """The ``record -> key`` function."""
        return self._key_selector

    def _keyed(self, name: str, spec: OperatorSpec) -> DataStream:
        return DataStream(self._env, self._one_input(name, spec, self._key_selector))

    def reduce(self, func: ReduceFunction[Any] | Callable[[Any, Any], Any]) -> DataStream:
        """Running reduce per key: ``func(accumulated, value) -> accumulated``.

        STREAMING emits every updated value; BATCH emits the final value per key.
        """
        fn = _check_function(func, ReduceFunction, "reduce", "reduce")
        return self._keyed("Reduce", OperatorSpec("keyed_reduce", fn))

    def _aggregate(self, name: str, reducer: Any) -> DataStream:
        return self._keyed(name, OperatorSpec("keyed_reduce", reducer))

    @staticmethod
    def _check_field(field: Any, api: str) -> int | str:
        if isinstance(field, bool) or not isinstance(field, (int, str)):
            msg = (
                f"{api}() needs a field: a tuple index (int), or a dict key / attribute name "
                f"(str); got {field!r}"
            )
            raise InvalidProgramError(msg)
        return field

    def sum(self, position_to_sum: int | str = 0) -> DataStream:
        """Running sum of a field per key; other fields come from the key's first record.

        On a stream of plain numbers, sums the numbers themselves.
        """
        f = self._check_field(position_to_sum, "sum")
        return self._aggregate("Sum", _FieldAggregator(f, "sum"))

    def min(self, position_to_min: int | str = 0) -> DataStream:
        """Running minimum of a field per key (other fields from the first record)."""
        f = self._check_field(position_to_min, "min")
        return self._aggregate("Min", _FieldAggregator(f, "min"))

    def max(self, position_to_max: int | str = 0) -> DataStream:
        """Running maximum of a field per key (other fields from the first record)."""
        f = self._check_field(position_to_max, "max")
        return self._aggregate("Max", _FieldAggregator(f, "max"))

    def min_by(self, position_to_min_by: int | str = 0, first: bool = True) -> DataStream:
        """Per key, the whole record with the smallest field (ties: the first if ``first``)."""
        f = self._check_field(position_to_min_by, "min_by")
        return self._aggregate("MinBy", _ByAggregator(f, "min", first))

    def max_by(self, position_to_max_by: int | str = 0, first: bool = True) -> DataStream:
        """Per key, the whole record with the largest field (ties: the first if ``first``)."""
        f = self._check_field(position_to_max_by, "max_by")
        return self._aggregate("MaxBy", _ByAggregator(f, "max", first))

    def process(  # type: ignore[override]
        self,
        func: KeyedProcessFunction[Any, Any, Any] | Callable[[Any, Any], Any],
        output_type: Any = None,
    ) -> DataStream:
        """Run a ``KeyedProcessFunction`` with keyed state and the current key."""
        fn = _check_function(func, KeyedProcessFunction, "process_element", "process")
        if isinstance(func, ProcessFunction):
            msg = "KeyedStream.process() needs a KeyedProcessFunction, got a ProcessFunction"
            raise InvalidProgramError(msg)
        return self._keyed("KeyedProcess", OperatorSpec("keyed_process", fn))

    def window(self, window_assigner: Any) -> Any:
        """Cut each key's records into windows (Flink's ``window``).

        Args:
            window_assigner: e.g. ``TumblingEventTimeWindows.of(timedelta(seconds=10))``.

        Returns:
            A ``WindowedStream``; finish it with ``reduce``/``aggregate``/``process``.
        """
        from strom.datastream.windowed_stream import WindowedStream

        return WindowedStream(self, window_assigner)

    def interval_join(self, other: KeyedStream) -> Any:
        """Interval join with another keyed stream:
        ``.between(lower, upper).process(ProcessJoinFunction)``."""
        from strom.datastream.connected_streams import IntervalJoin

        if not isinstance(other, KeyedStream):
            msg = "interval_join() needs a KeyedStream (call key_by on the other stream)"
            raise InvalidProgramError(msg)
        return IntervalJoin(self, other)

    def count_window(self, size: int, slide: int | None = None) -> Any:
        """Windows of ``size`` records per key, every ``slide`` records if given
        (GlobalWindows + CountTrigger [+ CountEvictor], as Flink)."""
        from strom.datastream.windowed_stream import WindowedStream

        return _count_window(WindowedStream, self, size, slide)

    def _physical(self, what: str) -> Transformation:
        msg = (
            f"{what}() cannot be applied to key_by() itself; call it on the operator "
            "before key_by() or after the keyed operation"
        )
        raise InvalidProgramError(msg)
