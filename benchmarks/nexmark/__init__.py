"""Nexmark on Strom: an event generator, the queries on the DataStream API, and a runner.

Nexmark models an online auction site with three event streams: new persons, new
auctions and bids. This package follows the nexmark/nexmark repository (the Flink
Nexmark benchmark):

- :mod:`benchmarks.nexmark.generator`: a deterministic generator of Person/Auction/Bid
  events (proportions 1:3:46, ids from 1000, hot auctions/bidders/sellers, event time at a
  configurable rate, optional bounded out-of-order delays), written as JSON lines.
- :mod:`benchmarks.nexmark.model`: the events and result rows (``msgspec`` structs with
  the standard camelCase field names).
- :mod:`benchmarks.nexmark.queries`: q0-q5, q7, q8 and q11 with the semantics of the
  repository's Flink SQL texts (and ``q5-sliding``, q5 on sliding windows).
- :mod:`benchmarks.nexmark.runner`: ``run_query(name, events)`` runs and times one query
  over a file or in-memory events.

Command line (``python -m benchmarks.nexmark --help``)::

    python -m benchmarks.nexmark generate --events 1000000 --output events.jsonl
    python -m benchmarks.nexmark --query q5 --input events.jsonl --output q5.jsonl
    python -m benchmarks.nexmark --query all --events 200000
"""

from benchmarks.nexmark.generator import GeneratorConfig, NexmarkGenerator, generate, write_events
from benchmarks.nexmark.queries import QUERIES
from benchmarks.nexmark.runner import RunResult, run_query

__all__ = [
    "QUERIES",
    "GeneratorConfig",
    "NexmarkGenerator",
    "RunResult",
    "generate",
    "run_query",
    "write_events",
]
