"""Shared fixtures: every dataflow test runs at parallelism 1 and on a multi-process cluster.

``parallelism`` 1 runs in-process on the LocalExecutor; parallelism 2 runs on an
embedded MiniCluster of TaskManager processes (network channels, remote source readers,
results shipped back to the client). One warm cluster serves every job of the session,
so a test pays for deployment only, not for process start-up.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strom.datastream import StreamExecutionEnvironment

SESSION_TASKMANAGERS = 2  # as many as the CI machine has cores: p2 jobs cross processes


@pytest.fixture(scope="session")
def minicluster() -> Iterator[object]:
    """A MiniCluster shared by every multi-process job of the test session."""
    from strom._cluster.minicluster import MiniCluster
    from strom._executors.cluster import use_session_cluster

    cluster = MiniCluster(SESSION_TASKMANAGERS).start()
    use_session_cluster(cluster)
    try:
        yield cluster
    finally:
        use_session_cluster(None)
        cluster.shutdown()


@pytest.fixture(params=[1, 2], ids=["p1", "p2"])
def parallelism(request: pytest.FixtureRequest) -> int:
    """The default parallelism a dataflow test runs with (2 = on the MiniCluster)."""
    if request.param > 1:
        request.getfixturevalue("minicluster")
    return int(request.param)


@pytest.fixture
def env(parallelism: int) -> StreamExecutionEnvironment:
    """A fresh environment with the parametrised default parallelism."""
    e = StreamExecutionEnvironment.get_execution_environment()
    e.set_parallelism(parallelism)
    return e


@pytest.fixture(autouse=True, scope="session")
def _private_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep `strom run` control files of the tests out of ~/.strom/run."""
    import os

    old = os.environ.get("STROM_RUN_DIR")
    os.environ["STROM_RUN_DIR"] = str(tmp_path_factory.mktemp("strom-run"))
    yield
    if old is None:
        os.environ.pop("STROM_RUN_DIR", None)
    else:
        os.environ["STROM_RUN_DIR"] = old
