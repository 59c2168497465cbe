"""Peak RSS of a job keeping a ValueState per key for millions of distinct keys.

Issue 4's acceptance: 5,000,000 distinct keys with the RocksDB backend stay under 1.5 GB
peak RSS; the heap backend's figure for the same job is reported beside it.

    python -m benchmarks.state_rss [--keys 5000000] [--backend rocksdb|hashmap|both]

Each backend runs in a fresh subprocess; the child prints one JSON line with records/s
and peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any


def child(keys: int, backend: str) -> None:
    from strom.connectors import DataGeneratorSource
    from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
    from strom.datastream import (
        KeyedProcessFunction,
        RuntimeContext,
        StreamExecutionEnvironment,
        ValueStateDescriptor,
    )

    class Count(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.state = runtime_context.get_state(ValueStateDescriptor("n", "int"))

        def process_element(self, value: Any, ctx: Any) -> Any:
            self.state.update((self.state.value() or 0) + 1)
            return None

    class Nothing(SinkWriter[Any, None]):
        def write(self, value: Any, timestamp_ms: int | None) -> None:
            pass

    class Discard(Sink[Any, None]):
        def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
            return Nothing()

    env = StreamExecutionEnvironment.get_execution_environment()
    env.configure("state.backend", backend)
    source = DataGeneratorSource(lambda i: (i * 2654435761) % (1 << 40), keys)
    env.from_source(source, None, "keys").key_by(lambda k: k).process(Count()).sink_to(Discard())
    t = time.perf_counter()
    env.execute(f"{keys} keys on {backend}")
    dt = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"backend": backend, "keys": keys, "seconds": round(dt, 2),
                      "records_per_s": round(keys / dt), "peak_rss_mb": round(rss_mb, 1)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, default=5_000_000)
    p.add_argument("--backend", choices=["rocksdb", "hashmap", "both"], default="both")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.keys, a.backend)
        return
    backends = ["rocksdb", "hashmap"] if a.backend == "both" else [a.backend]
    for b in backends:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.state_rss", "--child", "--keys", str(a.keys),
             "--backend", b], capture_output=True, text=True, check=False)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]
        print(line, flush=True)


if __name__ == "__main__":
    main()
