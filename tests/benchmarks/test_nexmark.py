"""Nexmark on Strom: the generator's properties and every query against plain Python.

A small input (5,000 events at 50 events/s of event time, so 100 s with many windows,
sessions and auctions closing; 20% of the events dated back by up to 3.5 s) is written
with the generator and read back through the CLI entry point and ``run_query``. Each
query's output must equal, as a multiset, what a direct computation of the query's SQL
definition gives on the same events, decoded independently with the ``json`` module.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the repository root holds the benchmarks package
    sys.path.insert(0, str(ROOT))

from benchmarks.nexmark.__main__ import main  # noqa: E402
from benchmarks.nexmark.generator import (  # noqa: E402
    FIRST_AUCTION_ID,
    FIRST_PERSON_ID,
    GeneratorConfig,
    NexmarkGenerator,
    generate,
    write_events,
)
from benchmarks.nexmark.model import Auction, Bid, Person  # noqa: E402
from benchmarks.nexmark.queries import QUERIES  # noqa: E402
from benchmarks.nexmark.runner import run_query  # noqa: E402

NUM_EVENTS = 5000
CONFIG = GeneratorConfig(seed=7, rate=50, ooo_ms=3500, ooo_fraction=0.2)
WINDOW = 10_000
HOP = 2_000
GAP = 10_000

Row = tuple[Any, ...]

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nexmark") / "events.jsonl"
    assert (
        main(
            [
                "generate",
                "--events",
                str(NUM_EVENTS),
                "--output",
                str(path),
                "--seed",
                "7",
                "--rate",
                "50",
                "--ooo-ms",
                "3500",
                "--ooo-fraction",
                "0.2",
            ]
        )
        == 0
    )
    return path


@pytest.fixture(scope="module")
def events(events_file: Path) -> list[dict[str, Any]]:
    with open(events_file, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def _run_cli(query: str, events_file: Path, out: Path, *extra: str) -> list[Row]:
    assert main(["--query", query, "--input", str(events_file), "--output", str(out), *extra]) == 0
    with open(out, encoding="utf-8") as f:
        return [tuple(json.loads(line).values()) for line in f]


# --------------------------------------------------------------------- expected results


def expected_q0(events: list[dict[str, Any]]) -> list[Row]:
    return [
        (b["auction"], b["bidder"], b["price"], b["dateTime"], b["extra"])
        for b in _of(events, "bid")
    ]


def expected_q1(events: list[dict[str, Any]]) -> list[Row]:
    return [
        (b["auction"], b["bidder"], float(Decimal("0.908") * b["price"]), b["dateTime"], b["extra"])
        for b in _of(events, "bid")
    ]


def expected_q2(events: list[dict[str, Any]]) -> list[Row]:
    return [(b["auction"], b["price"]) for b in _of(events, "bid") if b["auction"] % 123 == 0]


def expected_q3(events: list[dict[str, Any]]) -> list[Row]:
    persons = {p["id"]: p for p in _of(events, "person") if p["state"] in ("OR", "ID", "CA")}
    return [
        (
            persons[a["seller"]]["name"],
            persons[a["seller"]]["city"],
            persons[a["seller"]]["state"],
            a["id"],
        )
        for a in _of(events, "auction")
        if a["category"] == 10 and a["seller"] in persons
    ]


def expected_q4(events: list[dict[str, Any]]) -> list[Row]:
    """Per category and distinct closing time: the average winner so far (integer)."""
    bids_by_auction: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for b in _of(events, "bid"):
        bids_by_auction[b["auction"]].append(b)
    winners: dict[int, list[tuple[int, int]]] = defaultdict(list)  # category -> (expires, price)
    for a in _of(events, "auction"):
        prices = [
            b["price"]
            for b in bids_by_auction[a["id"]]
            if a["dateTime"] <= b["dateTime"] <= a["expires"]
        ]
        if prices:
            winners[a["category"]].append((a["expires"], max(prices)))
    rows = []
    for category, closed in winners.items():
        for t in sorted({e for e, _ in closed}):
            finals = [p for e, p in closed if e <= t]
            rows.append((category, sum(finals) // len(finals), t))
    return rows


def expected_q5(events: list[dict[str, Any]]) -> list[Row]:
    counts: dict[int, Counter[int]] = defaultdict(Counter)  # window start -> auction -> n
    for b in _of(events, "bid"):
        t = b["dateTime"]
        last = t - t % HOP
        for start in range(last, t - WINDOW, -HOP):
            counts[start][b["auction"]] += 1
    rows = []
    for per_auction in counts.values():
        top = max(per_auction.values())
        rows.extend((a, n) for a, n in per_auction.items() if n == top)
    return rows


def expected_q7(events: list[dict[str, Any]]) -> list[Row]:
    bids = _of(events, "bid")
    maxima: dict[int, int] = {}  # window end -> max price
    for b in bids:
        t = b["dateTime"]
        end = t - t % WINDOW + WINDOW
        maxima[end] = max(maxima.get(end, -1), b["price"])
    return [
        (b["auction"], b["bidder"], b["price"], b["dateTime"], b["extra"])
        for end, top in maxima.items()
        for b in bids
        if b["price"] == top and end - WINDOW <= b["dateTime"] <= end
    ]


def expected_q8(events: list[dict[str, Any]]) -> list[Row]:
    sellers = {(a["seller"], a["dateTime"] // WINDOW) for a in _of(events, "auction")}
    return [
        (p["id"], p["name"], p["dateTime"] // WINDOW * WINDOW)
        for p in _of(events, "person")
        if (p["id"], p["dateTime"] // WINDOW) in sellers
    ]


def expected_q11(events: list[dict[str, Any]]) -> list[Row]:
    times: dict[int, list[int]] = defaultdict(list)
    for b in _of(events, "bid"):
        times[b["bidder"]].append(b["dateTime"])
    rows = []
    for bidder, ts in times.items():
        ts.sort()
        start, end, n = ts[0], ts[0] + GAP, 0
        for t in ts:
            if t > end:  # a gap: the session [start, end) is over (touching sessions merge)
                rows.append((bidder, n, start, end))
                start, end, n = t, t + GAP, 0
            end = max(end, t + GAP)
            n += 1
        rows.append((bidder, n, start, end))
    return rows


EXPECTED = {
    "q0": expected_q0,
    "q1": expected_q1,
    "q2": expected_q2,
    "q3": expected_q3,
    "q4": expected_q4,
    "q5": expected_q5,
    "q5-sliding": expected_q5,
    "q7": expected_q7,
    "q8": expected_q8,
    "q11": expected_q11,
}


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=repr)


# ------------------------------------------------------------------------------ queries


def test_every_query_is_checked() -> None:
    assert set(EXPECTED) == set(QUERIES)


@pytest.mark.parametrize("query", list(EXPECTED))
def test_query_matches_plain_python(
    query: str, events_file: Path, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    expected = EXPECTED[query](events)
    assert expected, f"{query}: the test input gives no result; make it larger"
    actual = _run_cli(query, events_file, tmp_path / f"{query}.jsonl")
    assert len(actual) == len(expected)
    assert _sorted(actual) == _sorted(expected)


@pytest.mark.parametrize("query", ["q3", "q4", "q5", "q5-sliding", "q7", "q8", "q11"])
def test_query_at_parallelism_2(
    query: str, events_file: Path, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    actual = _run_cli(query, events_file, tmp_path / f"{query}.jsonl", "--parallelism", "2")
    assert _sorted(actual) == _sorted(EXPECTED[query](events))


def test_q4_rows_of_a_category_are_in_closing_order(events_file: Path, tmp_path: Path) -> None:
    rows = _run_cli("q4", events_file, tmp_path / "q4.jsonl")
    by_category: dict[int, list[int]] = defaultdict(list)
    for category, _, t in rows:
        by_category[category].append(t)
    assert all(ts == sorted(ts) for ts in by_category.values())


def _bid(auction: int, price: int, t: int, extra: str = "") -> Bid:
    return Bid(auction, 2000, price, "Google", "https://www.nexmark.com/a/b/c/item.htm", t, extra)


def test_q7_bid_at_a_window_end_also_matches_the_earlier_window() -> None:
    # BETWEEN is inclusive: the bid at exactly 20,000 ms has the maximum price of window
    # [10 s, 20 s) and of window [20 s, 30 s); it is a result of both.
    bids = [
        _bid(1, 500, 10_000, "a"),
        _bid(2, 900, 12_000, "b"),
        _bid(3, 700, 19_999, "c"),
        _bid(4, 900, 20_000, "d"),
        _bid(5, 100, 25_000, "e"),
        _bid(6, 900, 30_000, "f"),
    ]
    result = run_query("q7", bids, collect=True)
    rows = sorted(tuple(r.values()) for r in result.rows)
    expected = [
        (2, 2000, 900, 12_000, "b"),
        (4, 2000, 900, 20_000, "d"),
        (4, 2000, 900, 20_000, "d"),
        (6, 2000, 900, 30_000, "f"),
        (6, 2000, 900, 30_000, "f"),
    ]
    assert rows == expected


def test_q4_bid_before_its_auction_and_outside_its_time() -> None:
    # auction 7 runs [10 s, 20 s]: the bid at 15 s arrives first and counts, the bid at
    # 9 s is before the auction, the bid at 21 s after it.
    events = [
        _bid(7, 300, 15_000),
        Auction(7, "x", "y", 100, 200, 10_000, 20_000, 1000, 12, ""),
        _bid(7, 900, 9_000),
        _bid(7, 800, 21_000),
        _bid(7, 200, 16_000),
        Auction(8, "x", "y", 100, 200, 10_500, 20_000, 1000, 12, ""),
        _bid(8, 101, 11_000),
    ]
    result = run_query("q4", events, collect=True)
    assert [tuple(r.values()) for r in result.rows] == [(12, (300 + 101) // 2, 20_000)]


def test_run_query_counts_events_and_results(events_file: Path) -> None:
    result = run_query("q2", events_file)
    assert result.events == NUM_EVENTS
    assert result.results > 0
    assert result.events_per_second > 0
    assert "events/s" in result.summary()


def test_cli_prints_throughput(events_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--query", "q0,q2", "--input", str(events_file)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"q0: 5,000 events in .* events/s .* 4,600 results", err)
    assert "q2: 5,000 events" in err


def test_cli_generates_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--query", "q1", "--events", "1000", "--seed", "3"]) == 0
    assert "q1: 1,000 events" in capsys.readouterr().err


# ---------------------------------------------------------------------------- generator


def test_proportions_are_1_3_46_per_50_events(events: list[dict[str, Any]]) -> None:
    kinds = [e["type"] for e in events]
    assert Counter(kinds) == {"person": 100, "auction": 300, "bid": 4600}
    for n, kind in enumerate(kinds):
        assert kind == ("person" if n % 50 == 0 else "auction" if n % 50 < 4 else "bid")


def test_ids_are_dense_from_1000(events: list[dict[str, Any]]) -> None:
    assert [p["id"] for p in _of(events, "person")] == list(range(FIRST_PERSON_ID, 1100))
    assert [a["id"] for a in _of(events, "auction")] == list(range(FIRST_AUCTION_ID, 1300))
    for b in _of(events, "bid"):
        assert FIRST_AUCTION_ID <= b["auction"] < 1300 + 10
        assert FIRST_PERSON_ID <= b["bidder"] < 1100 + 10


def test_field_names(events: list[dict[str, Any]]) -> None:
    fields = {e["type"]: list(e) for e in events}
    assert fields == {
        "person": [
            "type",
            "id",
            "name",
            "emailAddress",
            "creditCard",
            "city",
            "state",
            "dateTime",
            "extra",
        ],
        "auction": [
            "type",
            "id",
            "itemName",
            "description",
            "initialBid",
            "reserve",
            "dateTime",
            "expires",
            "seller",
            "category",
            "extra",
        ],
        "bid": ["type", "auction", "bidder", "price", "channel", "url", "dateTime", "extra"],
    }


def test_field_values(events: list[dict[str, Any]]) -> None:
    for p in _of(events, "person"):
        assert re.fullmatch(r"[a-z]+@[a-z]+\.com", p["emailAddress"])
        assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", p["creditCard"])
        assert p["state"] in {"AZ", "CA", "ID", "OR", "WA", "WY"}
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", p["name"])
    initial: dict[int, int] = {}
    for e in events:  # in generation order: a bid on an auction generated before it
        if e["type"] == "auction":
            assert e["expires"] > e["dateTime"]
            assert e["reserve"] >= e["initialBid"] > 0
            assert 10 <= e["category"] <= 14
            initial[e["id"]] = e["initialBid"]
        elif e["type"] == "bid":
            assert e["url"].startswith("https://www.nexmark.com/")
            assert e["channel"]
            if e["auction"] in initial:  # is priced from its initial bid
                assert initial[e["auction"]] <= e["price"] <= 2 * initial[e["auction"]]


def test_average_sizes_follow_the_configuration() -> None:
    evs = generate(5000, GeneratorConfig(seed=1, avg_bid_size=300))
    extras = [len(e.extra) for e in evs if isinstance(e, Bid)]
    assert 300 - 32 - 10 < sum(extras) / len(extras) < 300 - 32 + 10


def test_hot_auctions_and_bidders() -> None:
    bids = [e for e in generate(20_000, GeneratorConfig(seed=5)) if isinstance(e, Bid)]
    hot_auction = sum(b.auction % 100 == 0 for b in bids) / len(bids)
    hot_bidder = sum(b.bidder % 100 == 1 for b in bids) / len(bids)
    assert 0.45 < hot_auction < 0.6  # 1 - 1/2, plus random picks of round ids
    assert 0.7 < hot_bidder < 0.8  # 1 - 1/4


def test_deterministic_by_seed() -> None:
    assert generate(2000, GeneratorConfig(seed=3)) == generate(2000, GeneratorConfig(seed=3))
    assert generate(2000, GeneratorConfig(seed=3)) != generate(2000, GeneratorConfig(seed=4))


def test_event_time_advances_at_the_rate() -> None:
    config = GeneratorConfig(seed=2, rate=1000)
    for n, e in enumerate(generate(3000, config)):
        assert e.dateTime == config.base_time_ms + n
    assert isinstance(next(iter(NexmarkGenerator(config))), Person)


def test_out_of_order_delays_are_bounded(events: list[dict[str, Any]]) -> None:
    newest = 0
    late = 0
    for e in events:
        assert e["dateTime"] >= newest - 3500
        late += e["dateTime"] < newest
        newest = max(newest, e["dateTime"])
    assert late > 100


def test_write_events_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    write_events(path, 300, GeneratorConfig(seed=9))
    decoded = [
        msgspec.json.decode(line, type=Person | Auction | Bid)
        for line in path.read_bytes().splitlines()
    ]
    assert decoded == generate(300, GeneratorConfig(seed=9))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="rate"):
        GeneratorConfig(rate=0)
    with pytest.raises(ValueError, match="ooo_fraction"):
        GeneratorConfig(ooo_fraction=2.0)
