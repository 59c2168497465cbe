"""End-to-end latency (event creation to sink) at a fixed input rate.

    python -m benchmarks.latency [--rate 100000] [--seconds 5] [--timeouts 0,10,100]

A rate-limited ``DataGeneratorSource`` stamps each record with ``time.monotonic_ns()``
when it is created; the job keys the records, keeps a running count per key (a network
exchange and keyed state on the way) and a sink measures ``now - created`` for every
record. Reported per buffer timeout: p50, p99 and max latency in ms, and the achieved
rate. Run it at about half of the maximum throughput of this pipeline (issue 8 target:
p99 <= 150 ms at a 100 ms buffer timeout).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from strom.connectors import DataGeneratorSource
from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
from strom.datastream import StreamExecutionEnvironment


class _LatencyWriter(SinkWriter[Any, None]):
    def __init__(self, out: list[int]) -> None:
        self.out = out

    def write(self, value: Any, timestamp_ms: int | None) -> None:
        self.out.append(time.monotonic_ns() - value[1])

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        now = time.monotonic_ns()
        self.out.extend([now - v[1] for v in values])


class LatencySink(Sink[Any, None]):
    """Collects per-record latencies in ns (in-process runs only)."""

    def __init__(self) -> None:
        self.latencies: list[int] = []

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
        return _LatencyWriter(self.latencies)


def _stamp(i: int) -> tuple[int, int]:
    return (i % 1000, time.monotonic_ns())


def run(rate: float, seconds: float, timeout_ms: int) -> dict[str, float]:
    """One measurement; returns percentiles in ms."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_buffer_timeout(timeout_ms)
    sink = LatencySink()
    n = int(rate * seconds)
    (env.from_source(DataGeneratorSource(_stamp, n, rate), None, "stamped")
     .key_by(lambda r: r[0])
     .reduce(lambda a, b: (a[0], b[1]))
     .sink_to(sink))
    t = time.perf_counter()
    env.execute(f"latency at {timeout_ms} ms")
    dt = time.perf_counter() - t
    lat = sorted(sink.latencies[len(sink.latencies) // 10:])  # skip the warm-up tenth
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6  # noqa: E731
    return {"timeout_ms": timeout_ms, "rate": round(n / dt), "p50_ms": round(pick(0.5), 2),
            "p99_ms": round(pick(0.99), 2), "max_ms": round(lat[-1] / 1e6, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=100_000)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--timeouts", default="0,10,100")
    a = p.parse_args()
    print(f"{'timeout ms':>10} {'rate/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for t in (int(x) for x in a.timeouts.split(",")):
        r = run(a.rate, a.seconds, t)
        print(f"{r['timeout_ms']:>10} {r['rate']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['max_ms']:>8}", flush=True)


if __name__ == "__main__":
    main()
