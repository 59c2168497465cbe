"""The Nexmark data model: input events and the result rows of each query.

Events are ``msgspec.Struct`` s tagged by a ``"type"`` field, so one JSON line decodes
straight into a :class:`Person`, :class:`Auction` or :class:`Bid` (a tagged union, one C
call per line) and encodes back to the standard camelCase fields::

    {"type":"person","id":1000,"name":"Peter Smith","emailAddress":...,"dateTime":...}
    {"type":"auction","id":1000,"itemName":...,"initialBid":...,"expires":...}
    {"type":"bid","auction":1000,"bidder":1001,"price":4211,"channel":...,"url":...}

``dateTime`` and ``expires`` are epoch milliseconds (the SQL ``TIMESTAMP(3)`` columns).
Structs decode faster than dicts (no per-field key objects) and read faster (attribute
slots); ``gc=False`` is safe because no field holds a container.

Result rows use the column names of the sink tables of the Flink SQL queries in the
nexmark/nexmark repository, so outputs can be compared with other engines.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

__all__ = [
    "EVENT_DECODER",
    "Auction",
    "Bid",
    "Event",
    "Person",
    "Q0Result",
    "Q1Result",
    "Q2Result",
    "Q3Result",
    "Q4Result",
    "Q5Result",
    "Q7Result",
    "Q8Result",
    "Q11Result",
]


class Person(msgspec.Struct, tag_field="type", tag="person", gc=False):
    """A new user of the auction site (Nexmark ``Person``)."""

    id: int
    name: str
    emailAddress: str
    creditCard: str
    city: str
    state: str
    dateTime: int
    extra: str


class Auction(msgspec.Struct, tag_field="type", tag="auction", gc=False):
    """An item put up for auction by ``seller`` (Nexmark ``Auction``)."""

    id: int
    itemName: str
    description: str
    initialBid: int
    reserve: int
    dateTime: int
    expires: int
    seller: int
    category: int
    extra: str


class Bid(msgspec.Struct, tag_field="type", tag="bid", gc=False):
    """A bid of ``bidder`` on ``auction`` (Nexmark ``Bid``); ``price`` in cents."""

    auction: int
    bidder: int
    price: int
    channel: str
    url: str
    dateTime: int
    extra: str


Event: TypeAlias = Person | Auction | Bid
"""One Nexmark event: the tagged union of the three event types."""

EVENT_DECODER: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
"""Decodes one JSON line (or many with ``decode_lines``) into events."""


# ----------------------------------------------------------------------------- results


class Q0Result(msgspec.Struct, gc=False):
    """q0 (pass through): every bid."""

    auction: int
    bidder: int
    price: int
    dateTime: int
    extra: str


class Q1Result(msgspec.Struct, gc=False):
    """q1 (currency conversion): the bid with ``price`` in euros (``0.908 * price``)."""

    auction: int
    bidder: int
    price: float
    dateTime: int
    extra: str


class Q2Result(msgspec.Struct, gc=False):
    """q2 (selection): auction and price of bids on every 123rd auction."""

    auction: int
    price: int


class Q3Result(msgspec.Struct, gc=False):
    """q3 (local item suggestion): seller in OR/ID/CA and an auction of category 10."""

    name: str
    city: str
    state: str
    id: int


class Q4Result(msgspec.Struct, gc=False):
    """q4 (average price per category): ``final`` is the running average winning price
    of category ``id`` over the auctions closed up to event time ``dateTime``."""

    id: int
    final: int
    dateTime: int


class Q5Result(msgspec.Struct, gc=False):
    """q5 (hot items): an auction with the most bids of one 10 s hop window."""

    auction: int
    num: int


class Q7Result(msgspec.Struct, gc=False):
    """q7 (highest bid): a bid whose price is the maximum of a 10 s tumbling window."""

    auction: int
    bidder: int
    price: int
    dateTime: int
    extra: str


class Q8Result(msgspec.Struct, gc=False):
    """q8 (monitor new users): a person who created an auction in the same 10 s window."""

    id: int
    name: str
    stime: int


class Q11Result(msgspec.Struct, gc=False):
    """q11 (user sessions): the number of bids of one bidder's session (10 s gap)."""

    bidder: int
    bid_count: int
    starttime: int
    endtime: int
