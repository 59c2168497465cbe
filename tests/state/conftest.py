"""Fixtures of the state suite: every test runs against both keyed state backends."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from state_test_support import ManualClock

from strom._state.backend import KeyedStateBackend
from strom._state.factory import WRITE_CACHE_SIZE_KEY, create_keyed_state_backend

BACKENDS = ["hashmap", "rocksdb"]


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """``"hashmap"`` or ``"rocksdb"``."""
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    """The TTL clock shared by the backends a test creates."""
    return ManualClock()


MakeBackend = Callable[..., KeyedStateBackend]


@pytest.fixture
def make_backend(backend_kind: str, clock: ManualClock, tmp_path: Any) -> Iterator[MakeBackend]:
    """Create backends of the parametrized kind; all are disposed after the test, and the
    RocksDB working directories must be gone then."""
    created: list[KeyedStateBackend] = []

    def make(
        kind: str | None = None,
        parallelism: int = 1,
        subtask_index: int = 0,
        max_parallelism: int = 128,
        write_cache_size: int | None = None,
    ) -> KeyedStateBackend:
        config: dict[str, Any] = {
            "state.backend": kind or backend_kind,
            "state.backend.rocksdb.localdir": str(tmp_path / "rocksdb"),
        }
        if write_cache_size is not None:
            config[WRITE_CACHE_SIZE_KEY] = write_cache_size
        b = create_keyed_state_backend(
            config, "job1", "op-uid", subtask_index, parallelism, max_parallelism, clock=clock
        )
        created.append(b)
        return b

    yield make
    for b in created:
        b.dispose()
    rocks = tmp_path / "rocksdb"
    if rocks.exists():
        leftovers = [p for p in rocks.rglob("*")]
        assert leftovers == [], f"RocksDB files left behind: {leftovers}"
        assert os.listdir(rocks) == []


@pytest.fixture
def backend(make_backend: MakeBackend) -> KeyedStateBackend:
    """One backend of the parametrized kind owning all 128 key groups."""
    return make_backend()
