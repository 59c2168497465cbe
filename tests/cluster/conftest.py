"""Fixtures of the cluster tests: private MiniClusters that tests may kill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strom._cluster.minicluster import MiniCluster
from strom._executors.cluster import get_session_cluster, use_session_cluster


@pytest.fixture
def own_cluster() -> Iterator[MiniCluster]:
    """A fresh 2-TaskManager cluster used by this test's jobs, shut down afterwards."""
    previous = get_session_cluster()
    cluster = MiniCluster(2).start()
    use_session_cluster(cluster)
    try:
        yield cluster
    finally:
        use_session_cluster(previous)
        cluster.shutdown()


@pytest.fixture
def no_session_cluster() -> Iterator[None]:
    """Jobs start (and stop) a MiniCluster of their own, as outside the test suite."""
    previous = get_session_cluster()
    use_session_cluster(None)
    try:
        yield
    finally:
        use_session_cluster(previous)
