"""RecordWriter keyed routing: every record reaches the channel of its key group, in order,
with its timestamp, whether its key's channel is cached or not, and errors name the uid."""

from __future__ import annotations

from typing import Any

import pytest

from strom._graph.partitioner import KeyGroupStreamPartitioner
from strom._runtime.elements import RecordBatch
from strom._runtime.io.channels import LocalInputChannel
from strom._runtime.io.record_writer import RecordWriter
from strom._runtime.key_groups import channel_indices
from strom.errors import UnhashableKeyError, UserFunctionError

MAXP = 128


def _writer(
    n: int, key_of: Any, batch_size: int = 7
) -> tuple[RecordWriter, list[LocalInputChannel]]:
    chans = [LocalInputChannel(10_000, f"c{i}") for i in range(n)]
    part = KeyGroupStreamPartitioner(key_selector=key_of)
    w = RecordWriter(list(chans), part, batch_size, MAXP, target_uid="sum-uid",
                     target_name="sum", subtask_index=0)
    return w, chans


def _drained(chans: list[LocalInputChannel]) -> list[list[tuple[Any, Any]]]:
    out: list[list[tuple[Any, Any]]] = []
    for ch in chans:
        got: list[tuple[Any, Any]] = []
        for b in ch.queue:
            assert type(b) is RecordBatch
            ts = b.timestamps if b.timestamps is not None else [None] * len(b.values)
            assert len(ts) == len(b.values)
            got.extend(zip(b.values, ts))
        out.append(got)
    return out


@pytest.mark.parametrize("n", [2, 3])
def test_keyed_routing_exact_with_new_keys_and_mixed_timestamps(n: int) -> None:
    w, chans = _writer(n, lambda r: r[0])
    expected: list[list[tuple[Any, Any]]] = [[] for _ in range(n)]
    seq = 0
    # batches alternate with and without timestamps; keys 0..9 recur, and every batch
    # also brings keys never seen before (route-cache misses in the middle of a batch)
    for b in range(12):
        keys = [seq % 10 if i % 3 else f"new-{b}-{i}" for i in range(1, 20)]
        values = []
        for k in keys:
            values.append((k, seq))
            seq += 1
        ts = [1000 + v[1] for v in values] if b % 2 else None
        w.emit(values, ts)
        for v, t, ch in zip(values, ts or [None] * len(values),
                            channel_indices([v[0] for v in values], MAXP, n)):
            expected[ch].append((v, t))
    w.flush()
    assert w.buffered == 0 and w.dirty_since_ms is None
    assert _drained(chans) == expected
    assert w.records_out == seq
    # every full buffer went out as one batch of at least batch_size records
    for ch in chans:
        sizes = [len(b.values) for b in ch.queue]
        assert all(s >= 7 for s in sizes[:-1])


def test_buffers_flush_at_batch_size_and_track_dirtiness() -> None:
    w, chans = _writer(2, lambda r: r)
    key0 = next(k for k in range(100) if channel_indices([k], MAXP, 2)[0] == 0)
    w.emit([key0] * 3, None)
    w.emit([key0] * 3, None)  # now cached: the one-pass path
    assert w.buffered == 1 and w.dirty_since_ms is not None
    assert len(chans[0].queue) == 0
    w.emit([key0] * 3, None)  # 9 >= 7: flushed as one batch
    assert [b.values for b in chans[0].queue] == [[key0] * 9]
    assert w.buffered == 0 and w.dirty_since_ms is None


def test_selector_error_names_uid_and_keeps_earlier_records() -> None:
    def key_of(r: Any) -> Any:
        return r["k"]

    w, chans = _writer(2, key_of, batch_size=1000)
    w.emit([{"k": 1}, {"k": 2}], None)
    with pytest.raises(UserFunctionError) as e:
        w.emit([{"k": 1}, {"x": 2}], None)
    assert e.value.operator_uid == "sum-uid" and "key selector" in str(e.value)
    w.flush()
    routed = sorted(v["k"] for ch in _drained(chans) for v, _ in ch)
    assert routed == [1, 1, 2]  # the record before the failing one was routed


def test_unhashable_key_error() -> None:
    w, _ = _writer(2, lambda r: r)
    w.emit([1, 2], None)
    with pytest.raises(UnhashableKeyError) as e:
        w.emit([1, [2]], None)
    assert e.value.operator_uid == "sum-uid"
