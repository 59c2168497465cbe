"""Shared fixtures: every dataflow test runs at parallelism 1 and 2."""

from __future__ import annotations

import pytest

from strom.datastream import StreamExecutionEnvironment


@pytest.fixture(params=[1, 2], ids=["p1", "p2"])
def parallelism(request: pytest.FixtureRequest) -> int:
    """The default parallelism a dataflow test runs with."""
    return int(request.param)


@pytest.fixture
def env(parallelism: int) -> StreamExecutionEnvironment:
    """A fresh environment with the parametrised default parallelism."""
    e = StreamExecutionEnvironment.get_execution_environment()
    e.set_parallelism(parallelism)
    return e
