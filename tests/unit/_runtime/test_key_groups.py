"""Tests for stable key hashing, KeyGroupRange and KeyGroupRangeAssignment."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import subprocess
import sys
from collections import Counter, namedtuple
from dataclasses import dataclass
from pathlib import Path

import pytest

from strom._runtime import key_groups as kg_module
from strom._runtime.key_groups import (
    DEFAULT_MAX_PARALLELISM,
    UPPER_BOUND_MAX_PARALLELISM,
    KeyGroupRange,
    KeyGroupRangeAssignment,
    channel_indices,
    key_groups_of,
    stable_hash,
)
from strom.errors import ConfigurationError

KRA = KeyGroupRangeAssignment

MIXED_KEYS = [
    "",
    "a",
    "user-42",
    "naïve ünïcödé ✓",
    "a\ud800b",  # lone surrogate
    b"",
    b"a",
    b"\x00\xff",
    0,
    1,
    7,
    2**31,
    2**63 - 1,
    2**63,
    2**64,
    10**40,
    -1,
    -(2**63),
    -(2**63) - 1,
    -(10**40),
    True,
    False,
    1.5,
    -0.25,
    1e300,
    float("inf"),
    float("-inf"),
    None,
    (),
    ("a", 1),
    ("a", (1, (b"x", None)), 2.5),
    tuple(range(12)),
    dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC),
    dt.datetime(2024, 3, 1, 12, 30),  # noqa: DTZ001 - naive keys are supported
    dt.date(2024, 3, 1),
]


# --------------------------------------------------------------------------------------
# Determinism and golden values


def test_stable_across_processes_with_different_hash_seeds() -> None:
    src_dir = str(Path(kg_module.__file__).resolve().parents[2])
    script = (
        "import datetime, json\n"
        "inf = float('inf')\n"
        "from strom._runtime.key_groups import key_groups_of, stable_hash\n"
        f"keys = {MIXED_KEYS!r}\n"
        "print(json.dumps([[stable_hash(k) for k in keys], key_groups_of(keys, 128)]))\n"
        "print(hash('user-42'))\n"
    )
    outputs = []
    builtin_hashes = []
    for seed in ("0", "12345"):
        env = dict(os.environ)
        env["PYTHONHASHSEED"] = seed
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src_dir, env.get("PYTHONPATH")) if p)
        proc = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        stable_line, builtin_line = proc.stdout.splitlines()
        outputs.append(json.loads(stable_line))
        builtin_hashes.append(int(builtin_line))
    expected = [[stable_hash(k) for k in MIXED_KEYS], key_groups_of(MIXED_KEYS, 128)]
    assert outputs[0] == outputs[1] == expected
    # The builtin hash() of a str does differ across those seeds, so the test is real.
    assert builtin_hashes[0] != builtin_hashes[1]


# Pinned values: if one of these changes, every savepoint's key-group layout changes.
GOLDEN = [
    ("", 3244421341483603138),
    ("a", 16629034431890738719),
    ("user-1", 8968379626967066057),
    (b"a", 13736891184512348403),
    (0, 14374147212387527897),
    (1, 3439722301264460078),
    (-1, 5841669975847748627),
    (2**64, 5993607276341127453),
    (1.5, 17573469769079458510),
    (None, 8025511848496242950),
    ((), 3500808013120491345),
    (("a", 1), 10044103541492755306),
]


@pytest.mark.parametrize(("key", "expected"), GOLDEN)
def test_golden_hash_values(key: object, expected: int) -> None:
    assert stable_hash(key) == expected


def test_golden_key_groups() -> None:
    keys = ["user-1", "user-2", "user-3", 10, 20, 30, ("a", 1), 1.5, None]
    assert key_groups_of(keys, 128) == [73, 84, 85, 117, 50, 126, 106, 78, 6]


def test_golden_datetime_values() -> None:
    assert stable_hash(dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC)) == 18133044688989083034
    naive = dt.datetime(2024, 3, 1, 12, 30)  # noqa: DTZ001 - naive keys are supported
    assert stable_hash(naive) == 1946322660574655427
    assert stable_hash(dt.date(2024, 3, 1)) == 7840207193993212692


# --------------------------------------------------------------------------------------
# Equality consistency


def test_range_is_non_negative_64_bit() -> None:
    for key in MIXED_KEYS:
        h = stable_hash(key)
        assert 0 <= h < 2**64


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, True),
        (0, False),
        (1, 1.0),
        (0, -0.0),
        (-3, -3.0),
        (2**70, float(2**70)),
        (("a", 1), ("a", 1.0)),
        (("a", True), ("a", 1)),
        (
            dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC),
            dt.datetime(2024, 1, 1, 13, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        ),
    ],
)
def test_equal_keys_hash_equal(a: object, b: object) -> None:
    assert a == b
    assert stable_hash(a) == stable_hash(b)


def test_distinct_keys_hash_distinct() -> None:
    hashes = [stable_hash(k) for k in MIXED_KEYS if k is not True and k is not False]
    assert len(set(hashes)) == len(hashes)


def test_builtin_subclasses_hash_as_their_value() -> None:
    class Color(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    class MyFloat(float):
        pass

    Point = namedtuple("Point", ["x", "y"])
    assert stable_hash(Color.RED) == stable_hash("red")
    assert stable_hash(Level.HIGH) == stable_hash(3)
    assert stable_hash(MyFloat(2.0)) == stable_hash(2)
    assert stable_hash(MyFloat(2.5)) == stable_hash(2.5)
    assert stable_hash(Point(1, "b")) == stable_hash((1, "b"))


def test_strom_key_hook() -> None:
    @dataclass(frozen=True)
    class Account:
        bank: str
        number: int

        def __strom_key__(self) -> tuple[str, int]:
            return (self.bank, self.number)

    assert stable_hash(Account("x", 7)) == stable_hash(("x", 7))
    assert stable_hash(("k", Account("x", 7))) == stable_hash(("k", ("x", 7)))


def test_strom_key_hook_must_return_supported_key() -> None:
    class Bad:
        def __strom_key__(self) -> list[int]:
            return [1]

    with pytest.raises(TypeError, match=r"Bad.__strom_key__\(\) returned a list"):
        stable_hash(Bad())


def test_lone_surrogate_and_big_ints_in_batches() -> None:
    keys = ["ok", "a\ud800b", 2**63, -(2**64), 5]
    assert key_groups_of(keys, 128) == [stable_hash(k) % 128 for k in keys]
    assert channel_indices(keys, 128, 3) == [stable_hash(k) % 128 * 3 // 128 for k in keys]


# --------------------------------------------------------------------------------------
# Unsupported keys


@pytest.mark.parametrize(
    ("key", "fix"),
    [
        ([1, 2], "convert the list to a tuple"),
        ({"a": 1}, "select the fields"),
        ({1, 2}, "sorted tuple"),
        (frozenset({1}), "sorted tuple"),
        (bytearray(b"x"), "convert it to bytes"),
        (object(), "__strom_key__"),
    ],
)
def test_unsupported_keys_raise_type_error(key: object, fix: str) -> None:
    with pytest.raises(TypeError) as info:
        stable_hash(key)
    message = str(info.value)
    assert type(key).__qualname__ in message
    assert "supported key types are str, bytes, int" in message
    assert fix in message


def test_unsupported_element_in_tuple_and_batch() -> None:
    with pytest.raises(TypeError, match="list"):
        stable_hash(("a", [1]))
    with pytest.raises(TypeError, match="dict"):
        key_groups_of(["a", {}], 128)
    with pytest.raises(TypeError, match="set"):
        channel_indices([1, {1}], 128, 2)


def test_decimal_and_plain_enum_are_unsupported() -> None:
    import decimal

    class Plain(enum.Enum):
        A = 1

    with pytest.raises(TypeError):
        stable_hash(decimal.Decimal("1.5"))
    with pytest.raises(TypeError):
        stable_hash(Plain.A)


# --------------------------------------------------------------------------------------
# Distribution


def test_sequential_int_keys_spread_over_key_groups() -> None:
    counts = Counter(key_groups_of(list(range(10_000)), 128))
    assert set(counts) == set(range(128))
    assert all(40 <= c <= 120 for c in counts.values()), sorted(counts.values())


def test_sequential_str_keys_spread_over_key_groups() -> None:
    counts = Counter(key_groups_of([f"user-{i}" for i in range(10_000)], 128))
    assert set(counts) == set(range(128))
    assert all(40 <= c <= 120 for c in counts.values()), sorted(counts.values())


# --------------------------------------------------------------------------------------
# KeyGroupRange


def test_key_group_range_basics() -> None:
    r = KeyGroupRange(3, 5)
    assert len(r) == 3
    assert list(r) == [3, 4, 5]
    assert r.contains(3) and r.contains(5)
    assert not r.contains(2) and not r.contains(6)
    assert 4 in r and 6 not in r and "4" not in r
    assert repr(r) == "KeyGroupRange(3, 5)"
    assert KeyGroupRange(0, 0) != KeyGroupRange.EMPTY
    assert len(KeyGroupRange(0, 0)) == 1


def test_key_group_range_is_frozen_and_hashable() -> None:
    r = KeyGroupRange(1, 2)
    with pytest.raises(AttributeError):
        r.start_key_group = 0  # type: ignore[misc]
    assert {r: 1}[KeyGroupRange(1, 2)] == 1


def test_key_group_range_empty() -> None:
    empty = KeyGroupRange.EMPTY
    assert len(empty) == 0
    assert list(empty) == []
    assert not empty
    assert not empty.contains(0) and not empty.contains(-1)
    assert repr(empty) == "KeyGroupRange.EMPTY"
    assert KeyGroupRange.of(5, 4) is empty
    assert KeyGroupRange.of(4, 4) == KeyGroupRange(4, 4)
    assert KeyGroupRange(0, -1) == empty


@pytest.mark.parametrize(("start", "end"), [(-1, 3), (5, 3), (1, 0)])
def test_key_group_range_rejects_bad_bounds(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="invalid KeyGroupRange"):
        KeyGroupRange(start, end)


def test_key_group_range_intersection() -> None:
    a = KeyGroupRange(0, 9)
    assert a.intersection(KeyGroupRange(5, 20)) == KeyGroupRange(5, 9)
    assert a.intersection(KeyGroupRange(9, 9)) == KeyGroupRange(9, 9)
    assert a.intersection(KeyGroupRange(10, 20)) is KeyGroupRange.EMPTY
    assert a.intersection(KeyGroupRange.EMPTY) is KeyGroupRange.EMPTY
    assert KeyGroupRange.EMPTY.intersection(a) is KeyGroupRange.EMPTY


# --------------------------------------------------------------------------------------
# KeyGroupRangeAssignment


@pytest.mark.parametrize("max_parallelism", [1, 7, 128, 130])
def test_range_for_operator_index_is_inverse_of_operator_index(max_parallelism: int) -> None:
    for parallelism in range(1, max_parallelism + 1):
        covered: list[int] = []
        for index in range(parallelism):
            r = KRA.compute_key_group_range_for_operator_index(max_parallelism, parallelism, index)
            assert len(r) >= 1
            for key_group in r:
                assert (
                    KRA.compute_operator_index_for_key_group(
                        max_parallelism, parallelism, key_group
                    )
                    == index
                )
            covered.extend(r)
        assert covered == list(range(max_parallelism))


def test_range_for_operator_index_examples() -> None:
    # Flink: maxP=128, p=3 -> [0,42], [43,85], [86,127]
    ranges = [KRA.compute_key_group_range_for_operator_index(128, 3, i) for i in range(3)]
    assert ranges == [KeyGroupRange(0, 42), KeyGroupRange(43, 85), KeyGroupRange(86, 127)]


def test_range_for_operator_index_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="must be >= parallelism"):
        KRA.compute_key_group_range_for_operator_index(4, 8, 0)
    with pytest.raises(ValueError, match="operator_index 3"):
        KRA.compute_key_group_range_for_operator_index(128, 3, 3)
    with pytest.raises(ConfigurationError, match="max_parallelism not within bounds"):
        KRA.compute_key_group_range_for_operator_index(UPPER_BOUND_MAX_PARALLELISM + 1, 2, 0)


def test_assign_key_helpers_agree() -> None:
    for key in MIXED_KEYS:
        kg = KRA.assign_to_key_group(key, 128)
        assert kg == stable_hash(key) % 128
        op = KRA.assign_key_to_parallel_operator(key, 128, 5)
        assert op == KRA.compute_operator_index_for_key_group(128, 5, kg)
        assert kg in KRA.compute_key_group_range_for_operator_index(128, 5, op)
    assert channel_indices(MIXED_KEYS, 128, 5) == [
        KRA.assign_key_to_parallel_operator(k, 128, 5) for k in MIXED_KEYS
    ]


@pytest.mark.parametrize(
    ("parallelism", "expected"),
    [
        (1, 128),
        (85, 128),
        (86, 256),  # 86 * 1.5 = 129 -> 256
        (100, 256),
        (1000, 2048),
        (21845, 32768),
        (32768, 32768),
    ],
)
def test_compute_default_max_parallelism(parallelism: int, expected: int) -> None:
    assert KRA.compute_default_max_parallelism(parallelism) == expected


@pytest.mark.parametrize("bad", [0, -1, UPPER_BOUND_MAX_PARALLELISM + 1, 2.0, True, "4"])
def test_check_parallelism_preconditions(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="parallelism not within bounds"):
        KRA.check_parallelism_preconditions(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        KRA.compute_default_max_parallelism(bad)  # type: ignore[arg-type]


def test_constants_and_not_instantiable() -> None:
    assert DEFAULT_MAX_PARALLELISM == KRA.DEFAULT_MAX_PARALLELISM == 128
    assert UPPER_BOUND_MAX_PARALLELISM == KRA.UPPER_BOUND_MAX_PARALLELISM == 32768
    KRA.check_parallelism_preconditions(1)
    KRA.check_parallelism_preconditions(UPPER_BOUND_MAX_PARALLELISM)
    with pytest.raises(TypeError):
        KeyGroupRangeAssignment()
