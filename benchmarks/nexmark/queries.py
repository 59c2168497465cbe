"""Nexmark queries q0-q5, q7, q8 and q11 on Strom's DataStream API.

Each query is a function ``events -> results``: it takes the stream of all events (one
source, timestamps from ``dateTime``, watermark ``max(dateTime) - 4 s``, as the Flink
Nexmark DDL) and returns the stream of result rows (:mod:`benchmarks.nexmark.model`).
The semantics are those of the Flink SQL texts in the nexmark/nexmark repository; where
a SQL query produces an updating (retracting) result, the streaming version emits the
updates as an append stream, as documented per query:

- **q0** pass-through: every bid ``(auction, bidder, price, dateTime, extra)``.
- **q1** currency conversion: every bid with ``price`` = ``0.908 * price`` (exact to the
  SQL's ``DECIMAL(23, 3)``: ``price * 908 / 1000`` is the float nearest to it).
- **q2** selection: ``(auction, price)`` of the bids with ``auction % 123 == 0``.
- **q3** local item suggestion: the inner join of persons in OR, ID or CA with auctions
  of category 10 on ``seller = id``; a regular (unwindowed) join emitting each match once,
  whichever side arrives first.
- **q4** average closing price per category: an auction's winning price is the maximum
  price of its bids with ``auction.dateTime <= bid.dateTime <= auction.expires``; it is
  final once the watermark passes ``expires``. For each category and each distinct
  closing time with at least one winner, one row ``(id=category, final=avg, dateTime)``
  holds the average (integer, as SQL ``AVG(BIGINT)``) over all winners closed so far; the
  last row of a category is the SQL query's result.
- **q5** hot items: bids counted per auction in 10 s windows sliding by 2 s (HOP); per
  window, every auction whose count equals the window's maximum, ``(auction, num)``.
  Counted per 2 s pane and summed into the hop windows, as Flink SQL slices HOP windows;
  ``q5-sliding`` is the same query on ``SlidingEventTimeWindows`` (same output).
- **q7** highest bid: the maximum price of each 10 s tumbling window joined back to the
  bids with that price and ``window_end - 10 s <= dateTime <= window_end`` (inclusive, as
  SQL ``BETWEEN``: a bid at exactly ``window_end`` also matches the earlier window).
- **q8** monitor new users: persons and sellers of auctions in the same 10 s tumbling
  window, ``(id, name, stime=window_start)`` once per person and window.
- **q11** user sessions: bids per bidder in session windows with a 10 s gap,
  ``(bidder, bid_count, starttime, endtime)`` with ``endtime = last bid + 10 s``.

Keyed functions keep immutable values (ints, tuples, structs) in ``ValueState`` and
collections in ``ListState``/``MapState``, never mutating a state value in place, so
every state backend (and snapshot) sees every change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from operator import attrgetter, itemgetter
from typing import Any

from benchmarks.nexmark.model import (
    Auction,
    Bid,
    Event,
    Person,
    Q0Result,
    Q1Result,
    Q2Result,
    Q3Result,
    Q4Result,
    Q5Result,
    Q7Result,
    Q8Result,
    Q11Result,
)
from strom.datastream import AggregateFunction, DataStream, KeyedProcessFunction, RuntimeContext
from strom.datastream.functions import KeyedCoProcessFunction
from strom.datastream.state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor
from strom.datastream.window import (
    EventTimeSessionWindows,
    ProcessAllWindowFunction,
    ProcessWindowFunction,
    SlidingEventTimeWindows,
    TumblingEventTimeWindows,
)

__all__ = ["QUERIES", "WATERMARK_DELAY", "Query"]

Query = Callable[[DataStream], DataStream]
"""A query: the stream of all events in, the stream of result rows out."""

WATERMARK_DELAY = timedelta(seconds=4)
"""Bounded out-of-orderness of the events (the Nexmark DDL's ``dateTime - 4 s``)."""
WINDOW_MS = 10_000
"""Window size of q5, q7 and q8, and the session gap of q11."""
HOP_SLIDE_MS = 2_000
"""Slide of q5's hop windows."""
Q2_MODULUS = 123
"""q2 keeps the bids of every 123rd auction."""
Q3_STATES = frozenset({"OR", "ID", "CA"})
"""q3's seller states."""
Q3_CATEGORY = 10
"""q3's auction category."""
CLOSED_AUCTION_RETENTION_MS = 60_000
"""How long q4 remembers a closed auction to drop its late bids cheaply (event time;
the generator stops bidding on an auction about 100 auctions after it)."""


def _value_state(ctx: RuntimeContext, name: str) -> Any:
    return ctx.get_state(ValueStateDescriptor(name))


def _list_state(ctx: Any, name: str) -> Any:
    # Strom's RuntimeContext has no get_list_state yet; its get_state creates the state
    # its descriptor describes
    get = getattr(ctx, "get_list_state", ctx.get_state)
    return get(ListStateDescriptor(name))


def _map_state(ctx: Any, name: str) -> Any:
    get = getattr(ctx, "get_map_state", ctx.get_state)
    return get(MapStateDescriptor(name))


def _is_bid(e: Event) -> bool:
    return type(e) is Bid


def _is_person(e: Event) -> bool:
    return type(e) is Person


def _is_auction(e: Event) -> bool:
    return type(e) is Auction


# --------------------------------------------------------------------------- q0 - q2


def _q0_row(b: Bid) -> Q0Result:
    return Q0Result(b.auction, b.bidder, b.price, b.dateTime, b.extra)


def q0(events: DataStream) -> DataStream:
    """Pass-through: every bid (the monitoring overhead of source, chain and sink)."""
    return events.filter(_is_bid).name("bids").map(_q0_row).name("q0")


def _q1_row(b: Bid) -> Q1Result:
    # price * 908 / 1000 is the float nearest the exact DECIMAL(23, 3) value 0.908 * price
    return Q1Result(b.auction, b.bidder, b.price * 908 / 1000, b.dateTime, b.extra)


def q1(events: DataStream) -> DataStream:
    """Currency conversion: every bid with its price in euros."""
    return events.filter(_is_bid).name("bids").map(_q1_row).name("q1")


def _q2_selected(e: Event) -> bool:
    return type(e) is Bid and e.auction % Q2_MODULUS == 0


def _q2_row(b: Bid) -> Q2Result:
    return Q2Result(b.auction, b.price)


def q2(events: DataStream) -> DataStream:
    """Selection: auction and price of the bids on every 123rd auction."""
    return events.filter(_q2_selected).name("q2-filter").map(_q2_row).name("q2")


# --------------------------------------------------------------------------------- q3


def _q3_person(e: Event) -> bool:
    return type(e) is Person and e.state in Q3_STATES


def _q3_auction(e: Event) -> bool:
    return type(e) is Auction and e.category == Q3_CATEGORY


class LocalItemJoin(KeyedCoProcessFunction[int, Any, Q3Result]):
    """q3's join, keyed by person id = seller: input 1 persons, input 2 auctions.

    Person ids are unique, so the person is stored once; auctions that arrive before
    their seller wait (as ids) in a list that is emptied when the person arrives.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the person and waiting-auctions states."""
        self.person = _value_state(runtime_context, "person")
        self.waiting = _list_state(runtime_context, "waiting-auctions")

    def process_element1(self, value: Person, ctx: Any) -> Iterable[Q3Result] | None:
        """A person: remember them and emit their waiting auctions."""
        self.person.update(value)
        waiting = self.waiting.get()
        if not waiting:
            return None
        self.waiting.clear()
        return [Q3Result(value.name, value.city, value.state, a) for a in waiting]

    def process_element2(self, value: Auction, ctx: Any) -> Iterable[Q3Result] | None:
        """An auction: emit it with its seller, or wait for the seller."""
        p = self.person.value()
        if p is not None:
            return (Q3Result(p.name, p.city, p.state, value.id),)
        self.waiting.add(value.id)
        return None


def q3(events: DataStream) -> DataStream:
    """Local item suggestion: sellers in OR, ID or CA and their category-10 auctions."""
    persons = events.filter(_q3_person).name("q3-persons")
    auctions = events.filter(_q3_auction).name("q3-auctions")
    result: DataStream = (
        persons.connect(auctions)
        .key_by(attrgetter("id"), attrgetter("seller"))
        .process(LocalItemJoin())
        .name("q3")
    )
    return result


# --------------------------------------------------------------------------------- q4


class WinningBid(KeyedCoProcessFunction[int, Any, tuple[int, int]]):
    """q4's first stage, keyed by auction id: input 1 auctions, input 2 bids.

    Keeps the auction's ``(dateTime, expires, category)`` and the highest price among its
    bids with ``dateTime <= bid.dateTime <= expires``; an event-time timer at ``expires``
    emits ``(category, price)`` (timestamp ``expires``). By then no qualifying bid can
    come: a later bid has ``dateTime > watermark >= expires``.

    Bids that arrive before their auction wait as ``(dateTime, price)`` until the auction
    arrives or the watermark passes their ``dateTime`` (a timer per bid time): an auction
    arriving after that has ``dateTime`` above the bid's, so the bid cannot qualify.

    A closed auction stays as a tombstone (category None) for
    :data:`CLOSED_AUCTION_RETENTION_MS` of event time, so the many bids that still come
    for it (the generator keeps bidding on recent auctions) are dropped at once instead of
    waiting for the watermark; after that such bids take the waiting path, which is
    slower but gives the same result.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the auction, best-price and waiting-bids states."""
        self.auction = _value_state(runtime_context, "auction")
        self.best = _value_state(runtime_context, "best-price")
        self.waiting = _list_state(runtime_context, "waiting-bids")

    def process_element1(self, value: Auction, ctx: Any) -> None:
        """An auction opens: settle the bids that came first, set the closing timer."""
        start, end = value.dateTime, value.expires
        self.auction.update((start, end, value.category))
        waiting = self.waiting.get()
        if waiting:
            self.waiting.clear()
            prices = [p for t, p in waiting if start <= t <= end]
            if prices:
                self.best.update(max(prices))
        ctx.timer_service().register_event_time_timer(end)

    def process_element2(self, value: Bid, ctx: Any) -> None:
        """A bid: raise the best price if it is within the auction's time."""
        a = self.auction.value()
        if a is not None:
            if a[2] is not None and a[0] <= value.dateTime <= a[1]:
                best = self.best.value()
                if best is None or value.price > best:
                    self.best.update(value.price)
            return
        self.waiting.add((value.dateTime, value.price))
        ctx.timer_service().register_event_time_timer(value.dateTime)

    def on_timer(self, timestamp: int, ctx: Any) -> Iterable[tuple[int, int]] | None:
        """At ``expires``: emit the winner; later: drop the tombstone; before the auction
        arrives: drop the waiting bids it can no longer match."""
        a = self.auction.value()
        if a is None:
            waiting = self.waiting.get()
            if waiting:
                self.waiting.update([b for b in waiting if b[0] > timestamp])
            return None
        start, end, category = a
        if category is None:
            if timestamp >= end + CLOSED_AUCTION_RETENTION_MS:
                self.auction.clear()
            return None
        if timestamp != end:
            return None
        best = self.best.value()
        self.best.clear()
        self.auction.update((start, end, None))
        ctx.timer_service().register_event_time_timer(end + CLOSED_AUCTION_RETENTION_MS)
        return None if best is None else ((category, best),)


class CategoryAverage(KeyedProcessFunction[int, tuple[int, int], Q4Result]):
    """q4's second stage, keyed by category: the running average of winning prices.

    Winners are ``(category, price)`` with timestamp = closing time; they are summed per
    closing time until the watermark passes it (all winners of that time have arrived),
    then folded into the totals and one row is emitted.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the totals and per-closing-time pending sums."""
        self.totals = _value_state(runtime_context, "totals")
        self.pending = _map_state(runtime_context, "pending")

    def process_element(self, value: tuple[int, int], ctx: Any) -> None:
        """Add a winner to its closing time's pending sum."""
        t = ctx.timestamp()
        s, n = self.pending.get(t) or (0, 0)
        self.pending.put(t, (s + value[1], n + 1))
        ctx.timer_service().register_event_time_timer(t)

    def on_timer(self, timestamp: int, ctx: Any) -> Iterable[Q4Result] | None:
        """Fold the winners closed at ``timestamp`` into the totals; emit the average."""
        closed = self.pending.get(timestamp)
        if closed is None:
            return None
        self.pending.remove(timestamp)
        total, count = self.totals.value() or (0, 0)
        total, count = total + closed[0], count + closed[1]
        self.totals.update((total, count))
        return (Q4Result(ctx.get_current_key(), total // count, timestamp),)


def q4(events: DataStream) -> DataStream:
    """Average closing price per category (see the module docstring for the updates)."""
    auctions = events.filter(_is_auction).name("auctions")
    bids = events.filter(_is_bid).name("bids")
    winners = (
        auctions.connect(bids)
        .key_by(attrgetter("id"), attrgetter("auction"))
        .process(WinningBid())
        .name("q4-winning-bids")
    )
    result: DataStream = winners.key_by(itemgetter(0)).process(CategoryAverage()).name("q4")
    return result


# --------------------------------------------------------------------------------- q5


class Count(AggregateFunction[Any, int, int]):
    """The number of elements (``count(*)``)."""

    def create_accumulator(self) -> int:
        """Zero."""
        return 0

    def add(self, value: Any, accumulator: int) -> int:
        """One more."""
        return accumulator + 1

    def get_result(self, accumulator: int) -> int:
        """The count."""
        return accumulator

    def merge(self, acc_a: int, acc_b: int) -> int:
        """Sum of both counts (merging session windows)."""
        return acc_a + acc_b


class WindowEndCount(ProcessWindowFunction[int, tuple[int, int, int], int, Any]):
    """``(window_end, auction, count)`` of one auction's hop window."""

    def process(
        self, key: int, context: Any, elements: Iterable[int]
    ) -> Iterable[tuple[int, int, int]]:
        """Tag the count with its window end."""
        end = context.window().end
        return [(end, key, n) for n in elements]


class HottestAuctions(KeyedProcessFunction[int, tuple[int, int, int], Q5Result]):
    """q5's second stage, keyed by window end: the auctions with the highest count.

    The counts of a window all carry the timestamp ``window_end - 1`` and arrive before
    the watermark that fired the window passes; a timer at that time emits the winners.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the ``(max_count, auctions)`` state."""
        self.best = _value_state(runtime_context, "best")

    def process_element(self, value: tuple[int, int, int], ctx: Any) -> None:
        """Keep the auctions with the highest count so far."""
        _, auction, n = value
        best = self.best.value()
        if best is None:
            self.best.update((n, (auction,)))
            ctx.timer_service().register_event_time_timer(ctx.timestamp())
        elif n > best[0]:
            self.best.update((n, (auction,)))
        elif n == best[0]:
            self.best.update((n, (*best[1], auction)))

    def on_timer(self, timestamp: int, ctx: Any) -> Iterable[Q5Result] | None:
        """Emit the window's hottest auctions and clear."""
        best = self.best.value()
        self.best.clear()
        if best is None:
            return None
        n, auctions = best
        return [Q5Result(a, n) for a in auctions]


def q5_sliding(events: DataStream) -> DataStream:
    """q5 with ``SlidingEventTimeWindows``: each bid updates its 5 hop windows."""
    counts = (
        events.filter(_is_bid)
        .name("bids")
        .key_by(attrgetter("auction"))
        .window(SlidingEventTimeWindows.of(WINDOW_MS, HOP_SLIDE_MS))
        .aggregate(Count(), WindowEndCount())
        .name("q5-counts")
    )
    result: DataStream = counts.key_by(itemgetter(0)).process(HottestAuctions()).name("q5")
    return result


class PaneCount(ProcessWindowFunction[int, tuple[int, int, int], int, Any]):
    """``(auction, pane_start, count)`` of one auction's 2 s pane."""

    def process(
        self, key: int, context: Any, elements: Iterable[int]
    ) -> Iterable[tuple[int, int, int]]:
        """Tag the count with its pane start."""
        start = context.window().start
        return [(key, start, n) for n in elements]


class HopCount(KeyedProcessFunction[int, tuple[int, int, int], tuple[int, int, int]]):
    """Sums one auction's 2 s pane counts into its 10 s hop windows.

    A pane ``[s, s + 2 s)`` belongs to the windows ending at ``s + 2 s``, ``s + 4 s``, ...
    ``s + 10 s``; a timer at each ``end - 1`` (the window's last millisecond, when all its
    panes have arrived) emits ``(window_end, auction, count)`` and forgets the panes no
    later window needs. The output equals ``q5_sliding``'s window counts.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the ``pane_start -> count`` state."""
        self.panes = _map_state(runtime_context, "panes")

    def process_element(self, value: tuple[int, int, int], ctx: Any) -> None:
        """Remember a pane; set the timers of the windows it belongs to."""
        _, start, n = value
        self.panes.put(start, n)
        register = ctx.timer_service().register_event_time_timer
        for end in range(start + HOP_SLIDE_MS, start + WINDOW_MS + 1, HOP_SLIDE_MS):
            register(end - 1)

    def on_timer(self, timestamp: int, ctx: Any) -> Iterable[tuple[int, int, int]] | None:
        """Emit the count of the window ``[end - 10 s, end)``, ``end = timestamp + 1``."""
        end = timestamp + 1
        first = end - WINDOW_MS
        # panes of later windows may be here already (watermarks can jump several panes)
        total = sum(n for start, n in self.panes.items() if first <= start < end)
        self.panes.remove(first)  # the window's oldest pane: no later window holds it
        return ((end, ctx.get_current_key(), total),) if total else None


def q5(events: DataStream) -> DataStream:
    """Hot items: the auctions with the most bids per 10 s window, every 2 s.

    Bids are counted once per auction and 2 s pane (a tumbling window), and the panes
    are summed into the hop windows (Flink SQL evaluates HOP windows the same way, by
    slices), instead of updating 5 overlapping windows per bid (:func:`q5_sliding`).
    """
    panes = (
        events.filter(_is_bid)
        .name("bids")
        .key_by(attrgetter("auction"))
        .window(TumblingEventTimeWindows.of(HOP_SLIDE_MS))
        .aggregate(Count(), PaneCount())
        .name("q5-panes")
    )
    counts = panes.key_by(itemgetter(0)).process(HopCount()).name("q5-counts")
    result: DataStream = counts.key_by(itemgetter(0)).process(HottestAuctions()).name("q5")
    return result


# --------------------------------------------------------------------------------- q7


class MaxPrice(AggregateFunction[Bid, int, int]):
    """The highest bid price of a window."""

    def create_accumulator(self) -> int:
        """Below every price."""
        return -1

    def add(self, value: Bid, accumulator: int) -> int:
        """The larger of both."""
        p = value.price
        return p if p > accumulator else accumulator

    def get_result(self, accumulator: int) -> int:
        """The maximum."""
        return accumulator

    def merge(self, acc_a: int, acc_b: int) -> int:
        """The larger of both."""
        return max(acc_a, acc_b)


class WindowEndMax(ProcessAllWindowFunction[int, tuple[int, int], Any]):
    """``(window_end, max_price)`` of one tumbling window."""

    def process(self, context: Any, elements: Iterable[int]) -> Iterable[tuple[int, int]]:
        """Tag the maximum with its window end."""
        end = context.window().end
        return [(end, p) for p in elements]


def _q7_window_ends(b: Bid) -> tuple[tuple[int, Bid], ...]:
    """The ends of the windows whose ``BETWEEN end - 10 s AND end`` holds the bid."""
    t = b.dateTime
    end = t - t % WINDOW_MS + WINDOW_MS
    if t % WINDOW_MS == 0:
        return ((end, b), (t, b))
    return ((end, b),)


class HighestBidJoin(KeyedCoProcessFunction[int, Any, Q7Result]):
    """q7's join, keyed by window end: input 1 ``(end, bid)``, input 2 ``(end, max)``.

    Until the window's maximum arrives, only bids that can still equal it are kept (price
    at least the highest price seen among the window's own bids). After it, matching
    bids are emitted at once. A timer at ``end`` clears the key: then every bid with
    ``dateTime <= end`` has arrived.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the maximum, candidates and running-maximum states."""
        self.max = _value_state(runtime_context, "max-price")
        self.candidates = _list_state(runtime_context, "candidates")
        self.floor = _value_state(runtime_context, "running-max")

    def process_element1(self, value: tuple[int, Bid], ctx: Any) -> Iterable[Q7Result] | None:
        """A bid of the window (or at its end)."""
        end, b = value
        price = b.price
        m = self.max.value()
        if m is not None:
            return (_q7_row(b),) if price == m else None
        floor = self.floor.value()
        if floor is None:  # the key's first record
            floor = -1
            self.floor.update(floor)
            ctx.timer_service().register_event_time_timer(end)
        if price < floor:  # below a price of the window: cannot be its maximum
            return None
        if price > floor and b.dateTime < end:  # a new highest price of the window itself
            self.floor.update(price)
            self.candidates.update([c for c in self.candidates.get() if c.price >= price])
        self.candidates.add(b)
        return None

    def process_element2(self, value: tuple[int, int], ctx: Any) -> Iterable[Q7Result] | None:
        """The window's maximum: emit the candidates with that price."""
        end, m = value
        self.max.update(m)
        ctx.timer_service().register_event_time_timer(end)
        candidates = self.candidates.get()
        if not candidates:
            return None
        self.candidates.clear()
        return [_q7_row(b) for b in candidates if b.price == m]

    def on_timer(self, timestamp: int, ctx: Any) -> None:
        """Every bid up to the window end has arrived: clear the key."""
        self.max.clear()
        self.candidates.clear()
        self.floor.clear()


def _q7_row(b: Bid) -> Q7Result:
    return Q7Result(b.auction, b.bidder, b.price, b.dateTime, b.extra)


def q7(events: DataStream) -> DataStream:
    """Highest bid: the bids with the highest price of each 10 s tumbling window."""
    bids = events.filter(_is_bid).name("bids")
    maxima = (
        bids.window_all(TumblingEventTimeWindows.of(WINDOW_MS))
        .aggregate(MaxPrice(), WindowEndMax())
        .name("q7-max")
    )
    result: DataStream = (
        bids.flat_map(_q7_window_ends)
        .name("q7-window-ends")
        .connect(maxima)
        .key_by(itemgetter(0), itemgetter(0))
        .process(HighestBidJoin())
        .name("q7")
    )
    return result


# --------------------------------------------------------------------------------- q8


def _q8_new_users(persons: list[Person], auctions: list[Auction]) -> list[Q8Result]:
    """One row per person of the window if they sold something in it."""
    if not persons or not auctions:
        return []
    rows = {}
    for p in persons:
        t = p.dateTime
        rows[(p.id, p.name)] = Q8Result(p.id, p.name, t - t % WINDOW_MS)
    return list(rows.values())


def q8(events: DataStream) -> DataStream:
    """Monitor new users: persons who created an auction in the same 10 s window."""
    persons = events.filter(_is_person).name("persons")
    auctions = events.filter(_is_auction).name("auctions")
    result: DataStream = (
        persons.co_group(auctions)
        .where(attrgetter("id"))
        .equal_to(attrgetter("seller"))
        .window(TumblingEventTimeWindows.of(WINDOW_MS))
        .apply(_q8_new_users)
        .name("q8")
    )
    return result


# -------------------------------------------------------------------------------- q11


class SessionRow(ProcessWindowFunction[int, Q11Result, int, Any]):
    """``(bidder, bid_count, starttime, endtime)`` of one session."""

    def process(self, key: int, context: Any, elements: Iterable[int]) -> Iterable[Q11Result]:
        """Tag the count with the bidder and the session's bounds."""
        w = context.window()
        return [Q11Result(key, n, w.start, w.end) for n in elements]


class _SessionWindows(EventTimeSessionWindows):
    """``EventTimeSessionWindows`` that merges a window list free of duplicates.

    Works around a runtime bug: ``WindowOperator._process_merging`` passes the open
    sessions plus the new proto-session to ``merge_windows``; when the new one equals an
    open session (two bids of a bidder at the same millisecond, nothing else in the
    session yet) the window appears twice and the operator pops it twice (``KeyError``).
    """

    def merge_windows(
        self, windows: Iterable[Any], callback: Callable[[list[Any], Any], None]
    ) -> None:
        """Merge overlapping sessions, each distinct window once."""
        super().merge_windows(list(dict.fromkeys(windows)), callback)


def q11(events: DataStream) -> DataStream:
    """User sessions: bids per bidder and session (10 s gap)."""
    result: DataStream = (
        events.filter(_is_bid)
        .name("bids")
        .key_by(attrgetter("bidder"))
        .window(_SessionWindows(WINDOW_MS))
        .aggregate(Count(), SessionRow())
        .name("q11")
    )
    return result


QUERIES: dict[str, Query] = {
    "q0": q0,
    "q1": q1,
    "q2": q2,
    "q3": q3,
    "q4": q4,
    "q5": q5,
    "q5-sliding": q5_sliding,
    "q7": q7,
    "q8": q8,
    "q11": q11,
}
"""Every query by name."""
