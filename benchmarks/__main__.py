"""``python -m benchmarks [--quick] [--only NAME] [--n N] [--runs 3] [--json OUT]``.

Runs every (workload, implementation, run) in a fresh subprocess
(``python -m benchmarks._child``), interleaving the implementations run by run so that
background load hits them alike, then prints a table (median records/s, ratio to the
bare loop of the same workload, digest check) and writes the results as JSON. Exits 1
if a digest mismatches or a measurement fails; a workload whose API is not implemented
yet is reported as "not available" and is not a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks._peers import REPO_ROOT, PeersNotFoundError, peers_dir

DEFAULT_N = 2_000_000
QUICK_N = 200_000
DEFAULT_RUNS = 3
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "latest.json"


def _parse(argv: list[str], names: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Strom throughput benchmarks (the peers' W1-W3) against a bare Python loop.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"N={QUICK_N:,} and 1 run (unless --n/--runs say otherwise)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help=f"run only these workloads (repeat or comma-separate): {', '.join(names)}",
    )
    p.add_argument("--n", type=int, default=None, help=f"records per run (default {DEFAULT_N:,})")
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help=f"runs per measurement; the median is reported (default {DEFAULT_RUNS})",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="where to write the results (default benchmarks/results/latest.json)",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="also print the table as Markdown (for BENCHMARKS.md)",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per subprocess")
    a = p.parse_args(argv)
    a.n = a.n if a.n is not None else (QUICK_N if a.quick else DEFAULT_N)
    a.runs = a.runs if a.runs is not None else (1 if a.quick else DEFAULT_RUNS)
    if a.n < 1 or a.runs < 1:
        p.error("--n and --runs must be >= 1")
    selected = [s.strip() for o in (a.only or []) for s in o.split(",") if s.strip()]
    unknown = [s for s in selected if s not in names]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    a.only = selected or names
    return a


def _width(stream: Any) -> int | None:
    """Let rich size a terminal; use a wide fixed width for pipes and files."""
    return None if stream.isatty() else 160


def _run_child(workload: str, impl: str, n: int, timeout: float) -> dict[str, Any]:
    """One measurement in a fresh interpreter; its RESULT line plus the process wall time."""
    from benchmarks._child import RESULT_PREFIX

    cmd = [sys.executable, "-m", "benchmarks._child", workload, impl, str(n)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout:.0f} s"}
    wall_s = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return {**json.loads(line[len(RESULT_PREFIX) :]), "wall_s": wall_s}
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {
        "status": "error",
        "reason": f"exit {proc.returncode}: {tail}",
        "stderr_tail": proc.stderr[-4000:],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; return the exit code."""
    err = Console(stderr=True, width=_width(sys.stderr))
    try:
        peers = peers_dir()
    except PeersNotFoundError as e:
        err.print(f"[red]error:[/] {e}")
        return 2
    from benchmarks._report import aggregate, machine_info, markdown, render
    from benchmarks.workloads import WORKLOADS

    a = _parse(sys.argv[1:] if argv is None else argv, [*WORKLOADS, *EXTRAS])
    extras = [x for x in a.only if x in EXTRAS]
    a.only = [x for x in a.only if x not in EXTRAS]
    load_before = [round(x, 2) for x in os.getloadavg()]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name in a.only:
        impls = [i.key for i in WORKLOADS[name].impls]
        for run in range(a.runs):
            for impl in impls:
                runs = results.setdefault((name, impl), [])
                if runs and runs[-1].get("status") == "not available":
                    continue
                res = _run_child(name, impl, a.n, a.timeout)
                runs.append(res)
                if res.get("status") == "ok":
                    msg = (
                        f"{a.n / res['exec_s']:>12,.0f} rec/s  exec {res['exec_s']:.3f} s  "
                        f"load {res['load1']:.2f}"
                    )
                else:
                    msg = f"{res.get('status')}: {res.get('reason')}"
                err.print(f"[dim]{name:<17} {impl:<10} run {run + 1}/{a.runs}[/]  {msg}")
                if res.get("stderr_tail"):
                    err.print(res["stderr_tail"], markup=False, highlight=False)
    rows = aggregate(results, a.n)
    meta = {
        "n": a.n,
        "runs": a.runs,
        "quick": a.quick,
        "peers_dir": str(peers),
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    render(rows, meta, Console(width=_width(sys.stdout)))
    if a.markdown:
        print(markdown(rows, meta))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"meta": meta, "rows": [r.as_json() for r in rows]}, indent=1))
    err.print(f"results written to {a.json}")
    failed = [r for r in rows if r.status == "error" or r.check == "MISMATCH"]
    for extra in extras:
        EXTRAS[extra](a.quick, Console(width=_width(sys.stdout)))
    return 1 if failed else 0


def _latency(quick: bool, console: Console) -> None:
    """End-to-end latency per buffer timeout at a fixed rate (see benchmarks.latency)."""
    from rich.table import Table

    from benchmarks.latency import run

    table = Table(title="latency: keyed running count at a fixed rate (p50/p99 ms)")
    for col in ("buffer timeout ms", "rate rec/s", "p50 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="right")
    for timeout in (0, 10, 100):
        r = run(50_000 if quick else 100_000, 2 if quick else 5, timeout)
        table.add_row(*(str(r[k]) for k in ("timeout_ms", "rate", "p50_ms", "p99_ms", "max_ms")))
    console.print(table)


def _nexmark(quick: bool, console: Console) -> None:
    """Nexmark q0-q11 over generated events (see benchmarks.nexmark)."""
    from rich.table import Table

    from benchmarks.nexmark.generator import generate
    from benchmarks.nexmark.queries import QUERIES
    from benchmarks.nexmark.runner import run_query

    n = 50_000 if quick else 500_000
    events = generate(n)
    table = Table(title=f"nexmark: {n:,} generated events, parallelism 1")
    for col in ("query", "events/s", "events/CPU-s", "results"):
        table.add_column(col, justify="right")
    for q in QUERIES:
        r = run_query(q, events)
        table.add_row(q, f"{r.events_per_second:,.0f}", f"{r.events_per_cpu_second:,.0f}",
                      f"{r.results:,}")
    console.print(table)


EXTRAS: dict[str, Any] = {"latency": _latency, "nexmark": _nexmark}
"""Sections after the throughput table; run by default, or pick them with --only."""


if __name__ == "__main__":
    sys.exit(main())
