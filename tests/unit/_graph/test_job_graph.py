"""Graph translation: chaining rules, plan JSON, uids and build-time validation."""

from __future__ import annotations

import json

import pytest

from strom.connectors import DataGeneratorSource
from strom.datastream import RuntimeExecutionMode, StreamExecutionEnvironment
from strom.errors import DuplicateUidError, InvalidKeySelectorError, InvalidProgramError
from strom.testing import TestingSink


def plan(env: StreamExecutionEnvironment) -> dict:
    return json.loads(env.get_execution_plan())


def test_map_filter_map_chain_is_one_task() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2]).map(lambda x: x).filter(bool).map(str).sink_to(TestingSink())
    p = plan(env)
    assert len(p["nodes"]) == 1
    node = p["nodes"][0]
    assert (
        node["description"]
        == "Source: Collection Source -> Map -> Filter -> Map -> Sink: TestingSink"
    )
    assert [o["name"] for o in node["operators"]] == [
        "Collection Source",
        "Map",
        "Filter",
        "Map",
        "TestingSink",
    ]
    assert p["type"] == "STREAMING"


def test_key_by_breaks_chain_with_hash_edge() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    (
        env.from_sequence(1, 10)
        .map(lambda x: (x % 2, x))
        .key_by(0)
        .sum(1)
        .map(str)
        .sink_to(TestingSink())
    )
    nodes = plan(env)["nodes"]
    assert [n["description"] for n in nodes] == [
        "Source: Sequence Source -> Map",
        "Sum -> Map -> Sink: TestingSink",
    ]
    assert nodes[1]["inputs"][0]["ship_strategy"] == "HASH"
    assert nodes[1]["inputs"][0]["id"] == nodes[0]["id"]
    assert all(n["parallelism"] == 2 for n in nodes)


def test_disable_chaining_start_new_chain_and_parallelism_change() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    s = env.from_sequence(1, 10).map(lambda x: x).name("a")
    s = s.map(lambda x: x).name("b").disable_chaining()
    s = s.map(lambda x: x).name("c")
    s = s.map(lambda x: x).name("d").start_new_chain()
    s = s.map(lambda x: x).name("e").set_parallelism(3)
    s.sink_to(TestingSink())
    nodes = plan(env)["nodes"]
    assert [n["description"] for n in nodes] == [
        "Source: Sequence Source -> a",
        "b",
        "c",
        "d",
        "e",
        "Sink: TestingSink",
    ]
    assert [i["ship_strategy"] for i in nodes[-2]["inputs"]] == ["REBALANCE"]
    assert [n["parallelism"] for n in nodes] == [1, 1, 1, 1, 3, 1]


def test_env_disable_operator_chaining() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.disable_operator_chaining()
    env.from_collection([1]).map(lambda x: x).sink_to(TestingSink())
    assert len(plan(env)["nodes"]) == 3


def test_side_output_and_union_edges() -> None:
    from strom.datastream import OutputTag

    env = StreamExecutionEnvironment.get_execution_environment()
    tag = OutputTag("late")
    main = env.from_collection([1]).process(lambda v, ctx: [v])
    main.get_side_output(tag).union(main).sink_to(TestingSink())
    nodes = plan(env)["nodes"]
    # the sink has two inputs (side output + main), so it cannot be chained
    assert len(nodes) == 2
    assert sorted(i.get("side_output", "-") for i in nodes[1]["inputs"]) == ["-", "late"]


def test_uids_flow_into_plan_and_duplicates_fail() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).uid("src").map(lambda x: x).uid("m").sink_to(TestingSink()).uid("out")
    ops = plan(env)["nodes"][0]["operators"]
    assert [o["uid"] for o in ops] == ["src", "m", "out"]
    with pytest.raises(DuplicateUidError, match="duplicate uid 'm'"):
        env.from_collection([2]).map(lambda x: x).uid("m")


def test_invalid_uid_and_name() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    s = env.from_collection([1])
    with pytest.raises(InvalidProgramError, match="invalid uid"):
        s.uid("a/b")
    with pytest.raises(InvalidProgramError, match="invalid uid"):
        s.uid("")
    with pytest.raises(InvalidProgramError, match="non-empty str"):
        s.name("")


def test_missing_sink_fails_at_build_time() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).map(lambda x: x)
    with pytest.raises(InvalidProgramError, match=r"no sink.*\.print\(\)"):
        env.execute()


def test_bad_key_selector_and_bad_functions_fail_at_build_time() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    s = env.from_collection([(1, 2)])
    with pytest.raises(InvalidKeySelectorError, match="key_by"):
        s.key_by([0])  # type: ignore[arg-type]
    with pytest.raises(InvalidKeySelectorError):
        s.key_by(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidProgramError, match=r"map\(\) needs a MapFunction or a callable"):
        s.map(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidProgramError, match="sum"):
        s.key_by(0).sum(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidProgramError, match="key_by"):
        s.key_by(0).uid("x")


def test_batch_mode_needs_bounded_sources() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    env.from_source(DataGeneratorSource(lambda i: i, None), None, "gen").sink_to(TestingSink())
    with pytest.raises(InvalidProgramError, match="BATCH execution needs bounded sources"):
        env.execute()


def test_automatic_mode_resolves() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.AUTOMATIC)
    env.from_collection([1]).sink_to(TestingSink())
    assert plan(env)["type"] == "BATCH"
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.AUTOMATIC)
    env.from_source(DataGeneratorSource(lambda i: i, None), None, "g").sink_to(TestingSink())
    assert plan(env)["type"] == "STREAMING"


def test_explicit_source_parallelism_beyond_its_max_fails() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).set_parallelism(2).sink_to(TestingSink())
    with pytest.raises(InvalidProgramError, match="at most parallelism 1"):
        env.execute()


def test_forward_between_different_parallelism_fails() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_sequence(1, 3).forward().map(lambda x: x).set_parallelism(2).sink_to(TestingSink())
    with pytest.raises(InvalidProgramError, match="forward"):
        env.execute()
