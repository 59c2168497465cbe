"""State schema evolution through real savepoints (both backends).

A job keeps one ``ValueState`` per account whose value type is a dataclass
(``ValueStateDescriptor("account", Account)`` selects the ``DataclassSerializer``). It is
stopped with a savepoint, the ``Account`` class is upgraded, and a second job restores
the savepoint:

- a field added with a default (or ``default_factory``) is filled in on restore, with
  the heap and the RocksDB backend and across them;
- a removed field, a changed field type, a new field without a default, another state
  kind or an unrelated serializer fail the job with ``StateMigrationError`` before it
  processes a record.

The "upgrade" happens in this process: the class lives in a module created by the test
(:data:`MODEL`) and each version is executed into it, so pickled heap state and the
serializer snapshots refer to ``strom_evolution_model.Account`` exactly as a real
deployment's state refers to the user's module.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import sys
import textwrap
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strom._state.serializers import (
    DataclassSerializer,
    PickleSerializer,
    SchemaCompatibility,
    TypeSerializerSnapshot,
    serializer_for,
)
from strom.connectors import DataGeneratorSource
from strom.datastream import (
    KeyedProcessFunction,
    ListStateDescriptor,
    RuntimeContext,
    StreamExecutionEnvironment,
    ValueStateDescriptor,
)
from strom.errors import JobExecutionError, StateMigrationError
from strom.testing import TestingSink

MODEL = "strom_evolution_model"
"""The module the test defines ``Account`` in (one version after the other)."""

V1 = """
    from dataclasses import dataclass

    @dataclass
    class Account:
        owner: str
        balance: int
"""

V2_ADDED_FIELDS = """
    from dataclasses import dataclass, field

    @dataclass
    class Account:
        owner: str
        balance: int
        currency: str = "EUR"
        tags: list[str] = field(default_factory=list)
"""

V2_FROZEN_REORDERED = """
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Account:
        balance: int
        owner: str
        limit: int = 100
"""

INCOMPATIBLE = {
    "field-removed": (
        """
        from dataclasses import dataclass

        @dataclass
        class Account:
            owner: str
        """,
        "no longer has the field.s. balance",
    ),
    "field-type-changed": (
        """
        from dataclasses import dataclass

        @dataclass
        class Account:
            owner: str
            balance: float
        """,
        r"balance \(int -> float\)",
    ),
    "field-without-default": (
        """
        from dataclasses import dataclass

        @dataclass
        class Account:
            owner: str
            balance: int
            iban: str
        """,
        "gained the field.s. iban without a default",
    ),
}

DEPOSITS = [(f"acct{i % 4}", i + 1) for i in range(40)]
BALANCES = {f"acct{k}": sum(a for o, a in DEPOSITS if o == f"acct{k}") for k in range(4)}


def define_account(source: str) -> type:
    """Execute one version of the ``Account`` class into :data:`MODEL`; return it."""
    module = sys.modules.get(MODEL)
    if module is None:
        module = sys.modules[MODEL] = types.ModuleType(MODEL)
    exec(textwrap.dedent(source), module.__dict__)
    cls: type = module.Account
    return cls


class Deposit(KeyedProcessFunction):
    """Adds each deposit to the key's ``Account`` (version 1 of the job)."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.cls = sys.modules[MODEL].Account
        self.state = runtime_context.get_state(ValueStateDescriptor("account", self.cls))

    def process_element(self, value: Any, ctx: Any) -> Any:
        owner, amount = value
        account = self.state.value() or self.cls(owner=owner, balance=0)
        account = dataclasses.replace(account, balance=account.balance + amount)
        self.state.update(account)
        yield owner, account.balance


class Probe(KeyedProcessFunction):
    """Emits the restored state of each probed key (version 2 of the job).

    Args:
        descriptor: how version 2 declares the state.
    """

    def __init__(self, descriptor: Any) -> None:
        self.descriptor = descriptor

    def open(self, runtime_context: RuntimeContext) -> None:
        if isinstance(self.descriptor, ListStateDescriptor):
            self.state = runtime_context.get_list_state(self.descriptor)
        else:
            self.state = runtime_context.get_state(self.descriptor)

    def process_element(self, value: Any, ctx: Any) -> Any:
        yield value, self.state.value()


@pytest.fixture
def model() -> Iterator[None]:
    """Start with version 1 of ``Account``; remove the module afterwards."""
    define_account(V1)
    try:
        yield
    finally:
        sys.modules.pop(MODEL, None)


def take_savepoint(tmp_path: Path, backend: str) -> str:
    """Run version 1 until every deposit is applied, stop it with a savepoint."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.configure("state.backend", backend)
    env.enable_checkpointing(60_000)  # savepoints only
    env.get_checkpoint_config().set_checkpoint_storage(str(tmp_path / "chk"))
    n = len(DEPOSITS)
    # unbounded: the deposits, then nothing (None is filtered) until the stop
    source = DataGeneratorSource(lambda i: DEPOSITS[i] if i < n else None, None, 4000.0)
    sink = TestingSink()
    (
        env.from_source(source, None, "deposits")
        .uid("deposits")
        .filter(lambda r: r is not None)
        .uid("present")
        .key_by(lambda r: r[0])
        .process(Deposit())
        .uid("accounts")
        .sink_to(sink)
        .uid("sink")
    )
    client = env.execute_async("accounts v1")
    deadline = time.monotonic() + 15
    while len(sink.results) < n:
        assert time.monotonic() < deadline, f"only {len(sink.results)} of {n} deposits"
        time.sleep(0.01)
    path = client.stop_with_savepoint(str(tmp_path / "savepoints"), timeout=20)
    finals = {owner: balance for owner, balance in sink.results}
    assert finals == BALANCES
    return path


def restore(
    path: str, backend: str, descriptor: Any, sink: TestingSink | None = None
) -> list[tuple[str, Any]]:
    """Run version 2: probe every account's restored state; return the probe results."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.configure("state.backend", backend)
    # the probes replace the deposit generator, whose source state is dropped
    env.set_savepoint_restore(path, allow_non_restored_state=True)
    sink = sink if sink is not None else TestingSink()
    (
        env.from_collection(sorted(BALANCES))
        .uid("probes")
        .key_by(lambda owner: owner)
        .process(Probe(descriptor))
        .uid("accounts")
        .sink_to(sink)
        .uid("sink")
    )
    env.execute("accounts v2")
    return sorted(sink.results)


def migration_error(error: BaseException) -> StateMigrationError | None:
    """The StateMigrationError in ``error``'s cause chain, if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, StateMigrationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@pytest.mark.usefixtures("model")
@pytest.mark.parametrize(
    ("written_by", "restored_by"),
    [
        ("hashmap", "hashmap"),
        ("rocksdb", "rocksdb"),
        ("hashmap", "rocksdb"),
        ("rocksdb", "hashmap"),
    ],
)
def test_added_fields_get_their_defaults(tmp_path: Path, written_by: str, restored_by: str) -> None:
    path = take_savepoint(tmp_path, written_by)
    account = define_account(V2_ADDED_FIELDS)
    out = restore(path, restored_by, ValueStateDescriptor("account", account))
    assert [owner for owner, _ in out] == sorted(BALANCES)
    for owner, value in out:
        assert type(value) is account
        assert value == account(owner=owner, balance=BALANCES[owner], currency="EUR", tags=[])
        assert vars(value)["currency"] == "EUR"  # stored on the object, not the class default


@pytest.mark.usefixtures("model")
@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_reordered_fields_and_frozen_class(tmp_path: Path, backend: str) -> None:
    path = take_savepoint(tmp_path, backend)
    account = define_account(V2_FROZEN_REORDERED)
    out = restore(path, backend, ValueStateDescriptor("account", account))
    assert out == [
        (owner, account(balance=balance, owner=owner, limit=100))
        for owner, balance in sorted(BALANCES.items())
    ]


@pytest.mark.usefixtures("model")
@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
@pytest.mark.parametrize("change", sorted(INCOMPATIBLE))
def test_incompatible_class_changes_fail_before_processing(
    tmp_path: Path, backend: str, change: str
) -> None:
    path = take_savepoint(tmp_path, backend)
    source, message = INCOMPATIBLE[change]
    account = define_account(source)
    sink = TestingSink()
    with pytest.raises(JobExecutionError) as info:
        restore(path, backend, ValueStateDescriptor("account", account), sink)
    error = migration_error(info.value)
    assert error is not None, info.value
    assert "restored state 'account' is incompatible" in str(error)
    assert re.search(message, str(error)), str(error)
    assert sink.results == []  # failed while opening, before any record


@pytest.mark.usefixtures("model")
@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (
            lambda: ListStateDescriptor("account", sys.modules[MODEL].Account),
            "stored as value state but is now declared as list state",
        ),
        (
            lambda: ValueStateDescriptor("account", int),
            "could not be migrated from serializer 'strom.dataclass' to 'strom.int'",
        ),
    ],
    ids=["other-state-kind", "other-serializer"],
)
def test_other_state_kind_or_serializer_fails(
    tmp_path: Path, backend: str, declare: Any, message: str
) -> None:
    path = take_savepoint(tmp_path, backend)
    sink = TestingSink()
    with pytest.raises(JobExecutionError) as info:
        restore(path, backend, declare(), sink)
    error = migration_error(info.value)
    assert error is not None, info.value
    assert message in str(error)
    assert sink.results == []


# -- the serializer's rules, without jobs -------------------------------------------------


def test_dataclass_serializer_snapshot_and_compatibility_rules() -> None:
    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 0
        tags: list[str] = dataclasses.field(default_factory=list)

    ser = serializer_for(Point)
    assert isinstance(ser, DataclassSerializer)
    assert ser.fields == (("x", "int"), ("y", "int"), ("tags", "list[str]"))
    snap = pickle.loads(pickle.dumps(ser.snapshot_configuration()))
    # a class defined in a function cannot be imported: found among the seen classes
    restored = snap.restore_serializer()
    assert restored == ser
    assert restored.deserialize(ser.serialize(Point(1, 2, ["a"]))) == Point(1, 2, ["a"])
    assert snap.resolve_compatibility(ser) is SchemaCompatibility.COMPATIBLE_AS_IS
    with pytest.raises(TypeError, match="cannot encode a int"):
        ser.serialize(1)

    def old(*fields: tuple[str, str], cls: str = ser.path) -> TypeSerializerSnapshot:
        return TypeSerializerSnapshot("strom.dataclass", 1, {"cls": cls, "fields": fields})

    added = old(("x", "int"))
    assert added.resolve_compatibility(ser) is SchemaCompatibility.COMPATIBLE_AFTER_MIGRATION
    assert added.restore_serializer().deserialize(pickle.dumps((5,))) == Point(5, 0, [])
    reordered = old(("tags", "list[str]"), ("y", "int"), ("x", "int"))
    assert reordered.resolve_compatibility(ser) is SchemaCompatibility.COMPATIBLE_AFTER_MIGRATION
    assert reordered.restore_serializer().deserialize(pickle.dumps((["t"], 2, 1))) == Point(
        1, 2, ["t"]
    )
    for incompatible, reason in [
        (old(("x", "int"), ("z", "int")), "no longer has the field.s. z"),
        (old(("x", "str")), r"x \(str -> int\)"),
        (old(("x", "int"), cls="elsewhere.Point"), "written with class 'elsewhere.Point'"),
    ]:
        compat, why = ser.resolve_schema_compatibility(incompatible)
        assert compat is SchemaCompatibility.INCOMPATIBLE
        assert re.search(reason, why), why
    # values stored with pickle can move to the dataclass serializer (and back)
    pickled = PickleSerializer().snapshot_configuration()
    assert pickled.resolve_compatibility(ser) is SchemaCompatibility.COMPATIBLE_AFTER_MIGRATION
    gone = old(("x", "int"), cls="no_such_module_xyz.Point")
    with pytest.raises(LookupError, match="cannot be found"):
        gone.restore_serializer()


@pytest.mark.usefixtures("model")
def test_nested_class_is_found_by_its_qualified_name() -> None:
    define_account(
        """
        from dataclasses import dataclass

        class Bank:
            @dataclass
            class Account:
                owner: str

        Account = Bank.Account
        """
    )
    account = sys.modules[MODEL].Bank.Account
    snap = serializer_for(account).snapshot_configuration()
    assert snap.config["cls"] == f"{MODEL}.Bank.Account"
    restored = snap.restore_serializer()
    assert restored.deserialize(restored.serialize(account("x"))) == account("x")
