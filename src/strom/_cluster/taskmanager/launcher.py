"""A fork server that starts TaskManager processes in milliseconds.

Importing Strom takes ~0.3 s, so TaskManagers are not started from a fresh interpreter
each time: :class:`ProcessLauncher` starts this module once per client process
(``python -m strom._cluster.taskmanager.launcher``), it imports the TaskManager code and
then forks one child per request. Unlike ``multiprocessing``'s forkserver it never
re-imports the user's ``__main__`` (``strom run job.py`` scripts need no
``if __name__ == "__main__"`` guard), and the server is single-threaded, so forking is
safe.

Protocol: requests are JSON lines on the server's stdin (``{"tm_id", "jm_address",
"data_address", "temp_dir"}``); answers are JSON lines on the pipe whose fd is given as argv[1]:
``{"spawned": tm_id, "pid": n}`` and ``{"exited": pid, "status": s}`` (``s`` < 0: killed by
signal ``-s``) when a child ends. The server exits when its stdin closes (client gone);
children exit on their own when their JobManager connection drops.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

__all__ = ["ProcessLauncher", "describe_exit", "main"]

logger = logging.getLogger(__name__)

_READY_TIMEOUT_S = 30.0  # the server imports Strom once; generous for a loaded CI machine


def describe_exit(status: int | None) -> str:
    """Human text for an exit status in ``subprocess`` convention (< 0: signal)."""
    if status is None:
        return "disconnected (process state unknown)"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with code {status}"


class ProcessLauncher:
    """Client side of the fork server.

    Args:
        on_exit: ``(pid, status)`` callback when a launched process ends (reader thread).
    """

    def __init__(self, on_exit: Callable[[int, int], None]) -> None:
        self.on_exit = on_exit
        self.exit_status: dict[int, int] = {}
        self._spawned: dict[str, int] = {}
        self._cond = threading.Condition()
        self._lock = threading.Lock()
        r, w = os.pipe()
        env = dict(os.environ)
        # the server must import the same Strom as this process (src checkouts, tests)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "strom._cluster.taskmanager.launcher", str(w)],
            stdin=subprocess.PIPE,
            pass_fds=(w,),
            env=env,
            close_fds=True,
        )
        os.close(w)
        self._answers: IO[bytes] = os.fdopen(r, "rb")
        self._ready = threading.Event()
        threading.Thread(target=self._read_loop, name="strom-launcher", daemon=True).start()
        if not self._ready.wait(_READY_TIMEOUT_S):
            self.close()
            msg = "the TaskManager launcher did not start"
            raise RuntimeError(msg)

    def _read_loop(self) -> None:
        for line in self._answers:
            try:
                ans = json.loads(line)
            except ValueError:
                continue
            if "ready" in ans:
                self._ready.set()
            elif "spawned" in ans:
                with self._cond:
                    self._spawned[ans["spawned"]] = int(ans["pid"])
                    self._cond.notify_all()
            elif "exited" in ans:
                pid, status = int(ans["exited"]), int(ans["status"])
                with self._cond:
                    self.exit_status[pid] = status
                    self._cond.notify_all()
                self.on_exit(pid, status)
        self._answers.close()
        self._ready.set()

    def spawn(self, tm_id: str, jm_address: str, data_address: str, timeout_s: float = 10.0,
              temp_dir: str | None = None) -> int:
        """Fork a TaskManager; return its pid.

        Args:
            tm_id: its id.
            jm_address: the JobManager's control address.
            data_address: where it listens for data connections.
            timeout_s: how long to wait for the fork.
            temp_dir: its temporary directory (RocksDB instances, ...), or None for the
                system default.

        Raises:
            RuntimeError: the launcher is gone or did not answer in time.
        """
        req = json.dumps(
            {"tm_id": tm_id, "jm_address": jm_address, "data_address": data_address,
             "temp_dir": temp_dir}
        )
        with self._lock:
            stdin = self.proc.stdin
            assert stdin is not None
            try:
                stdin.write(req.encode() + b"\n")
                stdin.flush()
            except OSError as e:
                msg = f"the TaskManager launcher is gone: {e}"
                raise RuntimeError(msg) from e
        with self._cond:
            if not self._cond.wait_for(lambda: tm_id in self._spawned, timeout_s):
                msg = f"the launcher did not start TaskManager {tm_id}"
                raise RuntimeError(msg)
            return self._spawned[tm_id]

    def wait_exit(self, pid: int, timeout_s: float) -> int | None:
        """Wait until ``pid`` exited; its status, or None on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: pid in self.exit_status, timeout_s)
            return self.exit_status.get(pid)

    def close(self) -> None:
        """Stop the server (running children are not touched)."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a wedged server
            self.proc.kill()
            self.proc.wait()


# -- server side --------------------------------------------------------------------------
def _write(out: Any, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj).encode() + b"\n")
    out.flush()


def main() -> None:
    """Fork-server entry point (``python -m strom._cluster.taskmanager.launcher FD``)."""
    import select

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the client
    from strom._cluster.taskmanager import task_executor  # the one slow import

    out = os.fdopen(int(sys.argv[1]), "wb")
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _write(out, {"ready": True})
    stdin = sys.stdin.buffer
    pending = b""
    while True:
        try:
            readable, _, _ = select.select([stdin, wake_r], [], [])
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap(out)
        if stdin in readable:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                req = json.loads(line)
                pid = os.fork()
                if pid == 0:  # child: become a TaskManager
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    for fd in (wake_r, wake_w, out.fileno()):
                        os.close(fd)
                    devnull = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(devnull, 0)
                    os.close(devnull)
                    code = 0
                    try:
                        task_executor.main(req["tm_id"], req["jm_address"], req["data_address"],
                                           req.get("temp_dir"))
                    except BaseException:
                        logging.getLogger(__name__).exception("TaskManager failed")
                        code = 1
                    finally:
                        sys.stdout.flush()
                        sys.stderr.flush()
                        os._exit(code)
                _write(out, {"spawned": req["tm_id"], "pid": pid})
    _reap(out)


def _reap(out: Any) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        try:
            _write(out, {"exited": pid, "status": code})
        except OSError:
            return


if __name__ == "__main__":
    main()
