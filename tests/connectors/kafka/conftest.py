"""Kafka test fixtures: a real Kafka-protocol broker for the whole session.

By default a ``noida-db`` broker (PyPI ``noida-db``, a dev dependency) is started on a
free loopback port and stopped (its whole process group) at the end of the session. Set
``STROM_KAFKA_BOOTSTRAP_SERVERS=host:port`` to run the same tests against another broker,
e.g. Apache Kafka.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_STARTUP_TIMEOUT_S = 30.0  # noida-db is ready in well under a second; allow slow CI machines


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kafka: needs a Kafka-protocol broker (a noida-db broker is started automatically, "
        "or set STROM_KAFKA_BOOTSTRAP_SERVERS)",
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker_child_setup() -> None:
    """In the broker process before exec: own session and process group (stopped with
    everything it spawns), and Ctrl-C restored (a shell running pytest in the background
    ignores SIGINT, and children would inherit that), since SIGINT is noida-db's clean stop
    that also reaps its server child."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _noida_executable() -> str:
    beside = Path(sys.executable).parent / "noida-db"
    if beside.exists():
        return str(beside)
    found = shutil.which("noida-db")
    if found is None:
        pytest.fail(
            "the Kafka tests need a broker: `pip install noida-db` (in the dev extras) or set "
            "STROM_KAFKA_BOOTSTRAP_SERVERS=host:port"
        )
    return found


def _wait_for_metadata(bootstrap: str, proc: subprocess.Popen[bytes] | None, log: Path) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"noida-db exited with {proc.returncode}:\n{log.read_text()}")
        try:
            admin.list_topics(timeout=1)
            return
        except Exception as e:  # broker not up yet
            last = e
            time.sleep(0.05)
    pytest.fail(f"no Kafka metadata from {bootstrap} within {_STARTUP_TIMEOUT_S} s: {last}")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running broker for this session."""
    external = os.environ.get("STROM_KAFKA_BOOTSTRAP_SERVERS")
    if external:
        _wait_for_metadata(external, None, Path(os.devnull))
        yield external
        return
    data_dir = tmp_path_factory.mktemp("noida")
    port = _free_port()
    log = data_dir / "noida.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                _noida_executable(),
                "start",
                "--data-dir",
                str(data_dir / "data"),
                "--host",
                "127.0.0.1",
                "--only",
                "kafka",
                "--kafka-port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_broker_child_setup,
        )
    bootstrap = f"127.0.0.1:{port}"
    try:
        _wait_for_metadata(bootstrap, proc, log)
        yield bootstrap
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the broker: Ctrl-C (clean, reaps its child), then SIGKILL the whole group."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the process group
    except ProcessLookupError:
        pass
    proc.wait(10)


@pytest.fixture
def new_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory: ``new_topic(partitions=4)`` creates a uniquely named topic."""
    from kafka_test_support import create_topic

    counter = iter(range(1000))

    def make(partitions: int = 4) -> str:
        name = f"{request.node.name[:40]}-{next(counter)}-{os.urandom(3).hex()}"
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        create_topic(kafka_bootstrap, name, partitions)
        return name

    return make
