"""A deterministic Nexmark event generator, following the Nexmark specification.

The semantics follow the generator of the nexmark/nexmark repository (written afresh here,
in Python):

* **Proportions.** Events come in epochs of ``person + auction + bid`` proportions (1:3:46
  by default, 50 events): event number ``n`` with ``n % 50 == 0`` is a person, ``1..3``
  an auction, ``4..49`` a bid.
* **Ids.** Person and auction ids are dense and start at 1000 (``FIRST_PERSON_ID``,
  ``FIRST_AUCTION_ID``), so small data sets still find join partners; the id of a new
  person or auction is derived from the event number.
* **Hot items.** With probability ``1 - 1/hot_auction_ratio`` a bid goes to the *hot*
  auction (the first of the latest batch of 100 auctions), otherwise to a random auction
  among the last ``num_in_flight_auctions`` (plus a few ids not created yet, as in the
  reference). Bidders and sellers are chosen the same way among the last
  ``num_active_people`` persons (hot bidder = second of the latest batch of 100 persons,
  hot seller = first, so they do not collide).
* **Event time.** Event ``n`` happens at ``base_time_ms + n * 1000 // rate`` (``rate``
  events per second of event time). With ``ooo_ms > 0`` a fraction ``ooo_fraction`` of
  the events is dated back by a uniform random delay in ``[0, ooo_ms]``: no event is more
  than ``ooo_ms`` older than the newest one before it, so with ``ooo_ms <= 4000`` no event
  is late for the queries' 4 s bounded-out-of-orderness watermark.
* **Fields.** Person names from first/last name lists, emails ``name@domain.com``,
  credit cards ``dddd dddd dddd dddd``, cities and US states (AZ, CA, ID, OR, WA, WY, as
  in the reference), categories ``10..14``; auctions expire after a random length whose
  mean is the time until ``num_in_flight_auctions`` more auctions exist, ``reserve >=
  initialBid``; prices are log-uniform between $1 and $1,000,000 (in cents), and a bid on
  an auction already generated is priced between its ``initialBid`` and twice that;
  ``channel``/``url`` name where the bid came from; ``extra`` pads each event to the
  configured average size (of a bid only the numeric fields count, as in the reference,
  so a bid is about 260 bytes of JSON by default, 280 on average over all events).

Everything is drawn from one ``random.Random(seed)``: the same configuration always
produces the same events. Random strings are slices of a pool drawn once from that
generator (a slice costs far less than drawing every character).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from benchmarks.nexmark.model import Auction, Bid, Event, Person

__all__ = [
    "DEFAULT_BASE_TIME_MS",
    "FIRST_AUCTION_ID",
    "FIRST_CATEGORY_ID",
    "FIRST_PERSON_ID",
    "NUM_CATEGORIES",
    "GeneratorConfig",
    "NexmarkGenerator",
    "generate",
    "write_events",
]

FIRST_PERSON_ID = 1000
"""Id of the first person (the reference starts ids high so small runs find matches)."""
FIRST_AUCTION_ID = 1000
"""Id of the first auction."""
FIRST_CATEGORY_ID = 10
"""Lowest auction category."""
NUM_CATEGORIES = 5
"""Number of categories (few, so queries find results on small inputs; as the reference)."""
DEFAULT_BASE_TIME_MS = 1_704_067_200_000
"""Event time of the first event: 2024-01-01T00:00:00Z (fixed, for reproducible files)."""

HOT_BATCH = 100
"""Hot auctions/sellers/bidders are the first (or second) id of the latest batch of this many."""
PERSON_ID_LEAD = 10
"""How many not-yet-created person ids a random choice may pick (the reference's lead)."""
AUCTION_ID_LEAD = 10
"""How many not-yet-created auction ids a random choice may pick."""
MIN_STRING_LENGTH = 3
"""Shortest random name/description string."""
SPACE_PROBABILITY = 1 / 13
"""Share of spaces in random item names and descriptions (as the reference)."""
BID_FIXED_SIZE = 8 * 4
"""Idealised size of a bid's numeric fields; ``extra`` pads the rest (as the reference)."""
AUCTION_FIXED_SIZE = 8 * 6
"""Idealised size of an auction's numeric fields."""
PERSON_FIXED_SIZE = 8
"""Idealised size of a person's id."""
_POOL_SIZE = 1 << 17
"""Characters in each random string pool; slices start at a random offset."""
_MAX_SLICE = 4096
"""Longest slice taken from a pool (``extra`` of very large configured sizes repeats)."""
_PRICE_CACHE_KEEP = 1024
"""Initial bids of this many most recent auctions are kept for pricing bids."""

US_STATES = ("AZ", "CA", "ID", "OR", "WA", "WY")
US_CITIES = (
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
)
FIRST_NAMES = (
    "Peter",
    "Paul",
    "Luke",
    "John",
    "Saul",
    "Vicky",
    "Kate",
    "Julie",
    "Sarah",
    "Deiter",
    "Walter",
)
LAST_NAMES = (
    "Shultz",
    "Abrams",
    "Spencer",
    "White",
    "Bartels",
    "Walton",
    "Smith",
    "Jones",
    "Noris",
)
HOT_CHANNELS = ("Google", "Facebook", "Baidu", "Apple")
"""Channels most bids come from; the others are ``channel-<n>``."""
NUM_CHANNELS = 10_000
"""Number of distinct non-hot channels."""
HOT_CHANNEL_RATIO = 2
"""``1 - 1/HOT_CHANNEL_RATIO`` of the bids come from a hot channel."""
_NUM_URLS = 4096
"""Distinct item urls, drawn once (a url is three random path segments)."""
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; the defaults are the reference's.

    Attributes:
        seed: seed of the random generator (same seed, same events).
        rate: events per second of event time (> 0).
        base_time_ms: event time of the first event, epoch ms.
        ooo_ms: largest out-of-order delay, ms (0: events in event-time order).
        ooo_fraction: share of events delayed when ``ooo_ms > 0``.
        person_proportion: persons per epoch.
        auction_proportion: auctions per epoch.
        bid_proportion: bids per epoch.
        hot_auction_ratio: ``1 - 1/ratio`` of the bids go to the hot auction.
        hot_bidders_ratio: ``1 - 1/ratio`` of the bids come from the hot bidder.
        hot_sellers_ratio: ``1 - 1/ratio`` of the auctions come from the hot seller.
        num_active_people: random bidders/sellers come from this many latest persons.
        num_in_flight_auctions: random bids go to this many latest auctions.
        avg_person_size: average idealised person size in bytes (``extra`` pads to it).
        avg_auction_size: average idealised auction size in bytes.
        avg_bid_size: average idealised bid size in bytes.

    Raises:
        ValueError: a count, ratio or size out of range.
    """

    seed: int = 0
    rate: int = 10_000
    base_time_ms: int = DEFAULT_BASE_TIME_MS
    ooo_ms: int = 0
    ooo_fraction: float = 0.1
    person_proportion: int = 1
    auction_proportion: int = 3
    bid_proportion: int = 46
    hot_auction_ratio: int = 2
    hot_bidders_ratio: int = 4
    hot_sellers_ratio: int = 4
    num_active_people: int = 1000
    num_in_flight_auctions: int = 100
    avg_person_size: int = 200
    avg_auction_size: int = 500
    avg_bid_size: int = 100

    def __post_init__(self) -> None:
        positive = (
            "rate",
            "person_proportion",
            "auction_proportion",
            "bid_proportion",
            "hot_auction_ratio",
            "hot_bidders_ratio",
            "hot_sellers_ratio",
            "num_active_people",
            "num_in_flight_auctions",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GeneratorConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("ooo_ms", "avg_person_size", "avg_auction_size", "avg_bid_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"GeneratorConfig.{name} must be an int >= 0, got {value!r}")
        if not 0.0 <= self.ooo_fraction <= 1.0:
            raise ValueError(
                f"GeneratorConfig.ooo_fraction must be in [0, 1], got {self.ooo_fraction}"
            )

    @property
    def total_proportion(self) -> int:
        """Events per epoch (50 by default)."""
        return self.person_proportion + self.auction_proportion + self.bid_proportion

    def timestamp_ms(self, event_number: int) -> int:
        """Nominal event time of event ``event_number`` (before any out-of-order delay)."""
        return self.base_time_ms + event_number * 1000 // self.rate


class NexmarkGenerator:
    """An endless, deterministic iterator of Nexmark events.

    Args:
        config: what to generate.

    Example::

        events = list(itertools.islice(NexmarkGenerator(GeneratorConfig(seed=1)), 1000))
    """

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()
        self._rng = random.Random(self.config.seed)
        self._letters = "".join(self._rng.choices(_LETTERS, k=_POOL_SIZE))
        # item names/descriptions: letters with a space about every 13 characters
        weights = [(1 - SPACE_PROBABILITY) / len(_LETTERS)] * len(_LETTERS) + [SPACE_PROBABILITY]
        self._words = "".join(self._rng.choices(_LETTERS + " ", weights, k=_POOL_SIZE))
        self._urls = [
            f"https://www.nexmark.com/{self._word(3, 8)}/{self._word(3, 8)}/"
            f"{self._word(3, 8)}/item.htm?query=1"
            for _ in range(_NUM_URLS)
        ]
        self._initial_bids: dict[int, int] = {}
        self._event_number = 0
        self._total = self.config.total_proportion

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        n = self._event_number
        self._event_number = n + 1
        return self.event(n)

    # -- id bookkeeping (base 0, i.e. without FIRST_*_ID) ------------------------------------
    def last_person_id(self, n: int) -> int:
        """The newest person id at event ``n`` (the new person's id if ``n`` is a person)."""
        c = self.config
        epoch, offset = divmod(n, self._total)
        if offset >= c.person_proportion:
            offset = c.person_proportion - 1
        return epoch * c.person_proportion + offset

    def last_auction_id(self, n: int) -> int:
        """The newest auction id at event ``n`` (the new auction's id if ``n`` is one)."""
        c = self.config
        epoch, offset = divmod(n, self._total)
        if offset < c.person_proportion:
            epoch -= 1
            offset = c.auction_proportion - 1
        elif offset >= c.person_proportion + c.auction_proportion:
            offset = c.auction_proportion - 1
        else:
            offset -= c.person_proportion
        return epoch * c.auction_proportion + offset

    def _random_int(self, bound: int) -> int:
        """Uniform in ``[0, bound)``."""
        return int(self._rng.random() * bound)

    def _random_person_id(self, n: int) -> int:
        """A random active person (or one of the next few to be created), base 0."""
        num_people = self.last_person_id(n) + 1
        active = min(num_people, self.config.num_active_people)
        return num_people - active + self._random_int(active + PERSON_ID_LEAD)

    def _random_auction_id(self, n: int) -> int:
        """A random auction likely still open (or one of the next few), base 0."""
        newest = self.last_auction_id(n)
        oldest = max(newest - self.config.num_in_flight_auctions, 0)
        return oldest + self._random_int(newest - oldest + 1 + AUCTION_ID_LEAD)

    # -- field values --------------------------------------------------------------------
    def _price(self) -> int:
        """A log-uniform price between 100 and 100,000,000 cents."""
        dollars: float = 10.0 ** (self._rng.random() * 6.0)
        return round(dollars * 100.0)

    def _slice(self, pool: str, length: int) -> str:
        length = min(length, _MAX_SLICE)
        start = self._random_int(_POOL_SIZE - length)
        return pool[start : start + length]

    def _string(self, max_length: int) -> str:
        """Letters and spaces, ``MIN_STRING_LENGTH`` to ``max_length - 1`` long, stripped."""
        length = MIN_STRING_LENGTH + self._random_int(max_length - MIN_STRING_LENGTH)
        return self._slice(self._words, length).strip() or "x"

    def _word(self, min_length: int, max_length: int) -> str:
        """Lowercase letters only (for email names and domains)."""
        return self._slice(self._letters, min_length + self._random_int(max_length - min_length))

    def _extra(self, current_size: int, average_size: int) -> str:
        """Padding so that ``current_size + len(extra)`` is ``average_size`` on average."""
        if current_size > average_size:
            return ""
        wanted = average_size - current_size
        delta = round(wanted * 0.2)
        size = wanted - delta + (self._random_int(2 * delta) if delta else 0)
        return self._slice(self._letters, size)

    def _credit_card(self) -> str:
        r = self._random_int
        return f"{r(10000):04d} {r(10000):04d} {r(10000):04d} {r(10000):04d}"

    # -- events --------------------------------------------------------------------------
    def event_time_ms(self, n: int) -> int:
        """Event time of event ``n``, with its out-of-order delay if it draws one."""
        c = self.config
        t = c.timestamp_ms(n)
        if c.ooo_ms and self._rng.random() < c.ooo_fraction:
            t -= self._random_int(c.ooo_ms + 1)
        return t

    def event(self, n: int) -> Event:
        """Event number ``n`` (call in increasing ``n``: bids price from known auctions)."""
        c = self.config
        offset = n % self._total
        t = self.event_time_ms(n)
        if offset < c.person_proportion:
            return self._person(n, t)
        if offset < c.person_proportion + c.auction_proportion:
            return self._auction(n, t)
        return self._bid(n, t)

    def _person(self, n: int, t: int) -> Person:
        rng = self._rng
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        email = f"{self._word(3, 7)}@{self._word(3, 5)}.com"
        card = self._credit_card()
        city = rng.choice(US_CITIES)
        state = rng.choice(US_STATES)
        size = PERSON_FIXED_SIZE + len(name) + len(email) + len(card) + len(city) + len(state)
        return Person(
            id=self.last_person_id(n) + FIRST_PERSON_ID,
            name=name,
            emailAddress=email,
            creditCard=card,
            city=city,
            state=state,
            dateTime=t,
            extra=self._extra(size, self.config.avg_person_size),
        )

    def _auction_length_ms(self, n: int, t: int) -> int:
        """Random auction length with mean = time until ``num_in_flight_auctions`` more
        auctions exist (so about that many auctions are open at any time)."""
        c = self.config
        events_ahead = c.num_in_flight_auctions * c.total_proportion // c.auction_proportion
        horizon = c.timestamp_ms(n + events_ahead) - t
        return 1 + self._random_int(max(horizon * 2, 1))

    def _auction(self, n: int, t: int) -> Auction:
        c = self.config
        base0 = self.last_auction_id(n)
        if self._random_int(c.hot_sellers_ratio) > 0:
            seller = (self.last_person_id(n) // HOT_BATCH) * HOT_BATCH
        else:
            seller = self._random_person_id(n)
        category = FIRST_CATEGORY_ID + self._random_int(NUM_CATEGORIES)
        initial_bid = self._price()
        expires = t + self._auction_length_ms(n, t)
        name = self._string(20)
        description = self._string(100)
        reserve = initial_bid + self._price()
        size = AUCTION_FIXED_SIZE + len(name) + len(description)
        auction_id = base0 + FIRST_AUCTION_ID
        cache = self._initial_bids
        cache[auction_id] = initial_bid
        if len(cache) > 2 * _PRICE_CACHE_KEEP:
            for old in list(itertools.islice(cache, len(cache) - _PRICE_CACHE_KEEP)):
                del cache[old]
        return Auction(
            id=auction_id,
            itemName=name,
            description=description,
            initialBid=initial_bid,
            reserve=reserve,
            dateTime=t,
            expires=expires,
            seller=seller + FIRST_PERSON_ID,
            category=category,
            extra=self._extra(size, c.avg_auction_size),
        )

    def _channel(self) -> tuple[str, str]:
        """Where a bid came from: a hot channel, or ``channel-<n>`` with its id in the url."""
        rnd = self._rng.random
        url = self._urls[int(rnd() * _NUM_URLS)]
        if int(rnd() * HOT_CHANNEL_RATIO) > 0:
            return HOT_CHANNELS[int(rnd() * len(HOT_CHANNELS))], url
        number = int(rnd() * NUM_CHANNELS)
        return f"channel-{number}", f"{url}&channel_id={number}"

    def _bid(self, n: int, t: int) -> Bid:
        # the hottest path of the generator: inlined draws (46 of 50 events are bids)
        c = self.config
        rnd = self._rng.random
        if int(rnd() * c.hot_auction_ratio) > 0:
            auction = (self.last_auction_id(n) // HOT_BATCH) * HOT_BATCH
        else:
            auction = self._random_auction_id(n)
        auction += FIRST_AUCTION_ID
        if int(rnd() * c.hot_bidders_ratio) > 0:
            bidder = (self.last_person_id(n) // HOT_BATCH) * HOT_BATCH + 1
        else:
            bidder = self._random_person_id(n)
        initial = self._initial_bids.get(auction)
        price = self._price() if initial is None else initial + int(rnd() * (initial + 1))
        channel, url = self._channel()
        return Bid(
            auction=auction,
            bidder=bidder + FIRST_PERSON_ID,
            price=price,
            channel=channel,
            url=url,
            dateTime=t,
            extra=self._extra(BID_FIXED_SIZE, c.avg_bid_size),
        )


def generate(num_events: int, config: GeneratorConfig | None = None) -> list[Event]:
    """The first ``num_events`` events of ``config`` as a list."""
    return list(itertools.islice(NexmarkGenerator(config), num_events))


_WRITE_CHUNK = 10_000
"""Events encoded per ``encode_lines`` call when writing a file."""


def write_events(path: str | Path, num_events: int, config: GeneratorConfig | None = None) -> int:
    """Write ``num_events`` events of ``config`` to ``path`` as JSON lines.

    Returns:
        The number of bytes written.
    """
    encoder = msgspec.json.Encoder()
    gen = NexmarkGenerator(config)
    written = 0
    with open(path, "wb") as f:
        remaining = num_events
        while remaining > 0:
            chunk = list(itertools.islice(gen, min(remaining, _WRITE_CHUNK)))
            remaining -= len(chunk)
            written += f.write(encoder.encode_lines(chunk))
    return written
