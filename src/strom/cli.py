"""The ``strom`` command line: ``strom run JOB.py``, ``strom list``, ``strom cancel``,
``strom savepoint``, ``strom stop``, ``strom info``, ``strom --version``.

``python -m strom`` is the same program. Progress rendering lives in
:mod:`strom._cli_progress`; the control endpoint that ``strom run`` serves for the other
commands (and their client) in :mod:`strom._cli_control`. This module only parses
options, runs the job script and maps failures to exit codes:

====  ==========================================================================
code  meaning
====  ==========================================================================
0     the script ran to the end (or called ``sys.exit(0)``); a control command
      succeeded (``strom list`` also when nothing runs)
1     a job failed (``JobExecutionError``), another Strom error, or the script raised;
      a control command failed: no running ``strom run`` process, unknown or
      ambiguous job id, a savepoint refused (checkpointing disabled), failed or
      timed out
2     usage error, e.g. the script or the ``--from-savepoint`` path does not exist
130   cancelled: Ctrl-C, ``JobCancelledError`` or ``strom cancel``
any   the script's own ``sys.exit(code)``
====  ==========================================================================

Savepoints (Flink's CLI): ``strom savepoint JOB_ID [DIR]`` and ``strom stop JOB_ID
--savepoint-path DIR`` print the new savepoint's path; ``strom run JOB.py --from-savepoint
PATH [--allow-non-restored-state]`` restores every job the script starts from it. The
restore is passed to the script's environments through the environment variables
:data:`SAVEPOINT_RESTORE_ENV` and :data:`ALLOW_NON_RESTORED_STATE_ENV`, which
``StreamExecutionEnvironment.__init__`` reads (a script's own ``set_savepoint_restore``
still wins). Job ids may be abbreviated to a unique prefix.
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
from rich.text import Text

from strom import __version__
from strom.config import DEFAULTS, Configuration, get_global_defaults, set_global_default
from strom.errors import JobCancelledError, StreamingError

__all__ = ["main"]

KEY_DEPENDENCIES = ("pyarrow", "msgspec", "click", "rich", "fsspec", "xxhash")
"""Distributions whose installed versions ``strom info`` reports."""

EXIT_JOB_FAILED = 1
EXIT_CONTROL_FAILED = 1  # a control command (cancel, savepoint, stop...) failed
EXIT_USAGE = 2  # click's own code for usage errors (missing script included)
EXIT_CANCELLED = 130  # 128 + SIGINT, what shells report for a Ctrl-C'd program

SAVEPOINT_RESTORE_ENV = "STROM_SAVEPOINT_RESTORE"
"""Set by ``strom run --from-savepoint PATH``: every ``StreamExecutionEnvironment`` created
while it is set restores its job from PATH."""
ALLOW_NON_RESTORED_STATE_ENV = "STROM_ALLOW_NON_RESTORED_STATE"
"""``"1"`` with ``--allow-non-restored-state`` (state of missing uids is skipped)."""
DEFAULT_SAVEPOINT_DIR = "savepoints"
"""Where ``strom savepoint``/``strom stop`` put savepoints without a directory (relative
to the current directory; Flink's ``state.savepoints.dir``). ``$STROM_SAVEPOINT_DIR``
overrides it."""
DEFAULT_SAVEPOINT_TIMEOUT_S = 60.0


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
@click.option(
    "-s",
    "--from-savepoint",
    "from_savepoint",
    metavar="PATH",
    help="Restore every job the script starts from this savepoint or retained checkpoint "
    "(its directory or _metadata file).",
)
@click.option(
    "-n",
    "--allow-non-restored-state",
    is_flag=True,
    help="With --from-savepoint: drop state of operator uids the job no longer has.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print full tracebacks of job failures.")
def run(
    script: Path,
    script_args: tuple[str, ...],
    parallelism: int | None,
    buffer_timeout: int | None,
    job_arg_options: tuple[str, ...],
    progress: bool | None,
    from_savepoint: str | None,
    allow_non_restored_state: bool,
    verbose: bool,
) -> None:
    """Run the job script SCRIPT as __main__ on the local runtime.

    The script sees sys.argv = [SCRIPT, *--job-arg values, *JOB_ARGS]. Options override
    the defaults of every StreamExecutionEnvironment the script creates; a script's own
    set_parallelism() still wins. A one-line summary of each job is printed on stderr.
    While the script runs, `strom list`, `strom cancel`, `strom savepoint` and `strom
    stop` (in another shell) control its jobs.
    """
    from strom._cli_control import ControlServer
    from strom._cli_progress import ProgressReporter

    restore = _check_savepoint_path(from_savepoint, allow_non_restored_state)

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
            _savepoint_restore(restore, allow_non_restored_state),
            _script_context(script, [*job_arg_options, *script_args]),
            reporter.installed(),
            ControlServer(str(script.resolve())).installed(),
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


def _check_savepoint_path(path: str | None, allow_non_restored_state: bool) -> str | None:
    """Validate ``--from-savepoint``: the absolute path (or URL) to restore from, or None.

    Raises:
        click.UsageError: no checkpoint/savepoint there, or the allow flag without a path.
    """
    if path is None:
        if allow_non_restored_state:
            msg = "--allow-non-restored-state needs --from-savepoint PATH"
            raise click.UsageError(msg)
        return None
    from strom._checkpoint.storage import resolve_metadata_path

    if "://" not in path:
        path = str(Path(path).expanduser().resolve())
    try:
        resolve_metadata_path(path)
    except (FileNotFoundError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="'--from-savepoint'") from e
    return path


@contextmanager
def _savepoint_restore(path: str | None, allow_non_restored_state: bool) -> Iterator[None]:
    """Set the restore environment variables for the block (see the module docstring)."""
    if path is None:
        yield
        return
    keys = (SAVEPOINT_RESTORE_ENV, ALLOW_NON_RESTORED_STATE_ENV)
    saved = {k: os.environ.get(k) for k in keys}
    os.environ[SAVEPOINT_RESTORE_ENV] = path
    os.environ[ALLOW_NON_RESTORED_STATE_ENV] = "1" if allow_non_restored_state else "0"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option(
    "-a",
    "--all",
    "show_all",
    is_flag=True,
    help="Also list jobs that ended (in processes that still run).",
)
def list_command(as_json: bool, show_all: bool) -> None:
    """List the running jobs of every local `strom run` process."""
    from strom._cli_control import list_jobs

    jobs, warnings = list_jobs(include_ended=show_all)
    for warning in warnings:
        click.echo(f"strom: warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps([j.to_json() for j in jobs], indent=2))
        return
    if not jobs:
        click.echo("No running jobs." if not show_all else "No jobs.")
        return
    import datetime

    table = Table(title="Jobs" if show_all else "Running jobs", title_justify="left")
    for column in ("Job ID", "Name", "Status", "Started", "PID", "Script"):
        table.add_column(column, no_wrap=column in ("Job ID", "Started"))
    for j in jobs:
        started = datetime.datetime.fromtimestamp(j.start_time / 1000, datetime.UTC).astimezone()
        table.add_row(
            j.id,
            Text(j.name),
            j.status,
            started.strftime("%Y-%m-%d %H:%M:%S"),
            str(j.process.pid),
            Text(j.process.script or "-"),
        )
    console = Console(highlight=False)
    if not console.is_terminal:  # piped: never crop job ids to 80 columns
        console = Console(highlight=False, width=200)
    console.print(table)


@main.command(short_help="Cancel a running job.")
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel the job JOB_ID (a unique prefix is enough); its `strom run` exits 130."""
    from strom._cli_control import ControlError, cancel_job, resolve_job

    try:
        job = resolve_job(job_id)
        cancel_job(job)
    except ControlError as e:
        _fail(str(e), EXIT_CONTROL_FAILED)
    click.echo(f"Cancelled job {job.id}.")


_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_SAVEPOINT_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the savepoint.",
)


@main.command(short_help="Take a savepoint of a running job.")
@click.argument("job_id")
@click.argument("target_directory", required=False, metavar="[DIR]")
@_timeout_option
def savepoint(job_id: str, target_directory: str | None, timeout: float) -> None:
    """Take a savepoint of the running job JOB_ID into a new directory under DIR
    (default: ./savepoints or $STROM_SAVEPOINT_DIR) and print its path. The job keeps
    running; it needs checkpointing enabled."""
    _savepoint(job_id, target_directory, stop=False, timeout=timeout)


@main.command(short_help="Stop a running job with a savepoint.")
@click.argument("job_id")
@click.option(
    "-p",
    "--savepoint-path",
    "target_directory",
    metavar="DIR",
    help="Directory for the savepoint (default: ./savepoints or $STROM_SAVEPOINT_DIR).",
)
@_timeout_option
def stop(job_id: str, target_directory: str | None, timeout: float) -> None:
    """Stop the job JOB_ID with a savepoint and print its path: sinks commit everything
    up to the savepoint, the job ends FINISHED and resumes with `strom run JOB.py
    --from-savepoint PATH`."""
    _savepoint(job_id, target_directory, stop=True, timeout=timeout)


def _savepoint(job_id: str, target_directory: str | None, stop: bool, timeout: float) -> None:
    """``strom savepoint`` / ``strom stop``: resolve the job, ask its process, print the path."""
    from strom._cli_control import ControlError, resolve_job, savepoint_job

    target = target_directory or os.environ.get("STROM_SAVEPOINT_DIR") or DEFAULT_SAVEPOINT_DIR
    if "://" not in target:  # the job's process may run in another directory
        target = str(Path(target).expanduser().resolve())
    try:
        job = resolve_job(job_id)
        what = "Stopping job {} with a savepoint" if stop else "Triggering a savepoint of job {}"
        click.echo(what.format(job.id) + f" into {target} ...", err=True)
        path = savepoint_job(job, target, stop, timeout)
    except ControlError as e:
        _fail(str(e), EXIT_CONTROL_FAILED)
    click.echo(path)


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
