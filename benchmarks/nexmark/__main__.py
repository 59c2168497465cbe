"""Nexmark on Strom from the command line.

Run a query over a file (results as JSON lines; the throughput on stderr)::

    python -m benchmarks.nexmark --query q5 --input events.jsonl --output q5.jsonl

Without ``--input`` the events are generated in-process first (not timed)::

    python -m benchmarks.nexmark --query q7 --events 200000 --rate 10000 --seed 1

Write an input file::

    python -m benchmarks.nexmark generate --events 1000000 --output events.jsonl

``--query`` also takes a comma-separated list or ``all``; ``--repeat N`` runs each query N
times and reports the median run (and the best). At parallelism 1 the line also gives
events per CPU-second of the job, which load from other processes barely changes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

from benchmarks.nexmark.generator import GeneratorConfig, generate, write_events
from benchmarks.nexmark.queries import QUERIES
from benchmarks.nexmark.runner import RunResult, run_query

__all__ = ["main"]


def _generator_args(p: argparse.ArgumentParser, events_default: int) -> None:
    g = p.add_argument_group("event generation")
    g.add_argument("--events", type=int, default=events_default, help="number of events")
    g.add_argument("--rate", type=int, default=10_000, help="events per second of event time")
    g.add_argument("--seed", type=int, default=0, help="random seed")
    g.add_argument("--ooo-ms", type=int, default=0, help="largest out-of-order delay, ms")
    g.add_argument(
        "--ooo-fraction", type=float, default=0.1, help="share of delayed events (with --ooo-ms)"
    )


def _config(args: argparse.Namespace) -> GeneratorConfig:
    return GeneratorConfig(
        seed=args.seed, rate=args.rate, ooo_ms=args.ooo_ms, ooo_fraction=args.ooo_fraction
    )


def _queries(text: str) -> list[str]:
    names = list(QUERIES) if text == "all" else [q.strip() for q in text.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUERIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown query {', '.join(unknown) or text!r}; choose from {', '.join(QUERIES)} or all"
        )
    return names


def run_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m benchmarks.nexmark`` (running queries)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.nexmark",
        description="Run Nexmark queries on Strom (see also: generate --help).",
    )
    p.add_argument("--query", type=_queries, required=True, help="q0..q11, a list, or all")
    p.add_argument("--input", help="events as JSON lines (default: generate in-process)")
    p.add_argument("--output", help="write the results here as JSON lines (one query only)")
    p.add_argument("--parallelism", type=int, default=1, help="job parallelism")
    p.add_argument("--repeat", type=int, default=1, help="runs per query; report the median")
    _generator_args(p, events_default=100_000)
    return p


def generate_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m benchmarks.nexmark generate``."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.nexmark generate",
        description="Write Nexmark events as JSON lines.",
    )
    p.add_argument("--output", required=True, help="the file to write")
    _generator_args(p, events_default=1_000_000)
    return p


def _generate(argv: Sequence[str]) -> int:
    args = generate_parser().parse_args(argv)
    start = time.perf_counter()
    size = write_events(args.output, args.events, _config(args))
    seconds = time.perf_counter() - start
    print(
        f"wrote {args.events:,} events ({size / 1e6:.1f} MB) to {args.output} in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def _run(argv: Sequence[str]) -> int:
    parser = run_parser()
    args = parser.parse_args(argv)
    if args.output and len(args.query) > 1:
        parser.error("--output needs a single --query")
    if args.parallelism < 1 or args.repeat < 1:
        parser.error("--parallelism and --repeat must be >= 1")
    if args.input:
        events: str | list[object] = args.input
    else:
        start = time.perf_counter()
        events = list(generate(args.events, _config(args)))
        print(
            f"generated {len(events):,} events in {time.perf_counter() - start:.1f} s (not timed)",
            file=sys.stderr,
        )
    for query in args.query:
        runs: list[RunResult] = [
            run_query(query, events, output=args.output, parallelism=args.parallelism)  # type: ignore[arg-type]
            for _ in range(args.repeat)
        ]
        median = statistics.median(r.seconds for r in runs)
        typical = min(runs, key=lambda r: abs(r.seconds - median))
        line = typical.summary()
        if len(runs) > 1:
            best = min(runs, key=lambda r: r.seconds)
            line += f" [median of {len(runs)}; best {best.events_per_second:,.0f} events/s]"
        print(line, file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``generate ...`` writes an input file, anything else runs queries."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "generate":
        return _generate(argv[1:])
    return _run(argv)


if __name__ == "__main__":
    sys.exit(main())
