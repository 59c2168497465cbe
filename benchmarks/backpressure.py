"""Backpressure keeps memory bounded (issue 5 acceptance figure).

``python -m benchmarks.backpressure [--seconds 30] [--parallelism 2]`` runs an unbounded
source (parallelism 2) -> ``rebalance`` -> a sink (parallelism 1) that sleeps 1 ms per
record on a MiniCluster, samples
the TaskManagers' total RSS every second and prints the growth after the first 5 s
(acceptance: < 100 MB over 30 s), plus how far the sources ran ahead of the sinks (the
records buffered in channels; credit-based flow control bounds it).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from strom._cluster.minicluster import MiniCluster
from strom._executors.cluster import use_session_cluster
from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
from strom.datastream import StreamExecutionEnvironment
from strom.errors import JobCancelledError

WARMUP_S = 5.0


class _SlowWriter(SinkWriter[Any, None]):
    def write(self, value: Any, timestamp_ms: int | None) -> None:
        time.sleep(0.001)

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        for _ in values:
            time.sleep(0.001)


class SlowSink(Sink[Any, None]):
    """Sleeps 1 ms per record."""

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
        return _SlowWriter()


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(seconds: float, parallelism: int, warmup_s: float = WARMUP_S) -> dict[str, Any]:
    """Run the job for ``seconds``; return RSS samples and lag figures."""
    cluster = MiniCluster(parallelism).start()
    use_session_cluster(cluster)
    try:
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(parallelism)
        # the sink runs in TaskManager 0; the source subtasks of the other TaskManagers
        # feed it over the network and only credits hold them back
        env.from_sequence(1, 10**15).rebalance().map(lambda x: (x, "payload" * 4)).set_parallelism(
            1
        ).sink_to(SlowSink()).set_parallelism(1)
        client = env.execute_async("backpressure")
        pids = [h.pid for h in cluster.taskmanagers()]
        t0 = time.monotonic()
        samples: list[tuple[float, int]] = []
        lag: list[int] = []
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            samples.append((time.monotonic() - t0, sum(rss_bytes(p) for p in pids)))
            rows = client.get_metrics()
            produced = sum(r["records_out"] for r in rows if r["operator"] == "Sequence Source")
            consumed = sum(r["records_in"] for r in rows if r["operator"] == "SlowSink")
            lag.append(produced - consumed)
        client.cancel()
        try:
            client.get_job_execution_result(timeout=10)
        except JobCancelledError:
            pass
    finally:
        use_session_cluster(None)
        cluster.shutdown()
    base = next(rss for t, rss in samples if t >= warmup_s)
    return {
        "samples": samples,
        "growth_bytes": samples[-1][1] - base,
        "max_growth_bytes": max(rss for t, rss in samples if t >= warmup_s) - base,
        "max_lag_records": max(lag),
        "final_lag_records": lag[-1],
    }


def main() -> None:
    """Print the figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    r = run(args.seconds, args.parallelism)
    first = r["samples"][0][1]
    print(
        f"TaskManagers' RSS: {first / 1e6:.1f} MB after 1 s, "
        f"{r['samples'][-1][1] / 1e6:.1f} MB after {args.seconds:.0f} s"
    )
    print(
        f"growth after the first {WARMUP_S:.0f} s: {r['growth_bytes'] / 1e6:+.1f} MB "
        f"(max {r['max_growth_bytes'] / 1e6:+.1f} MB; acceptance < 100 MB)"
    )
    print(
        f"records buffered between sources and sinks: max {r['max_lag_records']:,}, "
        f"final {r['final_lag_records']:,}"
    )


if __name__ == "__main__":
    main()
