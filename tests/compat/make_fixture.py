"""The job of the savepoint compatibility fixture, and the script that made the fixture.

``tests/compat/savepoint-v1/`` holds savepoints written by Strom's savepoint format
version 1 (``_metadata`` version 1, state files with envelope version 1), one taken with
the heap backend and one with the RocksDB backend, of the job :func:`build_job`:

- a FileSource over :data:`INPUT_URL` (an in-memory fsspec file, so the path stored in
  the split state is the same on every machine), stopped mid-file: the savepoint holds
  the split's position and the enumerator state;
- a ``KeyedProcessFunction`` with a ``ValueState`` (count), a ``ListState`` (last three
  values), a ``MapState`` (sum per second) and event-time timers (one per key and
  second);
- tumbling one-second event-time windows with an aggregate and a process window
  function, with window contents pending at the savepoint.

Each fixture directory also has ``expected.json``: what restoring it produced when it
was made (the outputs are deterministic given the savepoint). ``test_savepoint_compat``
restores both fixtures with both backends and requires exactly these results.

The fixture is committed and must never be regenerated to make a failing test pass: a
failure means the savepoint format or a class it references changed incompatibly. Keep
old savepoints readable (a migration on restore), or, for a deliberate format break,
bump the format version, add ``savepoint-v2`` next to this one and document the break.

Run ``python tests/compat/make_fixture.py [OUT_DIR]`` to write a new fixture (default:
``tests/compat/savepoint-v<METADATA_VERSION>``; it refuses to overwrite).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import fsspec

from strom.connectors.file import FileSource, StreamFormat
from strom.datastream import (
    AggregateFunction,
    KeyedProcessFunction,
    ListStateDescriptor,
    MapFunction,
    MapStateDescriptor,
    RuntimeContext,
    StreamExecutionEnvironment,
    ValueStateDescriptor,
    WatermarkStrategy,
)
from strom.datastream.window import ProcessWindowFunction, TumblingEventTimeWindows
from strom.testing import TestingSink

INPUT_URL = "memory://strom-compat-fixture/events.csv"
"""The input file; the split state stores this path."""

N_EVENTS = 300
KEYS = ("a", "b", "c")
STOP_AFTER = 120
"""The fixture run stops with a savepoint once this many events were parsed."""

BACKENDS = ("hashmap", "rocksdb")


def events() -> list[tuple[str, int, int]]:
    """``(key, event time ms, value)``: 25 ms apart, so 40 events per one-second window."""
    return [(KEYS[i % len(KEYS)], i * 25, i) for i in range(N_EVENTS)]


def write_input() -> None:
    """Create the input file in the process's in-memory filesystem."""
    fs = fsspec.filesystem("memory")
    with fs.open(INPUT_URL.removeprefix("memory://"), "w") as f:
        f.write("".join(f"{k},{ts},{v}\n" for k, ts, v in events()))


_REACHED: threading.Event | None = None
"""Set by :func:`make_savepoint`: :class:`Parse` signals it once :data:`STOP_AFTER`
events were parsed (and then slows down so the stop comes mid-file)."""


class Parse(MapFunction):
    """``"a,25,1"`` -> ``("a", 25, 1)``; throttled in the fixture run (see
    :data:`_REACHED`)."""

    def __init__(self) -> None:
        self.seen = 0

    def map(self, value: str) -> tuple[str, int, int]:
        key, ts, v = value.split(",")
        self.seen += 1
        reached = _REACHED
        if reached is not None:  # slow enough for periodic watermarks to fire some timers
            if self.seen >= STOP_AFTER:
                reached.set()
            time.sleep(0.005)
        return key, int(ts), int(v)


class Stateful(KeyedProcessFunction):
    """Keyed value, list and map state plus event-time timers.

    Emits ``("element", key, ts, count, recent)`` per event and ``("timer", key, ts,
    sum)`` when the timer at the end of each (key, second) fires.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", int))
        self.recent = runtime_context.get_list_state(ListStateDescriptor("recent", int))
        self.sums = runtime_context.get_map_state(MapStateDescriptor("sums", int, int))

    def process_element(self, value: Any, ctx: Any) -> Any:
        key, ts, v = value
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        recent = [*self.recent.get(), v][-3:]
        self.recent.update(recent)
        second = ts // 1000
        self.sums.put(second, (self.sums.get(second) or 0) + v)
        ctx.timer_service().register_event_time_timer(second * 1000 + 999)
        yield "element", key, ts, count, tuple(recent)

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        second = timestamp // 1000
        total = self.sums.get(second)
        self.sums.remove(second)
        yield "timer", ctx.get_current_key(), timestamp, total


class CountSum(AggregateFunction):
    """``(count, sum of values)`` of a window."""

    def create_accumulator(self) -> list[int]:
        return [0, 0]

    def add(self, value: Any, accumulator: list[int]) -> list[int]:
        accumulator[0] += 1
        accumulator[1] += value[2]
        return accumulator

    def get_result(self, accumulator: list[int]) -> tuple[int, int]:
        return accumulator[0], accumulator[1]

    def merge(self, a: list[int], b: list[int]) -> list[int]:
        return [a[0] + b[0], a[1] + b[1]]


class WithWindow(ProcessWindowFunction):
    """``("window", key, start, count, sum)``."""

    def process(self, key: Any, context: Any, elements: Any) -> Any:
        for count, total in elements:
            yield "window", key, context.window().start, count, total


def build_job(env: StreamExecutionEnvironment, stateful: TestingSink, windows: TestingSink) -> None:
    """The fixture's job (the uids are what the savepoint's state is mapped by)."""
    source = (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), INPUT_URL)
        .set_batch_size(10)  # small batches: a savepoint can come between any two
        .build()
    )
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(
        lambda event, _ts: event[1]
    )
    keyed = (
        env.from_source(source, None, "events")
        .uid("events")
        .map(Parse())
        .uid("parse")
        .assign_timestamps_and_watermarks(strategy)
        .uid("timestamps")
        .key_by(lambda e: e[0])
    )
    keyed.process(Stateful()).uid("stateful").sink_to(stateful).uid("stateful-sink")
    (
        keyed.window(TumblingEventTimeWindows.of(1000))
        .aggregate(CountSum(), WithWindow())
        .uid("windows")
        .sink_to(windows)
        .uid("windows-sink")
    )


def restore_and_run(path: str, backend: str) -> dict[str, list[Any]]:
    """Restore the job from the savepoint at ``path`` on ``backend``, run it to the end
    of the input; return the sorted outputs (what ``expected.json`` holds)."""
    write_input()
    env = StreamExecutionEnvironment.get_execution_environment()
    env.configure("state.backend", backend)
    env.set_savepoint_restore(path)
    stateful, windows = TestingSink(), TestingSink()
    build_job(env, stateful, windows)
    env.execute("compat fixture (restored)")
    # as JSON values (tuples become lists), sorted: the order of outputs is not defined
    outputs = json.loads(json.dumps({"stateful": stateful.results, "windows": windows.results}))
    return {name: sorted(rows, key=repr) for name, rows in outputs.items()}


def make_savepoint(backend: str, target: Path) -> None:
    """Run the job on ``backend`` until :data:`STOP_AFTER` events, stop it with a
    savepoint and move the savepoint to ``target`` (savepoints are relocatable)."""
    global _REACHED
    write_input()
    work = Path(tempfile.mkdtemp(prefix="strom-compat-"))
    _REACHED = reached = threading.Event()
    try:
        env = StreamExecutionEnvironment.get_execution_environment()
        env.configure("state.backend", backend)
        env.enable_checkpointing(60_000)  # savepoints only
        env.get_checkpoint_config().set_checkpoint_storage(str(work / "chk"))
        build_job(env, TestingSink(), TestingSink())
        client = env.execute_async("compat fixture")
        if not reached.wait(30):
            msg = "the fixture job did not reach the stop point"
            raise RuntimeError(msg)
        path = client.stop_with_savepoint(str(work / "savepoints"), timeout=30)
        client.get_job_execution_result(timeout=30)
        shutil.copytree(path, target)
    finally:
        _REACHED = None
        shutil.rmtree(work, ignore_errors=True)


def _expected_json(expected: dict[str, list[Any]]) -> str:
    """JSON with one output record per line (readable, small diffs)."""
    parts = []
    for name, rows in expected.items():
        body = ",\n".join("  " + json.dumps(row) for row in rows)
        parts.append(f' "{name}": [\n{body}\n ]')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: list[str]) -> None:
    """Write a new fixture directory (see the module docstring)."""
    from strom._checkpoint.storage import METADATA_VERSION

    here = Path(__file__).resolve().parent
    out = Path(argv[0]) if argv else here / f"savepoint-v{METADATA_VERSION}"
    if any((out / backend).exists() for backend in BACKENDS):
        sys.exit(f"{out} exists; a committed fixture must never be regenerated")
    for backend in BACKENDS:
        target = out / backend
        make_savepoint(backend, target)
        expected = restore_and_run(str(target), "hashmap")
        assert expected == restore_and_run(str(target), "rocksdb")
        (target / "expected.json").write_text(_expected_json(expected))
        print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
