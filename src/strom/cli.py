"""The ``strom`` command line: ``strom run JOB.py``, ``strom info``, ``strom --version``.

``python -m strom`` is the same program. Progress rendering lives in
:mod:`strom._cli_progress`; this module only parses options, runs the job script and maps
failures to exit codes:

====  ==========================================================================
code  meaning
====  ==========================================================================
0     the script ran to the end (or called ``sys.exit(0)``)
1     a job failed (``JobExecutionError``), another Strom error, or the script raised
2     usage error, e.g. the script does not exist
130   cancelled: Ctrl-C or ``JobCancelledError``
any   the script's own ``sys.exit(code)``
====  ==========================================================================
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import runpy
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from strom import __version__
from strom.config import DEFAULTS, Configuration, get_global_defaults, set_global_default
from strom.errors import JobCancelledError, StreamingError

__all__ = ["main"]

KEY_DEPENDENCIES = ("pyarrow", "msgspec", "click", "rich", "fsspec", "xxhash")
"""Distributions whose installed versions ``strom info`` reports."""

EXIT_JOB_FAILED = 1
EXIT_USAGE = 2  # click's own code for usage errors (missing script included)
EXIT_CANCELLED = 130  # 128 + SIGINT, what shells report for a Ctrl-C'd program


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "-V", "--version", prog_name="strom", message="%(prog)s %(version)s"
)
def main() -> None:
    """Strom: a stateful stream processor with Apache Flink's model."""


@main.command()
@click.argument(
    "script", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- JOB_ARGS...]")
@click.option(
    "-p",
    "--parallelism",
    type=click.IntRange(min=1),
    help="Default parallelism of every environment the script creates.",
)
@click.option(
    "--buffer-timeout",
    type=click.IntRange(min=-1),
    metavar="MS",
    help="Default buffer timeout in ms (0: flush every batch, -1: only full buffers).",
)
@click.option(
    "--job-arg",
    "job_arg_options",
    multiple=True,
    metavar="ARG",
    help="An argument for the script (repeatable); placed before the ones after '--'.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Force or disable the live progress table (default: on when stderr is a terminal).",
)
@click.option("-v", "--verbose", is_flag=True, help="Print full tracebacks of job failures.")
def run(
    script: Path,
    script_args: tuple[str, ...],
    parallelism: int | None,
    buffer_timeout: int | None,
    job_arg_options: tuple[str, ...],
    progress: bool | None,
    verbose: bool,
) -> None:
    """Run the job script SCRIPT as __main__ on the local runtime.

    The script sees sys.argv = [SCRIPT, *--job-arg values, *JOB_ARGS]. Options override
    the defaults of every StreamExecutionEnvironment the script creates; a script's own
    set_parallelism() still wins. A one-line summary of each job is printed on stderr.
    """
    from strom._cli_progress import ProgressReporter

    overrides: dict[str, Any] = {}
    if parallelism is not None:
        overrides["parallelism.default"] = parallelism
    if buffer_timeout is not None:
        overrides["execution.buffer-timeout"] = buffer_timeout
    stderr_console = Console(
        stderr=True, highlight=False, force_terminal=True if progress else None
    )
    live = progress if progress is not None else stderr_console.is_terminal
    reporter = ProgressReporter(stderr_console, live=live)
    try:
        with (
            _global_defaults(overrides),
            _script_context(script, [*job_arg_options, *script_args]),
            reporter.installed(),
        ):
            runpy.run_path(str(script), run_name="__main__")
    except KeyboardInterrupt:
        _fail("cancelled", EXIT_CANCELLED)
    except JobCancelledError as e:
        _fail(f"cancelled: {e}", EXIT_CANCELLED)
    except StreamingError as e:
        _report_error(e, verbose)
        sys.exit(EXIT_JOB_FAILED)
    except Exception as e:
        # A bug in the script itself: show the traceback the way `python SCRIPT` would.
        _print_script_traceback(e, script)
        sys.exit(EXIT_JOB_FAILED)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info(as_json: bool) -> None:
    """Show versions, the platform and the effective default configuration."""
    data = collect_info()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    console = Console(highlight=False)
    env = Table(title="Environment", show_header=False, title_justify="left")
    env.add_column("", style="bold")
    env.add_column("")
    env.add_row("Strom", data["strom"])
    env.add_row("Python", f"{data['python']} ({data['python_implementation']})")
    env.add_row("Platform", data["platform"])
    env.add_row("CPU count", str(data["cpu_count"]))
    for name, version in data["dependencies"].items():
        env.add_row(name, version or "not installed")
    console.print(env)
    cfg = Table(title="Default configuration", title_justify="left")
    cfg.add_column("Option", no_wrap=True)
    cfg.add_column("Value")
    cfg.add_column("Description")
    for key, opt in data["config"].items():
        cfg.add_row(key, repr(opt["value"]), opt["description"], end_section=False)
    console.print(cfg)


def collect_info() -> dict[str, Any]:
    """Gather what ``strom info`` reports.

    Returns:
        ``strom``, ``python``, ``python_implementation``, ``platform``, ``cpu_count``,
        ``dependencies`` (distribution name -> version, None when not installed) and
        ``config`` (option key -> ``{"value", "default", "type", "description"}``, where
        ``value`` is the effective default: built-in default or process-wide override).
    """
    effective = Configuration()
    deps: dict[str, str | None] = {}
    for name in KEY_DEPENDENCIES:
        try:
            deps[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            deps[name] = None
    return {
        "strom": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "dependencies": deps,
        "config": {
            key: {
                "value": effective[key],
                "default": opt.default,
                "type": opt.type.__name__,
                "description": opt.description,
            }
            for key, opt in DEFAULTS.items()
        },
    }


@contextmanager
def _global_defaults(overrides: dict[str, Any]) -> Iterator[None]:
    """Apply process-wide config defaults for the block, then restore the previous ones.

    Restoring matters only in-process (tests, embedding); ``strom run`` exits right after.
    """
    previous = get_global_defaults()
    for key, value in overrides.items():
        set_global_default(key, value)
    try:
        yield
    finally:
        for key in overrides:
            set_global_default(key, previous.get(key, DEFAULTS[key].default))


@contextmanager
def _script_context(script: Path, args: list[str]) -> Iterator[None]:
    """Set ``sys.argv`` and ``sys.path[0]`` for the block as ``python SCRIPT ARGS`` would.

    The script's directory goes first on ``sys.path`` so it can import its sibling modules.
    """
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.resolve().parent))
    try:
        yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"strom: {message}", err=True)
    sys.exit(code)


def _report_error(error: BaseException, verbose: bool) -> None:
    """Print a job failure: its message, the root cause and where it was raised.

    Intermediate causes whose text the message already contains (the runtime's
    ``UserFunctionError`` wrapper) are skipped; ``verbose`` prints the full traceback.
    """
    if verbose:
        click.echo("".join(traceback.format_exception(error)).rstrip(), err=True)
        return
    click.echo(f"Error: {error}", err=True)
    chain: list[BaseException] = []
    cause = error.__cause__ or error.__context__
    while cause is not None and cause is not error and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    shown = str(error)
    for i, cause in enumerate(chain):
        text = f"{type(cause).__name__}: {cause}"
        if i < len(chain) - 1 and str(cause) in shown:
            continue
        click.echo(f"Caused by: {text}", err=True)
        shown = text
    frame = _user_frame(chain[-1] if chain else error)
    if frame is not None:
        click.echo(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}', err=True)
    click.echo("(run with --verbose for the full traceback)", err=True)


def _user_frame(error: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``error``'s traceback outside Strom and the stdlib runners."""
    strom_dir = str(Path(__file__).parent) + os.sep
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if not frame.filename.startswith(strom_dir) and frame.filename not in (
            runpy.__file__,
            threading.__file__,
        ):
            return frame
    return None


def _print_script_traceback(error: BaseException, script: Path) -> None:
    """Print a traceback starting at the script's frame, hiding the CLI's own frames."""
    tb = error.__traceback__
    target = str(script)
    while tb is not None and tb.tb_frame.f_code.co_filename != target:
        tb = tb.tb_next
    error = error.with_traceback(tb or error.__traceback__)
    click.echo("".join(traceback.format_exception(error)).rstrip(), err=True)
