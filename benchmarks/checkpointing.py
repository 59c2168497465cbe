"""Checkpointing overhead and the full-size fault-injection run (issue 6).

``python -m benchmarks.checkpointing [--n N] [--runs R] [--parallelism 1,2]
[--backends hashmap,rocksdb] [--fault]`` prints:

- the **W3 windowed workload** (``benchmarks/workloads.py``: bounded-out-of-orderness
  (2 s) watermarks, 10 s tumbling event-time windows per user with count and sum) with
  checkpoints every 1 s against the same job without checkpoints, per state backend and
  parallelism: records/s (median of ``--runs``), the ratio, the number of checkpoints,
  their median and maximum duration (trigger to ``_metadata`` written) and their median
  size. At parallelism 1 the job runs in-process on the peers' W3 data
  (``CollectionSource``, as in ``python -m benchmarks``); at parallelism 2 it runs on a
  MiniCluster of 2 TaskManager processes and reads W3-shaped records from a
  ``DataGeneratorSource`` (see :class:`W3Records`), because a ``CollectionSource`` would
  ship the whole data set to every TaskManager. Wall time includes start-up (and, at p2,
  deployment), as ``env.execute()`` costs. Every run's window results are counted and
  summed, and the digests must agree between the runs with and without checkpoints.
  After one unmeasured warm-up run (a tenth of the records), runs alternate off/on
  (off first in even pairs, on first in odd ones) after a full garbage collection each,
  so background load and collector state hit both alike; besides the ratio of the
  median rates the table gives the range of the per-pair ratios and the ratio of the
  median CPU times (this process plus, at parallelism 2, the TaskManager processes, read
  from ``/proc``), which other processes on the machine disturb much less than wall
  time. The load average is printed before and after.
- with ``--fault``: the fault-injection job of ``tests/checkpoint`` at full size (N =
  1,000,000, parallelism 2, checkpoints every 300 ms, three SIGKILLs of random
  TaskManagers) per backend, checked against the exact expected output, with its time
  against a failure-free run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.workloads import OOO_BOUND_MS, WINDOW_MS, _CountSum, _with_window_start, common
from strom.connectors import CollectionSource, DataGeneratorSource
from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
from strom.datastream import (
    IntCounter,
    MapFunction,
    RestartStrategies,
    RuntimeContext,
    StreamExecutionEnvironment,
    WatermarkStrategy,
)

INTERVAL_MS = 1000
_MASK = (1 << 64) - 1
_WORDS: list[str] = common.vocabulary()


class W3Records:
    """``i -> (user, event time ms, amount, word)`` shaped like the peers' W3 data.

    At parallelism 2 reader 0 reads indices ``[0, n/2)`` and reader 1 ``[n/2, n)``; record
    ``i`` takes the event time of position ``2i`` or ``2(i - n/2) + 1`` of the W3 stream,
    so both readers advance through event time together (as one ordered stream would)
    and window state stays as small as at parallelism 1.

    Args:
        n: number of records.
    """

    def __init__(self, n: int) -> None:
        self.half = n // 2

    def __call__(self, i: int) -> tuple[int, int, float, str]:
        pos = 2 * i if i < self.half else 2 * (i - self.half) + 1
        h = (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK
        h ^= h >> 31
        h = (h * 0xBF58476D1CE4E5B9) & _MASK
        h ^= h >> 29
        return (
            h % common.NUM_USERS,
            common.T0_MS + pos // common.RECS_PER_MS - (h >> 20) % (common.MAX_DISORDER_MS + 1),
            ((h >> 40) % 10_000) / 100,
            _WORDS[(h >> 14) % common.VOCAB_SIZE],
        )


class Digest(MapFunction[Any, Any]):
    """Counts window results and sums their counts into accumulators."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.windows = IntCounter()
        self.records = IntCounter()
        runtime_context.add_accumulator("windows", self.windows)
        runtime_context.add_accumulator("records", self.records)

    def map(self, value: Any) -> Any:
        self.windows.add(1)
        self.records.add(value[2])
        return value


class _Discard(SinkWriter[Any, None]):
    def write(self, value: Any, timestamp_ms: int | None) -> None:
        pass

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        pass


class DiscardSink(Sink[Any, None]):
    """Drops every record."""

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
        return _Discard()


def _timestamp(r: Any, _previous: int | None = None) -> int:
    return int(r[1])


def _user(r: Any) -> int:
    return int(r[0])


@dataclass
class Run:
    """One measured job."""

    seconds: float
    windows: int
    records: int
    durations_ms: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, s) of this process and of the processes ``pids`` (their
    ``/proc/<pid>/stat``; 0 for a process that cannot be read, e.g. not on Linux)."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def checkpoint_stats(chk: Path) -> tuple[list[float], list[int]]:
    """Durations (``_metadata`` written minus trigger time, ms) and sizes (bytes) of every
    retained checkpoint under ``chk``."""
    durations: list[float] = []
    sizes: list[int] = []
    for meta in sorted(chk.glob("*/chk-*/_metadata")):
        info = json.loads(meta.read_text())
        durations.append(meta.stat().st_mtime * 1000 - int(info["timestamp_ms"]))
        sizes.append(sum(f.stat().st_size for f in meta.parent.iterdir() if f.is_file()))
    return durations, sizes


def w3_run(data: list[Any] | None, n: int, parallelism: int, backend: str,
           checkpoints: bool, pids: list[int] | None = None) -> Run:
    """Run W3 once; ``data`` (p1) or generated records (p2); ``pids``: the TaskManager
    processes whose CPU time counts too."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    env.configure("state.backend", backend)
    tmp = Path(tempfile.mkdtemp(prefix="strom-bench-chk-"))
    if checkpoints:
        env.enable_checkpointing(INTERVAL_MS)
        cfg = env.get_checkpoint_config()
        cfg.set_checkpoint_storage(str(tmp))
        cfg.set_num_retained_checkpoints(100_000)  # keep all: sizes and durations
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        timedelta(milliseconds=OOO_BOUND_MS)
    ).with_timestamp_assigner(_timestamp)
    source: Any = CollectionSource(data) if data is not None else DataGeneratorSource(
        W3Records(n), n
    )
    from strom.datastream.window import TumblingEventTimeWindows

    (
        env.from_source(source, strategy, "w3").uid("w3")
        .key_by(_user)
        .window(TumblingEventTimeWindows.of(timedelta(milliseconds=WINDOW_MS)))
        .aggregate(_CountSum(), window_function=_with_window_start()).uid("windows")
        .map(Digest()).uid("digest")
        .sink_to(DiscardSink())
    )
    c0 = cpu_seconds(pids or [])
    t0 = time.perf_counter()
    result = env.execute(f"w3 p{parallelism} {backend} ckpt={checkpoints}")
    dt = time.perf_counter() - t0
    cpu = cpu_seconds(pids or []) - c0
    durations, sizes = checkpoint_stats(tmp) if checkpoints else ([], [])
    shutil.rmtree(tmp, ignore_errors=True)
    return Run(dt, int(result.get_accumulator_result("windows")),
               int(result.get_accumulator_result("records")), durations, sizes, cpu)


def _fmt_size(b: float) -> str:
    return f"{b / 1e6:.1f} MB" if b >= 1e6 else f"{b / 1e3:.0f} kB"


def overhead(n: int, runs: int, parallelisms: list[int], backends: list[str]) -> None:
    """Print the checkpoints-every-1-s vs none table."""
    from strom._cluster.minicluster import MiniCluster
    from strom._executors.cluster import use_session_cluster

    data = list(common.gen_records(n)) if 1 in parallelisms else None
    header = (
        f"{'p':>2} {'backend':<8} {'off rec/s':>11} {'on rec/s':>11} {'on/off':>7} "
        f"{'pairs':>11} {'cpu':>5} {'ckpts':>5} {'median ms':>9} {'max ms':>7} "
        f"{'median size':>11}"
    )
    print(f"W3, {n:,} records, checkpoints every {INTERVAL_MS} ms vs none "
          f"(median of {runs} run(s)); load average {_load()}")
    print(header)
    for p in parallelisms:
        cluster = MiniCluster(p).start() if p > 1 else None
        use_session_cluster(cluster)
        try:
            for backend in backends:
                off: list[Run] = []
                on: list[Run] = []
                pids = cluster.pids() if cluster is not None else []
                # warm-up (not measured): imports, first deployment, the data's first GC
                w3_run(data[: n // 10] if data is not None else None, n // 10, p, backend,
                       True, pids)
                for i in range(runs):  # interleaved: background load hits both alike
                    for checkpoints in ((False, True) if i % 2 == 0 else (True, False)):
                        gc.collect()  # every run starts from the same collector state
                        run = w3_run(data if p == 1 else None, n, p, backend, checkpoints, pids)
                        (on if checkpoints else off).append(run)
                digests = {(r.windows, r.records) for r in off + on}
                assert len(digests) == 1 and next(iter(digests))[1] == n, digests
                r_off = n / statistics.median(r.seconds for r in off)
                r_on = n / statistics.median(r.seconds for r in on)
                pairs = [a.seconds / b.seconds for a, b in zip(off, on)]
                cpu = (statistics.median(r.cpu_seconds for r in off)
                       / statistics.median(r.cpu_seconds for r in on))
                durations = [d for r in on for d in r.durations_ms]
                sizes = [s for r in on for s in r.sizes]
                print(
                    f"{p:>2} {backend:<8} {r_off:>11,.0f} {r_on:>11,.0f} {r_on / r_off:>7.2f} "
                    f"{f'{min(pairs):.2f}-{max(pairs):.2f}':>11} {cpu:>5.2f} "
                    f"{len(durations) / runs:>5.1f} {statistics.median(durations):>9.0f} "
                    f"{max(durations):>7.0f} {_fmt_size(statistics.median(sizes)):>11}",
                    flush=True,
                )
        finally:
            use_session_cluster(None)
            if cluster is not None:
                cluster.shutdown()
    print(f"load average after: {_load()}")


def fault_injection(n: int, backends: list[str], seed: int) -> None:
    """The tests' fault-injection job at full size: failure-free vs three SIGKILLs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "checkpoint"))
    import recovery_job as rj

    from strom._cluster.minicluster import MiniCluster
    from strom._executors.cluster import use_session_cluster

    rng = random.Random(seed)
    want = rj.expected(n)
    print(f"fault injection, {n:,} records, p2, checkpoints every 300 ms (seed {seed})")
    for backend in backends:
        for kills in (0, 3):
            tmp = Path(tempfile.mkdtemp(prefix="strom-bench-fault-"))
            cluster = MiniCluster(2).start()
            use_session_cluster(cluster)
            try:
                env = StreamExecutionEnvironment.get_execution_environment()
                env.set_parallelism(2)
                env.configure("state.backend", backend)
                env.enable_checkpointing(300)
                env.get_checkpoint_config().set_checkpoint_storage(str(tmp / "chk"))
                env.set_restart_strategy(RestartStrategies.fixed_delay_restart(10, 100))
                rj.build(env, tmp / "out", n)
                t0 = time.perf_counter()
                client = env.execute_async(f"fault injection {backend}")
                jm = None
                for k in range(kills):
                    while client.get_job_status().name != "RUNNING":
                        time.sleep(0.005)
                    time.sleep(rng.uniform(0.2, 2.5))
                    os.kill(rng.choice(cluster.taskmanagers()).pid, signal.SIGKILL)
                    jm = client.executor.job_master  # type: ignore[attr-defined]
                    while len(jm.restart_causes) <= k and not client.is_done():  # type: ignore[attr-defined]
                        time.sleep(0.005)
                client.get_job_execution_result(timeout=600)
                dt = time.perf_counter() - t0
                jm = client.executor.job_master  # type: ignore[attr-defined]
                got = rj.committed(tmp / "out")
                ok = "exact" if got == want else (
                    f"WRONG: {sum((want - got).values())} lost, "
                    f"{sum((got - want).values())} extra"
                )
                chk = [p.name for p in (tmp / "chk").glob("*/*")]
                print(f"  {backend:<8} kills={kills} restarts={len(jm.restart_causes)} "
                      f"{dt:6.2f} s  {n / dt:>9,.0f} rec/s  output {ok}  "
                      f"checkpoint dir: {sorted(chk)}", flush=True)
            finally:
                use_session_cluster(None)
                cluster.shutdown()
                shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    """Parse arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3_000_000,
                        help="W3 records per run (the default lasts about 6 s at p1)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--parallelism", default="1,2")
    parser.add_argument("--backends", default="hashmap,rocksdb")
    parser.add_argument("--fault", action="store_true",
                        help="also the full-size fault-injection run")
    parser.add_argument("--fault-n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-overhead", action="store_true", help="skip the W3 table")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    if not args.no_overhead:
        overhead(args.n, args.runs, [int(p) for p in args.parallelism.split(",")], backends)
    if args.fault:
        seed = args.seed if args.seed is not None else random.randrange(1 << 30)
        fault_injection(args.fault_n, backends, seed)


if __name__ == "__main__":
    main()
