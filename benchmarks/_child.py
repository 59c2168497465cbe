"""One measurement in a fresh process: ``python -m benchmarks._child WORKLOAD IMPL N``.

``--profile`` also prints a pyinstrument profile of the timed part to stderr (the timings
then include the profiler's overhead).

Imports Strom, builds the input list and runs the implementation once on its first
``WARMUP_RECORDS`` records, so the runtime that ``execute()`` imports lazily is loaded
(none of this is timed); then times the implementation, computes its
digest after the timer, and prints one ``RESULT {json}`` line with the exec time, CPU
time, generation time, load average and this process's peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

__all__ = ["RESULT_PREFIX", "main"]

RESULT_PREFIX = "RESULT "
WARMUP_RECORDS = 100
"""Records of the untimed warm-up run (its first job pays the runtime's lazy imports)."""


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def _profiler() -> Any:
    """A started pyinstrument profiler (``pip install pyinstrument``)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        sys.exit("--profile needs pyinstrument: pip install pyinstrument")
    profiler = Profiler(interval=0.001)
    profiler.start()
    return profiler


def main(argv: list[str]) -> int:
    """Run one measurement; return the exit code."""
    profile = "--profile" in argv
    workload_name, impl_key, n_text = [a for a in argv if a != "--profile"]
    n = int(n_text)
    t_import = time.perf_counter()
    from benchmarks.workloads import WORKLOADS, common

    import_s = time.perf_counter() - t_import
    impl = WORKLOADS[workload_name].impl(impl_key)
    base: dict[str, Any] = {"workload": workload_name, "impl": impl_key, "n": n}
    reason = impl.unavailable()
    if reason is not None:
        _emit({**base, "status": "not available", "reason": reason})
        return 0
    t = time.perf_counter()
    data = list(common.gen_records(n))
    gen_s = time.perf_counter() - t
    # execute() imports the runtime lazily; a warm-up job on a few records keeps those
    # imports out of the timed part, as the peers' scripts import their engine first
    t = time.perf_counter()
    impl.run(data[:WARMUP_RECORDS])
    warmup_s = time.perf_counter() - t
    load1 = os.getloadavg()[0]
    profiler = _profiler() if profile else None
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    digest_fn, digest_args = impl.run(data)
    exec_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    if profiler is not None:
        profiler.stop()
        sys.stderr.write(profiler.output_text(unicode=True, color=sys.stderr.isatty()))
    digest = digest_fn(*digest_args)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    _emit(
        {
            **base,
            "status": "ok",
            "exec_s": exec_s,
            "cpu_s": cpu_s,
            "gen_s": gen_s,
            "import_s": import_s,
            "warmup_s": warmup_s,
            "load1": load1,
            "peak_rss_mb": peak_rss_mb,
            "digest": digest,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
