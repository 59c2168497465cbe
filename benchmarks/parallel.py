"""Parallel scaling and network-channel figures (issue 5).

``python -m benchmarks.parallel [--records N]`` prints:

- the keyed running sum over N records (default 4,000,000) at parallelism 1 (in-process)
  and 2 (MiniCluster with 2 TaskManager processes), records/s and the speed-up, then the
  same on an already started cluster with CPU seconds per record; the job:
  ``from_sequence(1, N) -> map(x -> (x % 1000, x)) -> key_by -> reduce(sum)`` (every
  update emitted) ``-> count`` into an accumulator ``-> discard``. Wall time includes
  cluster start-up and deployment (the figures are what ``env.execute()`` costs).
  ``--workload json`` runs heavier records instead: each is formatted as a JSON line and
  parsed with ``json.loads`` before ``key_by(lambda r: r["k"])``;
- the raw cross-process channel throughput: one producer process pushing
  ``RecordBatch`` es of 1,000 ``(int, int)`` tuples through a ``RemoteOutputChannel`` to a
  ``RemoteInputChannel`` in a consumer process (credit-based, capacity 8), records/s
  and MB/s of frames.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
from strom.datastream import IntCounter, MapFunction, RuntimeContext, StreamExecutionEnvironment

KEYS = 1000
BATCH = 1000


class _Discard(SinkWriter[Any, None]):
    def write(self, value: Any, timestamp_ms: int | None) -> None:
        pass

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        pass


class DiscardSink(Sink[Any, None]):
    """Drops every record."""

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
        return _Discard()


class Count(MapFunction[Any, Any]):
    """Counts records into the ``updates`` accumulator."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.n = IntCounter()
        runtime_context.add_accumulator("updates", self.n)

    def map(self, value: Any) -> Any:
        self.n.add(1)
        return value


def to_pair(x: int) -> tuple[int, int]:
    return (x % KEYS, x)


def key_of(r: tuple[int, int]) -> int:
    return r[0]


def add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return (a[0], a[1] + b[1])


def to_json_line(x: int) -> str:
    return f'{{"k": {x % KEYS}, "v": {x}, "src": "sensor-{x % 97}", "ok": true}}'


def add_v(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {"k": a["k"], "v": a["v"] + b["v"]}


def add_running_sum(env: StreamExecutionEnvironment, records: int, workload: str = "pairs") -> None:
    """Add the keyed running sum over ``records`` records to ``env``.

    ``workload``: ``"pairs"`` (the issue's job, ``(x % 1000, x)`` tuples) or ``"json"``
    (heavier records: each is formatted as a JSON line and parsed with ``json.loads``
    before ``key_by``, as a job reading JSON from Kafka or files would).
    """
    if workload == "json":
        stream = env.from_sequence(1, records).map(to_json_line).map(json.loads)
        stream.key_by(lambda r: r["k"]).reduce(add_v).map(Count()).sink_to(DiscardSink())
    else:
        env.from_sequence(1, records).map(to_pair).key_by(key_of).reduce(add).map(
            Count()
        ).sink_to(DiscardSink())


def running_sum(records: int, parallelism: int, workload: str = "pairs") -> tuple[float, int]:
    """Run the keyed running sum (see :func:`add_running_sum`); return (seconds, updates
    seen)."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    add_running_sum(env, records, workload)
    t0 = time.perf_counter()
    result = env.execute(f"running sum p{parallelism}")
    return time.perf_counter() - t0, int(result.get_accumulator_result("updates"))


# -- raw channel ----------------------------------------------------------------------------
def _consumer(address: str, batches: int) -> None:
    from strom._runtime.io.network import NetworkEnvironment, RemoteInputChannel

    net = NetworkEnvironment("consumer", address, lambda job, err: print("error", err))
    ch = RemoteInputChannel(1, 8, "bench", "producer")
    net.register_job("bench", [ch], {})
    print("ready", flush=True)
    got = records = 0
    t0 = 0.0
    q = ch.queue
    while got < batches:
        if q:
            batch = q.popleft()
            if got == 0:
                t0 = time.perf_counter()
            got += 1
            records += len(batch)
        else:
            net.announce_credits()
            net.wake.wait(0.001)
            net.wake.clear()
    dt = time.perf_counter() - t0
    print(f"{records} {ch.bytes_in} {dt}", flush=True)
    net.close()


def _producer(address: str, batches: int) -> None:
    from strom._runtime.elements import RecordBatch
    from strom._runtime.io.network import NetworkEnvironment, RemoteOutputChannel

    tmp = tempfile.mkdtemp()
    net = NetworkEnvironment("producer", f"unix:{tmp}/p.sock", lambda job, err: None)
    out = RemoteOutputChannel(1, 8, "bench")
    net.register_job("bench", [], {"consumer": (address, [out])})
    net.connect_job("bench")
    values = [(i % KEYS, i) for i in range(BATCH)]
    q = out.queue
    for _ in range(batches):
        while len(q) >= out.capacity:
            time.sleep(0.0001)
        out.push(RecordBatch(list(values)))
    while q:
        time.sleep(0.001)
    time.sleep(0.5)
    net.close()


def channel_throughput(batches: int) -> tuple[float, float]:
    """Records/s and MB/s through one cross-process channel."""
    tmp = tempfile.mkdtemp()
    address = f"unix:{tmp}/c.sock"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "benchmarks.parallel"]
    with subprocess.Popen(
        [*cmd, "--consumer", address, str(batches)], stdout=subprocess.PIPE, text=True, env=env
    ) as consumer:
        assert consumer.stdout is not None
        assert consumer.stdout.readline().strip() == "ready"
        with subprocess.Popen([*cmd, "--producer", address, str(batches)], env=env) as producer:
            line = consumer.stdout.readline().split()
            producer.wait()
    records, nbytes, dt = int(line[0]), int(line[1]), float(line[2])
    return records / dt, nbytes / dt / 1e6


def warm_cluster_figures(n: int, workload: str = "pairs") -> None:
    """p1 in process and p2 on an already started MiniCluster (no start-up in the time),
    with the CPU seconds per record of the processes doing the work."""
    from benchmarks.checkpointing import cpu_seconds
    from strom._cluster.minicluster import MiniCluster
    from strom._executors.cluster import use_session_cluster

    cluster = MiniCluster(2).start()
    use_session_cluster(cluster)
    try:
        pids = cluster.pids()
        running_sum(1000, 2, workload)  # deploy once: imports and caches are warm
        cpu: dict[int, float] = {}
        wall: dict[int, float] = {}
        for p in (1, 2):
            c0 = cpu_seconds(pids)  # this process and the TaskManagers
            wall[p], _ = running_sum(n, p, workload)
            cpu[p] = cpu_seconds(pids) - c0
            print(f"  warm, p={p}: {wall[p]:.2f} s, {n / wall[p]:,.0f} rec/s, "
                  f"{1e9 * cpu[p] / n:,.0f} ns CPU per record (client + TaskManagers)")
        print(f"  warm speed-up p2/p1: {wall[1] / wall[2]:.2f}x; CPU per record p2/p1: "
              f"{cpu[2] / cpu[1]:.2f} (2 cores bound the speed-up by 2 / that)")
    finally:
        use_session_cluster(None)
        cluster.shutdown()


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=4_000_000)
    parser.add_argument("--batches", type=int, default=4000)
    parser.add_argument("--consumer", nargs=2)
    parser.add_argument("--producer", nargs=2)
    parser.add_argument("--only", choices=["sum", "channel"])
    parser.add_argument("--workload", choices=["pairs", "json"], default="pairs",
                        help="pairs: the issue's job; json: records parsed from JSON lines")
    args = parser.parse_args()
    if args.consumer:
        _consumer(args.consumer[0], int(args.consumer[1]))
        return
    if args.producer:
        _producer(args.producer[0], int(args.producer[1]))
        return
    if args.only in (None, "sum"):
        n = args.records
        rates = {}
        for p in (1, 2):
            dt, updates = running_sum(n, p, args.workload)
            assert updates == n, (updates, n)
            rates[p] = n / dt
            print(f"keyed running sum, {n:,} records, p={p}: {dt:.2f} s, {n / dt:,.0f} rec/s")
        print(f"speed-up p2/p1: {rates[2] / rates[1]:.2f}x")
        warm_cluster_figures(n, args.workload)
    if args.only in (None, "channel"):
        rps, mbps = channel_throughput(args.batches)
        print(
            f"cross-process channel: {rps:,.0f} records/s, {mbps:,.1f} MB/s "
            f"(batches of {BATCH} (int, int) tuples)"
        )


if __name__ == "__main__":
    main()
