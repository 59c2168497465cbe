"""The public surface: every public module's ``__all__`` matches what it defines."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_MODULES = [
    "strom",
    "strom.datastream",
    "strom.connectors",
    "strom.connectors.file",
    "strom.testing",
    "strom.errors",
    "strom.config",
    "strom.datastream.window",
    "strom.datastream.trigger",
    "strom.datastream.evictor",
    "strom.datastream.window_function",
    "strom.datastream.state",
    "strom.datastream.state_backend",
    "strom.datastream.state_ttl",
    "strom.datastream.checkpoint_config",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_names_exist_and_are_public(name: str) -> None:
    mod = importlib.import_module(name)
    exported = set(mod.__all__)
    for attr in exported:
        assert hasattr(mod, attr), f"{name}.__all__ lists missing {attr}"
    public = {
        n for n, v in vars(mod).items()
        if not n.startswith("_") and not isinstance(v, type(importlib))
        and getattr(v, "__module__", name).startswith(name)
        and n not in ("annotations",)
    }
    missing = {n for n in public if n not in exported and callable(vars(mod)[n])}
    assert not missing, f"{name} defines public names not in __all__: {sorted(missing)}"


def test_contract_names_are_importable() -> None:
    from strom.connectors import DataGeneratorSource, NumberSequenceSource, PrintSink  # noqa: F401
    from strom.connectors.file import Encoder, FileSink, FileSource, StreamFormat  # noqa: F401
    from strom.datastream import (  # noqa: F401
        JobClient,
        JobExecutionResult,
        KeyedProcessFunction,
        OutputTag,
        RuntimeExecutionMode,
        StreamExecutionEnvironment,
    )
    from strom.testing import TestingSink, TestingSource  # noqa: F401
