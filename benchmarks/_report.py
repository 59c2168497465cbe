"""Aggregation of the per-run measurements into rows, the machine description and the table."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._peers import REPO_ROOT
from benchmarks.workloads import BARE, CALLS, STROM

__all__ = ["Row", "aggregate", "machine_info", "markdown", "render"]


@dataclass
class Row:
    """One (workload, implementation) over all its runs.

    Attributes:
        workload: workload name.
        impl: implementation key (``strom``, ``bare loop``, ``calls loop``).
        n: records per run.
        status: ``ok``, ``not available`` or ``error``.
        reason: why not ok.
        rate: median records/s over the runs (N / exec s).
        exec_s: median timed seconds (pipeline build + run + sink; no input generation).
        cpu_s: median CPU seconds of the timed part.
        wall_s: median wall seconds of the whole child process (start, import, generate).
        peak_rss_mb: largest peak RSS of the child processes.
        load1: 1-minute load average before each timed part.
        digest: the sink digest of the first run.
        check: ``ref`` (the reference itself), ``ok``, ``MISMATCH`` or ``-``.
        ratio_bare: rate / the bare loop's rate (same workload, same invocation).
        ratio_bare_cpu: the same ratio on CPU time (less sensitive to other processes).
        ratio_calls: rate / the calls loop's rate (``map_filter_calls`` only).
        runs: the raw per-run results.
    """

    workload: str
    impl: str
    n: int
    status: str = "ok"
    reason: str | None = None
    rate: float | None = None
    exec_s: float | None = None
    cpu_s: float | None = None
    wall_s: float | None = None
    peak_rss_mb: float | None = None
    load1: list[float] = field(default_factory=list)
    digest: dict[str, Any] | None = None
    check: str = "-"
    ratio_bare: float | None = None
    ratio_bare_cpu: float | None = None
    ratio_calls: float | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return asdict(self)


def _row(workload: str, impl: str, n: int, runs: list[dict[str, Any]]) -> Row:
    row = Row(workload, impl, n, runs=runs)
    bad = [r for r in runs if r.get("status") != "ok"]
    if bad:
        row.status = str(bad[0].get("status", "error"))
        row.reason = bad[0].get("reason")
        return row
    row.rate = statistics.median(n / r["exec_s"] for r in runs)
    row.exec_s = statistics.median(r["exec_s"] for r in runs)
    row.cpu_s = statistics.median(r["cpu_s"] for r in runs)
    row.wall_s = statistics.median(r["wall_s"] for r in runs)
    row.peak_rss_mb = max(r["peak_rss_mb"] for r in runs)
    row.load1 = [round(r["load1"], 2) for r in runs]
    row.digest = runs[0]["digest"]
    if any(r["digest"] != row.digest for r in runs):
        row.status, row.reason = "error", "digest differs between runs"
    return row


def aggregate(results: dict[tuple[str, str], list[dict[str, Any]]], n: int) -> list[Row]:
    """Rows from ``{(workload, impl): [run results]}``, with checks and ratios filled in."""
    rows = [_row(w, i, n, runs) for (w, i), runs in results.items()]
    by_key = {(r.workload, r.impl): r for r in rows}
    for r in rows:
        bare, calls = by_key.get((r.workload, BARE)), by_key.get((r.workload, CALLS))
        if r.impl == BARE:
            r.check = "ref" if r.status == "ok" else "-"
        elif r.status == "ok" and bare is not None and bare.status == "ok":
            r.check = "ok" if r.digest == bare.digest else "MISMATCH"
        if r.rate is None:
            continue
        if bare is not None and bare.rate:
            r.ratio_bare = r.rate / bare.rate
            if r.cpu_s and bare.cpu_s:
                r.ratio_bare_cpu = bare.cpu_s / r.cpu_s
        if calls is not None and calls.rate:
            r.ratio_calls = r.rate / calls.rate
    return rows


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _git(*args: str) -> str:
    """Output of a read-only git command in the repository ('' if git fails)."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, Python, OS, date, git commit and current load."""
    cpuinfo = _read("/proc/cpuinfo")
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (
            int(ln.split()[1])
            for ln in _read("/proc/meminfo").splitlines()
            if ln.startswith("MemTotal:")
        ),
        0,
    )
    import strom

    strom_src = Path(strom.__file__).resolve().parent.parent
    if strom_src == REPO_ROOT / "src":
        commit = _git("rev-parse", "--short", "HEAD")
        if commit and _git("status", "--porcelain", "--untracked-files=no", "--", "src"):
            commit += " + uncommitted changes in src/"
    else:  # e.g. PYTHONPATH=<snapshot>/src: a copy of some commit, see BENCHMARKS.md
        marker = strom_src.parent / "COMMIT"
        commit = (
            f"{marker.read_text().strip() if marker.is_file() else '?'} (strom from {strom_src})"
        )
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "mem_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": commit,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def render(rows: list[Row], meta: dict[str, Any], console: Console) -> None:
    """Print the results table and the machine/load lines."""
    m = meta["machine"]
    table = Table(
        title=f"Strom benchmarks (N={meta['n']:,}, median of {meta['runs']} run(s), P=1)",
        caption=(
            f"{m['cpu_model']}, {m['cores']} cores, {m['mem_gib']} GiB, Python {m['python']}, "
            f"{m['date_utc']}, commit {m['git_commit'] or '?'}; load avg before "
            f"{meta['load_before']}, after {meta['load_after']}"
        ),
    )
    for name, justify in (
        ("benchmark", "left"),
        ("impl", "left"),
        ("N", "right"),
        ("rec/s", "right"),
        ("exec s", "right"),
        ("CPU s", "right"),
        ("wall s", "right"),
        ("peak RSS MB", "right"),
        ("x bare", "right"),
        ("x bare CPU", "right"),
        ("x calls", "right"),
        ("digest", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous = None
    for r in rows:
        if previous is not None and r.workload != previous:
            table.add_section()
        previous = r.workload
        if r.status != "ok":
            style = "yellow" if r.status == "not available" else "red"
            table.add_row(
                r.workload,
                r.impl,
                f"{r.n:,}",
                f"[{style}]{r.status}[/]",
                *[""] * (len(table.columns) - 5),
                f"[{style}]{(r.reason or '')[:70]}[/]",
            )
            continue
        check_style = {"ok": "green", "MISMATCH": "bold red"}.get(r.check, "dim")
        table.add_row(
            r.workload,
            r.impl,
            f"{r.n:,}",
            _fmt(r.rate, ",.0f"),
            _fmt(r.exec_s, ".3f"),
            _fmt(r.cpu_s, ".3f"),
            _fmt(r.wall_s, ".1f"),
            _fmt(r.peak_rss_mb, ",.0f"),
            _fmt(r.ratio_bare, ".2f"),
            _fmt(r.ratio_bare_cpu, ".2f"),
            "" if r.ratio_calls is None else f"{r.ratio_calls:.2f}",
            f"[{check_style}]{r.check}[/]",
            style="bold" if r.impl == STROM else None,
        )
    console.print(table)


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    """The results as a Markdown table (for ``BENCHMARKS.md``), with a machine/load line."""
    m = meta["machine"]
    lines = [
        "| benchmark | impl | N | rec/s | exec s | CPU s | wall s | peak RSS MB "
        "| x bare | x bare CPU | x calls | digest | load1 per run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.status != "ok":
            lines.append(
                f"| {r.workload} | {r.impl} | {r.n:,} | {r.status} | | | | | | | | "
                f"{r.reason or ''} | |"
            )
            continue
        lines.append(
            f"| {r.workload} | {r.impl} | {r.n:,} | {_fmt(r.rate, ',.0f')} "
            f"| {_fmt(r.exec_s, '.3f')} | {_fmt(r.cpu_s, '.3f')} | {_fmt(r.wall_s, '.1f')} "
            f"| {_fmt(r.peak_rss_mb, ',.0f')} | {_fmt(r.ratio_bare, '.2f')} "
            f"| {_fmt(r.ratio_bare_cpu, '.2f')} "
            f"| {'' if r.ratio_calls is None else f'{r.ratio_calls:.2f}'} | {r.check} "
            f"| {', '.join(f'{x:.1f}' for x in r.load1)} |"
        )
    lines.append("")
    lines.append(
        f"N={meta['n']:,}, median of {meta['runs']} run(s), parallelism 1; "
        f"{m['cpu_model']}, {m['cores']} cores, {m['mem_gib']} GiB, Python {m['python']}; "
        f"{m['date_utc']}; commit {m['git_commit'] or '?'}; load average (1/5/15 min) "
        f"before {meta['load_before']}, after {meta['load_after']}."
    )
    return "\n".join(lines)
