"""Runtime failures carry the operator, subtask and the original traceback."""

from __future__ import annotations

import traceback

import pytest

from strom.datastream import MapFunction, RuntimeContext, StreamExecutionEnvironment
from strom.errors import JobExecutionError, UnhashableKeyError, UserFunctionError
from strom.testing import TestingSink


def boom(x: int) -> int:
    if x == 7:
        raise ValueError("bad record 7")
    return x


def test_user_function_error_names_operator_uid_and_subtask(
    env: StreamExecutionEnvironment,
) -> None:
    env.from_sequence(1, 20).map(lambda x: x).map(boom).name("explode").uid("explode-uid") \
        .sink_to(TestingSink())
    with pytest.raises(JobExecutionError) as info:
        env.execute("failing")
    err = info.value
    cause = err.__cause__
    assert isinstance(cause, UserFunctionError)
    assert cause.operator_uid == "explode-uid"
    assert cause.operator_name == "explode"
    assert cause.subtask_index is not None and 0 <= cause.subtask_index < env.get_parallelism()
    assert cause.job_id == err.job_id
    assert "bad record 7" in str(err) and "explode-uid" in str(err) and "failing" in str(err)
    original = cause.__cause__
    assert isinstance(original, ValueError)
    tb = "".join(traceback.format_exception(original))
    assert "in boom" in tb


def test_error_in_open_is_reported() -> None:
    class BadOpen(MapFunction[int, int]):
        def open(self, runtime_context: RuntimeContext) -> None:
            raise RuntimeError("cannot connect")

        def map(self, value: int) -> int:
            return value

    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).map(BadOpen()).uid("opener").sink_to(TestingSink())
    with pytest.raises(JobExecutionError, match="cannot connect") as info:
        env.execute()
    assert isinstance(info.value.__cause__, UserFunctionError)
    assert info.value.__cause__.operator_uid == "opener"


def test_unhashable_key_is_reported_with_fix(env: StreamExecutionEnvironment) -> None:
    env.from_collection([[1, 2], [3, 4]]).key_by(lambda r: r).sum(0) \
        .uid("summer").sink_to(TestingSink())
    with pytest.raises(JobExecutionError) as info:
        env.execute()
    cause = info.value.__cause__
    assert isinstance(cause, UnhashableKeyError | UserFunctionError)
    assert "tuple" in str(info.value)


def test_error_in_sink_and_close_of_all_operators() -> None:
    closed: list[str] = []

    class Track(MapFunction[int, int]):
        def close(self) -> None:
            closed.append("map")

        def map(self, value: int) -> int:
            return 1 // (value - 3)

    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2, 3, 4]).map(Track()).sink_to(TestingSink())
    with pytest.raises(JobExecutionError, match="ZeroDivisionError"):
        env.execute()
    assert closed == ["map"]
