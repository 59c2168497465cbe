"""The benchmark workloads: each as a Strom pipeline and as the bare-Python-loop reference.

The input, constants and digests come from the peers' ``common.py`` and the bare loops
are the peers' ``ref_python`` functions themselves, so Strom's figures compare directly
with the peers' published ones (``../shared/bench/peers/README.md``).

Every implementation is a function ``data -> (digest_fn, digest_args)``: the caller times
the call and computes ``digest_fn(*digest_args)`` after the timer stops. All Strom jobs
run at parallelism 1 on the embedded local runtime with the default batch size (1,000)
and read the input through ``CollectionSource(data)`` (``from_collection`` would copy
the list).

- ``w1``: map ``amount * 1.1`` (a new tuple), filter ``> 55``, a sink counting and
  summing the kept records.
- ``w2``: key by user, running sum of ``amount`` emitting every update, a sink counting
  updates and keeping the last value per key.
- ``w3``: bounded-out-of-orderness (2 s) watermarks, 10 s tumbling event-time windows per
  user with count and sum, a sink collecting ``(user, window_start, count, sum)``. Needs
  ``strom.datastream.window``; reported as not available until it exists.
- ``map_filter_calls``: the map+filter acceptance figure. The pipeline of ``w1`` built
  from two named functions, measured against both the inline bare loop and a loop that
  calls the same two functions per record (the fairer reference: the same Python call
  cost, no framework).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from benchmarks import _peers
from strom.connectors import CollectionSource
from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
from strom.datastream import AggregateFunction, StreamExecutionEnvironment, WatermarkStrategy

__all__ = [
    "BARE",
    "CALLS",
    "STROM",
    "WORKLOADS",
    "Impl",
    "Record",
    "Workload",
    "common",
]

common, ref_python = _peers.load()

Record = tuple[int, int, float, str]
"""One input record: ``(user_id, event_time_ms, amount, word)``."""
DigestFn = Callable[..., dict[str, Any]]
RunResult = tuple[DigestFn, tuple[Any, ...]]
"""What an implementation returns: the digest function and its arguments."""

FACTOR: float = common.FACTOR
THRESHOLD: float = common.THRESHOLD
WINDOW_MS: int = common.WINDOW_MS
OOO_BOUND_MS: int = common.OOO_BOUND_MS

STROM = "strom"
BARE = "bare loop"
CALLS = "calls loop"

# ------------------------------------------------------------------------------ sinks


class _CountSumWriter(SinkWriter[Any, Any]):
    """Counts records and sums field 2, in arrival order (the loop's float sum exactly)."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0

    def write(self, value: Any, timestamp_ms: int | None) -> None:
        self.count += 1
        self.total += value[2]

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        self.count += len(values)
        total = self.total
        for v in values:
            total += v[2]
        self.total = total


class _LastPerKeyWriter(SinkWriter[Any, Any]):
    """Counts ``(key, value)`` updates and keeps the last value per key."""

    def __init__(self) -> None:
        self.count = 0
        self.last: dict[Any, Any] = {}

    def write(self, value: Any, timestamp_ms: int | None) -> None:
        self.count += 1
        self.last[value[0]] = value[1]

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        self.count += len(values)
        self.last.update(values)


class _RowsWriter(SinkWriter[Any, Any]):
    """Collects every record."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def write(self, value: Any, timestamp_ms: int | None) -> None:
        self.rows.append(value)

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        self.rows.extend(values)


class _BenchSink(Sink[Any, Any]):
    """A sink whose single (parallelism 1) writer the benchmark reads after the job."""

    def __init__(self, writer_type: Callable[[], SinkWriter[Any, Any]]) -> None:
        self.writer_type = writer_type
        self.writers: list[SinkWriter[Any, Any]] = []

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, Any]:
        w = self.writer_type()
        self.writers.append(w)
        return w

    def writer(self) -> Any:
        if len(self.writers) != 1:
            msg = f"expected one sink writer (parallelism 1), got {len(self.writers)}"
            raise RuntimeError(msg)
        return self.writers[0]


def _env() -> StreamExecutionEnvironment:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    return env


# ------------------------------------------------------------------------------ w1


def strom_w1(data: list[Record]) -> RunResult:
    """W1 on Strom: exactly the reference pipeline (lambdas)."""
    env = _env()
    sink = _BenchSink(_CountSumWriter)
    (
        env.from_source(CollectionSource(data), None, "w1")
        .map(lambda r: (r[0], r[1], r[2] * FACTOR, r[3]))
        .filter(lambda r: r[2] > THRESHOLD)
        .sink_to(sink)
    )
    env.execute("bench-w1")
    w = sink.writer()
    return common.digest_w1, (w.count, w.total)


# ------------------------------------------------------------------------------ w2


def _add_amounts(acc: tuple[int, float], value: tuple[int, float]) -> tuple[int, float]:
    return acc[0], acc[1] + value[1]


def strom_w2(data: list[Record]) -> RunResult:
    """W2 on Strom: ``map`` to ``(user, amount)``, ``key_by(0).reduce`` running sum.

    ``key_by(0)`` (an itemgetter) plus ``reduce`` measured 3.5x faster than
    ``key_by(0).sum(1)``; both emit ``(user, running_sum)`` per record.
    """
    env = _env()
    sink = _BenchSink(_LastPerKeyWriter)
    (
        env.from_source(CollectionSource(data), None, "w2")
        .map(lambda r: (r[0], r[2]))
        .key_by(0)
        .reduce(_add_amounts)
        .sink_to(sink)
    )
    env.execute("bench-w2")
    w = sink.writer()
    return common.digest_w2, (w.count, w.last)


# ------------------------------------------------------------------------------ w3


def window_api_unavailable() -> str | None:
    """Why the window API cannot be used, or None when ``strom.datastream.window`` imports."""
    try:
        importlib.import_module("strom.datastream.window")
    except ImportError as e:
        return f"strom.datastream.window does not import ({e})"
    return None


class _CountSum(AggregateFunction[Any, tuple[int, float], tuple[int, float]]):
    """``(count, sum of amount)`` per window."""

    def create_accumulator(self) -> tuple[int, float]:
        return 0, 0.0

    def add(self, value: Any, accumulator: tuple[int, float]) -> tuple[int, float]:
        return accumulator[0] + 1, accumulator[1] + value[2]

    def get_result(self, accumulator: tuple[int, float]) -> tuple[int, float]:
        return accumulator

    def merge(self, acc_a: tuple[int, float], acc_b: tuple[int, float]) -> tuple[int, float]:
        return acc_a[0] + acc_b[0], acc_a[1] + acc_b[1]


def _with_window_start() -> Any:
    """A ``ProcessWindowFunction`` emitting ``(key, window_start, count, sum)``."""
    from strom.datastream.window import ProcessWindowFunction

    class WithWindowStart(ProcessWindowFunction[Any, Any, Any, Any]):
        def process(
            self, key: Any, context: Any, elements: Iterable[tuple[int, float]]
        ) -> Iterable[tuple[Any, int, int, float]]:
            start = context.window().start
            for count, total in elements:
                yield key, start, count, total

    return WithWindowStart()


def strom_w3(data: list[Record]) -> RunResult:
    """W3 on Strom: event-time tumbling windows with ``aggregate`` + window function."""
    from strom.datastream.window import TumblingEventTimeWindows

    env = _env()
    sink = _BenchSink(_RowsWriter)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        timedelta(milliseconds=OOO_BOUND_MS)
    ).with_timestamp_assigner(lambda r: r[1])
    (
        env.from_source(CollectionSource(data), strategy, "w3")
        .key_by(0)
        .window(TumblingEventTimeWindows.of(timedelta(milliseconds=WINDOW_MS)))
        .aggregate(_CountSum(), window_function=_with_window_start())
        .sink_to(sink)
    )
    env.execute("bench-w3")
    return common.digest_w3, (sink.writer().rows,)


# ------------------------------------------------------------------ map_filter_calls


def scale(r: Record) -> Record:
    """The map function: ``amount * 1.1`` as a new tuple."""
    return (r[0], r[1], r[2] * FACTOR, r[3])


def keep(r: Record) -> bool:
    """The filter function: ``amount > 55``."""
    return r[2] > THRESHOLD


def strom_map_filter(data: list[Record]) -> RunResult:
    """The acceptance pipeline: ``map(scale).filter(keep)`` into a counting sink."""
    env = _env()
    sink = _BenchSink(_CountSumWriter)
    env.from_source(CollectionSource(data), None, "map_filter").map(scale).filter(keep).sink_to(
        sink
    )
    env.execute("bench-map-filter")
    w = sink.writer()
    return common.digest_w1, (w.count, w.total)


def calls_loop(data: list[Record]) -> RunResult:
    """The bare loop that calls the pipeline's two functions per record."""
    f, p = scale, keep
    n, s = 0, 0.0
    for r in data:
        m = f(r)
        if p(m):
            n += 1
            s += m[2]
    return common.digest_w1, (n, s)


# ------------------------------------------------------------------------------ registry


def _available() -> str | None:
    return None


@dataclass(frozen=True)
class Impl:
    """One way to run a workload.

    Attributes:
        key: ``STROM``, ``BARE`` or ``CALLS``.
        run: ``data -> (digest_fn, digest_args)``; the timed part.
        unavailable: returns why it cannot run here, or None; checked before the timer.
    """

    key: str
    run: Callable[[list[Record]], RunResult]
    unavailable: Callable[[], str | None] = _available


@dataclass(frozen=True)
class Workload:
    """A named workload and its implementations (the first reference is ``BARE``).

    Attributes:
        name: the ``--only`` name.
        description: one line for the report.
        impls: its implementations, in run order.
    """

    name: str
    description: str
    impls: tuple[Impl, ...]

    def impl(self, key: str) -> Impl:
        """The implementation called ``key``.

        Raises:
            KeyError: no such implementation.
        """
        for i in self.impls:
            if i.key == key:
                return i
        raise KeyError(key)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "w1",
            "map amount*1.1 (new tuple) -> filter > 55 -> counting sink",
            (Impl(STROM, strom_w1), Impl(BARE, ref_python.w1)),
        ),
        Workload(
            "w2",
            "key_by user -> running sum, every update -> sink (count, last per key)",
            (Impl(STROM, strom_w2), Impl(BARE, ref_python.w2)),
        ),
        Workload(
            "w3",
            "watermarks (2 s bound) -> key_by user -> 10 s tumbling event-time windows, "
            "count+sum -> collecting sink",
            (Impl(STROM, strom_w3, window_api_unavailable), Impl(BARE, ref_python.w3)),
        ),
        Workload(
            "map_filter_calls",
            "W1 from two named functions, vs the inline loop and a loop calling them",
            (Impl(STROM, strom_map_filter), Impl(BARE, ref_python.w1), Impl(CALLS, calls_loop)),
        ),
    )
}
"""Every workload by name, in report order."""
