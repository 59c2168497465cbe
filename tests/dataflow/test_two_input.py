"""Connected streams, broadcast state, window joins and interval joins (exact outputs)."""

from __future__ import annotations

from typing import Any

from strom.datastream import StreamExecutionEnvironment, Watermark, WatermarkStrategy
from strom.datastream.functions import (
    BroadcastProcessFunction,
    CoFlatMapFunction,
    CoMapFunction,
    CoProcessFunction,
    KeyedBroadcastProcessFunction,
    KeyedCoProcessFunction,
    ProcessJoinFunction,
)
from strom.datastream.state import ValueStateDescriptor
from strom.datastream.window import TumblingEventTimeWindows
from strom.testing import TestingSink, TestingSource

EXPLICIT = WatermarkStrategy.no_watermarks().with_timestamp_assigner(lambda e: e[1])


def collect(env: StreamExecutionEnvironment, stream: Any) -> list:
    sink = TestingSink()
    stream.sink_to(sink)
    env.execute()
    return sorted(sink.results, key=repr)


def test_co_map_and_co_flat_map(env: StreamExecutionEnvironment) -> None:
    class Both(CoMapFunction):
        def map1(self, value: int) -> str:
            return f"int:{value}"

        def map2(self, value: str) -> str:
            return f"str:{value}"

    a = env.from_collection([1, 2])
    b = env.from_collection(["x"])
    assert collect(env, a.connect(b).map(Both())) == ["int:1", "int:2", "str:x"]

    class Split(CoFlatMapFunction):
        def flat_map1(self, value: int) -> Any:
            yield from [value] * value

        def flat_map2(self, value: str) -> Any:
            yield from value

    env2 = StreamExecutionEnvironment.get_execution_environment()
    a = env2.from_collection([2])
    b = env2.from_collection(["ab"])
    assert collect(env2, a.connect(b).flat_map(Split())) == sorted([2, 2, "a", "b"], key=repr)


def test_co_process_non_keyed() -> None:
    class Tag(CoProcessFunction):
        def process_element1(self, value: Any, ctx: Any) -> Any:
            yield ("left", value)

        def process_element2(self, value: Any, ctx: Any) -> Any:
            yield ("right", value)

    env = StreamExecutionEnvironment.get_execution_environment()
    out = collect(env, env.from_collection([1]).connect(env.from_collection([2])).process(Tag()))
    assert out == [("left", 1), ("right", 2)]


def test_keyed_co_process_enrichment(env: StreamExecutionEnvironment) -> None:
    """Orders wait for their customer's name (shared keyed state across both inputs)."""

    class Enrich(KeyedCoProcessFunction):
        def open(self, runtime_context: Any) -> None:
            self.name = runtime_context.get_state(ValueStateDescriptor("name"))
            self.pending = runtime_context.get_state(ValueStateDescriptor("pending"))

        def process_element1(self, order: Any, ctx: Any) -> Any:
            name = self.name.value()
            if name is None:
                self.pending.update([*(self.pending.value() or []), order])
            else:
                yield (order[1], name)

        def process_element2(self, customer: Any, ctx: Any) -> Any:
            self.name.update(customer[1])
            for order in self.pending.value() or []:
                yield (order[1], customer[1])
            self.pending.clear()

    orders = env.from_collection([("c1", "o1"), ("c2", "o2"), ("c1", "o3")])
    customers = env.from_collection([("c1", "Ann"), ("c2", "Bob")])
    out = collect(env, orders.connect(customers).key_by(lambda o: o[0], lambda c: c[0])
                  .process(Enrich()))
    assert out == [("o1", "Ann"), ("o2", "Bob"), ("o3", "Ann")]


def test_broadcast_state_rules(env: StreamExecutionEnvironment) -> None:
    from strom.datastream.state import ValueStateDescriptor as Desc

    rules_desc = Desc("rules")

    class Apply(BroadcastProcessFunction):
        def process_element(self, value: int, ctx: Any) -> Any:
            rules = ctx.get_broadcast_state(rules_desc)
            if rules.get("threshold") is not None and value > rules.get("threshold"):
                yield value

        def process_broadcast_element(self, rule: Any, ctx: Any) -> Any:
            ctx.get_broadcast_state(rules_desc).put(rule[0], rule[1])
            return None

    # the order between the two inputs is not defined (as in Flink): records that arrive
    # before the rule pass nothing; the rule arrives within the first few batches
    rules = env.from_source(TestingSource([("threshold", 5)]), None, "rules")
    from strom.connectors import DataGeneratorSource

    # the data trickles in over ~1 s; the rule (one record) arrives long before the end
    data = env.from_source(DataGeneratorSource(lambda i: i, 2000, 2000.0), None, "data") \
        .map(lambda x: x)
    out = collect(env, data.connect(rules.broadcast(rules_desc)).process(Apply()))
    # each reader emits its half over ~0.5-1 s; the second half of each is surely late
    # enough to see the rule
    late_enough = {v for v in range(2000) if v % 1000 >= 500}
    assert late_enough <= set(out) <= set(range(6, 2000))
    assert len(out) == len(set(out))  # every subtask has the rule once: no duplicates


def test_keyed_broadcast_apply_to_keyed_state() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    desc = ValueStateDescriptor("prefix")

    class Label(KeyedBroadcastProcessFunction):
        def process_element(self, value: Any, ctx: Any) -> Any:
            prefix = ctx.get_broadcast_state(desc).get("p") or "?"
            yield f"{prefix}{ctx.get_current_key()}:{value[1]}"

        def process_broadcast_element(self, value: Any, ctx: Any) -> Any:
            ctx.get_broadcast_state(desc).put("p", value)
            return None

    data = env.from_collection([("a", 1), ("b", 2)])
    out = collect(env, data.key_by(lambda e: e[0]).connect(
        env.from_collection(["#"]).broadcast(desc)).process(Label()))
    assert len(out) == 2 and all(o.endswith((":1", ":2")) for o in out)


def test_window_join_and_co_group(env: StreamExecutionEnvironment) -> None:
    left = [("a", 1, "L1"), ("a", 12, "L2"), ("b", 3, "L3")]
    right = [("a", 2, "R1"), ("a", 5, "R2"), ("b", 15, "R3")]
    a = env.from_source(TestingSource(left), EXPLICIT, "left")
    b = env.from_source(TestingSource(right), EXPLICIT, "right")
    joined = a.join(b).where(lambda e: e[0]).equal_to(lambda e: e[0]) \
        .window(TumblingEventTimeWindows.of(10)).apply(lambda x, y: (x[2], y[2]))
    assert collect(env, joined) == [("L1", "R1"), ("L1", "R2")]

    env2 = StreamExecutionEnvironment.get_execution_environment()
    a = env2.from_source(TestingSource(left), EXPLICIT, "left")
    b = env2.from_source(TestingSource(right), EXPLICIT, "right")
    grouped = a.co_group(b).where(lambda e: e[0]).equal_to(lambda e: e[0]) \
        .window(TumblingEventTimeWindows.of(10)) \
        .apply(lambda xs, ys: [(len(xs), len(ys))])
    assert collect(env2, grouped) == [(0, 1), (1, 0), (1, 0), (1, 2)]


def test_interval_join(env: StreamExecutionEnvironment) -> None:
    class Pair(ProcessJoinFunction):
        def process_element(self, left: Any, right: Any, ctx: Any) -> Any:
            yield (left[2], right[2], ctx.get_timestamp())

    left = [("k", 10, "a"), ("k", 20, "b"), ("x", 10, "c")]
    right = [("k", 8, "r8"), ("k", 11, "r11"), ("k", 13, "r13"), ("k", 21, "r21"),
             ("x", 100, "rx")]
    a = env.from_source(TestingSource(left), EXPLICIT, "l").key_by(lambda e: e[0])
    b = env.from_source(TestingSource(right), EXPLICIT, "r").key_by(lambda e: e[0])
    out = collect(env, a.interval_join(b).between(-2, 1).process(Pair()))
    assert out == [("a", "r11", 11), ("a", "r8", 10), ("b", "r21", 21)]

    env2 = StreamExecutionEnvironment.get_execution_environment()
    a = env2.from_source(TestingSource(left), EXPLICIT, "l").key_by(lambda e: e[0])
    b = env2.from_source(TestingSource(right), EXPLICIT, "r").key_by(lambda e: e[0])
    out = collect(env2, a.interval_join(b).between(-2, 1).lower_bound_exclusive()
                  .upper_bound_exclusive().process(Pair()))
    assert out == []


def test_interval_join_cleans_buffers_and_drops_late() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()

    class Pair(ProcessJoinFunction):
        def process_element(self, left: Any, right: Any, ctx: Any) -> Any:
            yield (left[2], right[2])

    left = [("k", 10, "a"), Watermark(50), ("k", 5, "late")]
    right = [("k", 60, "r60"), ("k", 11, "r11")]
    a = env.from_source(TestingSource(left, batch_size=1), EXPLICIT, "l").key_by(lambda e: e[0])
    b = env.from_source(TestingSource(right, batch_size=1), EXPLICIT, "r").key_by(lambda e: e[0])
    out = collect(env, a.interval_join(b).between(0, 5).process(Pair()))
    # r11 may arrive before or after the left watermark 50 (two sources); either way the
    # late left record never joins
    assert out in ([("a", "r11")], [])
