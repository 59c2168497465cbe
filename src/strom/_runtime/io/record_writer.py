"""RecordWriter: routes a task's output batches to the channels of one edge.

Records are appended to per-channel buffers that are flushed as one ``RecordBatch`` when
they reach ``batch_size`` records, when the buffer timeout expires (checked by the task
loop), when the task is idle, or before any control element (so order is kept). A batch
of at least ``batch_size`` records arriving at an empty buffer is handed on as is.
"""

from __future__ import annotations

import random
from itertools import compress, repeat
from operator import not_
from time import monotonic_ns
from typing import Any

from strom._graph.partitioner import (
    BroadcastPartitioner,
    CustomPartitionerWrapper,
    KeyGroupStreamPartitioner,
    Partitioner,
    ShufflePartitioner,
)
from strom._runtime.elements import RecordBatch
from strom._runtime.io.channels import OutputChannel
from strom._runtime.key_selectors import inline_key_selector
from strom.errors import TaskError, UnhashableKeyError, UserFunctionError

__all__ = ["RecordWriter"]

_ROUTE_CACHE_MAX = 1 << 16  # keys whose channel is remembered per writer (bounds memory)
# key types whose channel may be cached: stable_hash follows Python equality for them, so
# keys that are the same dict entry (1, 1.0, True) always share a key group anyway
_CACHEABLE_KEYS = frozenset((int, str, bytes, float, bool))


class RecordWriter:
    """Writes one producer subtask's output for one edge.

    Args:
        channels: target channels, indexed by consumer subtask (for pointwise edges only
            the reachable consumers, in order).
        partitioner: the edge's routing.
        batch_size: records per flushed batch.
        max_parallelism: key groups (keyed routing).
        start_channel: first round-robin target (spreads producers over consumers).
        target_uid: uid of the consuming operator (named in key errors).
        target_name: name of the consuming operator.
        subtask_index: the producing subtask (named in key errors).
    """

    def __init__(
        self,
        channels: list[OutputChannel],
        partitioner: Partitioner,
        batch_size: int,
        max_parallelism: int,
        start_channel: int = 0,
        target_uid: str | None = None,
        target_name: str | None = None,
        subtask_index: int | None = None,
    ) -> None:
        self.target_uid = target_uid
        self.target_name = target_name
        self.subtask_index = subtask_index
        self.channels = channels
        self.partitioner = partitioner
        self.batch_size = batch_size
        self.max_parallelism = max_parallelism
        n = len(channels)
        self.buf_values: list[list[Any]] = [[] for _ in range(n)]
        self.buf_ts: list[list[Any] | None] = [None] * n
        self.buffered = 0
        self.dirty_since_ms: int | None = None
        self.records_out = 0
        self._routes: dict[Any, int] = {}
        self._rr = start_channel % n if n else 0
        self._key_of = inline_key_selector(getattr(partitioner, "key_selector", None))
        if n == 1:
            self.emit = self._emit_single  # type: ignore[method-assign]
        elif isinstance(partitioner, KeyGroupStreamPartitioner):
            self.emit = self._emit_keyed  # type: ignore[method-assign]
        elif isinstance(partitioner, BroadcastPartitioner):
            self.emit = self._emit_broadcast  # type: ignore[method-assign]
        elif isinstance(partitioner, ShufflePartitioner):
            self.emit = self._emit_shuffle  # type: ignore[method-assign]
        elif isinstance(partitioner, CustomPartitionerWrapper):
            self.emit = self._emit_custom  # type: ignore[method-assign]
        else:  # rebalance, rescale (forward has one channel)
            self.emit = self._emit_round_robin  # type: ignore[method-assign]

    # -- availability ---------------------------------------------------------------------
    def is_available(self) -> bool:
        """False while any target channel is full (back-pressure)."""
        for ch in self.channels:
            if len(ch.queue) >= ch.capacity:
                return False
        return True

    # -- emitting -------------------------------------------------------------------------
    def emit(self, values: list[Any], timestamps: list[Any] | None) -> None:
        """Route a batch (replaced per instance by the partitioner's strategy)."""

    def _append(self, ch: int, values: list[Any], timestamps: list[Any] | None) -> None:
        buf = self.buf_values[ch]
        n_before = len(buf)
        if n_before == 0 and len(values) >= self.batch_size:
            self.channels[ch].push(RecordBatch(values, timestamps))
            return
        ts_buf = self.buf_ts[ch]
        if timestamps is not None:
            if ts_buf is None:
                ts_buf = self.buf_ts[ch] = [None] * n_before
            ts_buf.extend(timestamps)
        elif ts_buf is not None:
            ts_buf.extend([None] * len(values))
        buf.extend(values)
        if n_before == 0:
            self._buffer_started()
        if len(buf) >= self.batch_size:
            self._flush_channel(ch)

    def _buffer_started(self) -> None:
        """A channel buffer became non-empty: count it, start the buffer timeout."""
        self.buffered += 1
        if self.dirty_since_ms is None:
            self.dirty_since_ms = monotonic_ns() // 1_000_000

    def _emit_single(self, values: list[Any], timestamps: list[Any] | None) -> None:
        self.records_out += len(values)
        self._append(0, values, timestamps)

    def _emit_round_robin(self, values: list[Any], timestamps: list[Any] | None) -> None:
        self.records_out += len(values)
        ch = self._rr
        self._rr = (ch + 1) % len(self.channels)
        self._append(ch, values, timestamps)

    def _emit_broadcast(self, values: list[Any], timestamps: list[Any] | None) -> None:
        self.records_out += len(values) * len(self.channels)
        for ch in range(len(self.channels)):
            self._append(ch, values, timestamps)

    def _scatter(
        self, targets: list[int], values: list[Any], timestamps: list[Any] | None
    ) -> None:
        n = len(self.channels)
        if n == 2:  # the common case: C-level passes instead of a Python loop
            sel0 = list(map(not_, targets))
            for ch, sel in ((0, sel0), (1, targets)):
                part = list(compress(values, sel))
                if part:
                    self._append(
                        ch,
                        part,
                        None if timestamps is None else list(compress(timestamps, sel)),
                    )
            return
        parts: list[list[Any]] = [[] for _ in range(n)]
        if timestamps is None:
            for t, v in zip(targets, values):
                parts[t].append(v)
            for ch in range(n):
                if parts[ch]:
                    self._append(ch, parts[ch], None)
        else:
            tparts: list[list[Any]] = [[] for _ in range(n)]
            for t, v, ts in zip(targets, values, timestamps):
                parts[t].append(v)
                tparts[t].append(ts)
            for ch in range(n):
                if parts[ch]:
                    self._append(ch, parts[ch], tparts[ch])

    def _emit_keyed(self, values: list[Any], timestamps: list[Any] | None) -> None:
        self.records_out += len(values)
        key_of = self._key_of
        assert key_of is not None
        get = self._routes.__getitem__
        bufs = self.buf_values
        sizes = list(map(len, bufs))
        # One pass straight into the channel buffers while every key's channel is cached:
        # each record is touched once, which keeps a batch in the CPU cache (separate
        # key / target / compress passes each miss it again). The first record that is
        # not simple (a new key, an unhashable key, a failing selector) ends the pass; the
        # rest of the batch takes the checked path, which reports errors.
        try:
            if timestamps is None and not self._ts_buffered:
                appends = [b.append for b in bufs]
                for v in values:
                    appends[get(key_of(v))](v)
            else:
                ts_bufs = self._ts_buffers(sizes)
                pairs = [(b.append, t.append) for b, t in zip(bufs, ts_bufs)]
                for v, ts in zip(values, timestamps or repeat(None)):
                    append_v, append_ts = pairs[get(key_of(v))]
                    append_v(v)
                    append_ts(ts)
            done = len(values)
        except Exception:
            done = sum(map(len, bufs)) - sum(sizes)
        self._after_fill(sizes)
        if done < len(values):
            rest = values[done:]
            rest_ts = None if timestamps is None else timestamps[done:]
            self._scatter(self._route_checked(key_of, rest), rest, rest_ts)

    @property
    def _ts_buffered(self) -> bool:
        return any(t is not None for t in self.buf_ts)

    def _ts_buffers(self, sizes: list[int]) -> list[list[Any]]:
        """Every channel's timestamp buffer, created (None-padded) where missing."""
        out = []
        for ch, n in enumerate(sizes):
            t = self.buf_ts[ch]
            if t is None:
                t = self.buf_ts[ch] = [None] * n
            out.append(t)
        return out

    def _after_fill(self, sizes: list[int]) -> None:
        """Bookkeeping after records were appended to the buffers directly."""
        bufs = self.buf_values
        for ch, n0 in enumerate(sizes):
            n = len(bufs[ch])
            if n == n0:
                continue
            if n0 == 0:
                self._buffer_started()
            if n >= self.batch_size:
                self._flush_channel(ch)

    def _route_checked(self, key_of: Any, values: list[Any]) -> list[int]:
        """Channels of ``values``; user errors of the selector and bad keys reported."""
        try:
            keys = list(map(key_of, values))
        except Exception as e:
            raise self._key_error(UserFunctionError, f"{type(e).__name__}: {e} "
                                  "(raised by the key selector of key_by)") from e
        try:
            # hot keys repeat: look their channel up instead of re-hashing every record
            return list(map(self._routes.__getitem__, keys))
        except (KeyError, TypeError):
            return self._route_slow(keys)

    def _route_slow(self, keys: list[Any]) -> list[int]:
        """Channels of a batch with keys missing from the route cache (or unhashable)."""
        from strom._runtime.key_groups import channel_indices

        try:
            targets = channel_indices(keys, self.max_parallelism, len(self.channels))
        except TypeError as e:
            raise self._key_error(UnhashableKeyError, f"invalid key: {e}") from e
        routes = self._routes
        room = _ROUTE_CACHE_MAX - len(routes)
        if room > 0:
            cacheable = _CACHEABLE_KEYS
            for k, t in zip(keys, targets):
                if type(k) in cacheable and k not in routes:
                    routes[k] = t
                    room -= 1
                    if room == 0:
                        break
        return targets

    def _key_error(self, cls: type[TaskError], msg: str) -> TaskError:
        return cls(msg, operator_uid=self.target_uid, operator_name=self.target_name,
                   subtask_index=self.subtask_index)

    def _emit_shuffle(self, values: list[Any], timestamps: list[Any] | None) -> None:
        self.records_out += len(values)
        n = len(self.channels)
        rnd = random.randrange
        self._scatter([rnd(n) for _ in values], values, timestamps)

    def _emit_custom(self, values: list[Any], timestamps: list[Any] | None) -> None:
        self.records_out += len(values)
        p = self.partitioner
        assert isinstance(p, CustomPartitionerWrapper)
        assert p.partitioner is not None and p.key_selector is not None
        n = len(self.channels)
        fn, key_of = p.partitioner, p.key_selector
        targets = []
        for v in values:
            t = fn(key_of(v), n)
            if not isinstance(t, int) or not 0 <= t < n:
                msg = f"custom partitioner returned {t!r}; it must return an int in [0, {n})"
                raise ValueError(msg)
            targets.append(t)
        self._scatter(targets, values, timestamps)

    # -- flushing -------------------------------------------------------------------------
    def _flush_channel(self, ch: int) -> None:
        buf = self.buf_values[ch]
        if buf:
            self.channels[ch].push(RecordBatch(buf, self.buf_ts[ch]))
            self.buf_values[ch] = []
            self.buf_ts[ch] = None
            self.buffered -= 1
            if self.buffered == 0:
                self.dirty_since_ms = None

    def flush(self) -> None:
        """Push every non-empty buffer to its channel."""
        if self.buffered:
            for ch in range(len(self.channels)):
                self._flush_channel(ch)
        self.dirty_since_ms = None

    def broadcast_event(self, element: Any) -> None:
        """Flush, then send a control element to every channel (keeps order)."""
        self.flush()
        for ch in self.channels:
            ch.push(element)
