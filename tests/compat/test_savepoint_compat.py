"""Savepoint format compatibility: the committed fixture ``savepoint-v1/`` must restore.

``savepoint-v1/hashmap`` and ``savepoint-v1/rocksdb`` were written by format version 1
(see ``make_fixture.py`` for the job and the rules). Each is restored with the heap and
the RocksDB backend (from a copy in another directory: savepoints are relocatable) and
the job runs to the end of its input. The results must equal the ``expected.json``
recorded when the fixture was made, and must be what an uninterrupted run over the
whole input produces from the savepoint's position on: that proves the split position,
the keyed value/list/map state, the pending timers and the pending window contents all
came back.

If this test fails after a change, the change broke reading existing savepoints. Do not
regenerate the fixture: restore compatibility (migrate old data on restore) or, for a
deliberate break, bump the format version and add a ``savepoint-v2`` fixture.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from make_fixture import KEYS, N_EVENTS, events, restore_and_run

from strom._checkpoint.snapshots import SNAPSHOT_FORMAT_VERSION
from strom._checkpoint.storage import METADATA_VERSION
from strom._state.snapshot import KEYED_SNAPSHOT_VERSION

FIXTURE = Path(__file__).parent / "savepoint-v1"

FIXTURE_SHA256 = {
    "hashmap/_metadata": "827b7f502c188df66c7a6dfef50dcfd4c6d31e3878cf5e37117dee442605c2d1",
    "hashmap/enumerator-events": "66a7d5f4ff347bf9b3a2888b64e5942921230c435216103e5b6f6ef28ee894ec",
    "hashmap/events-0-2": "ae8caf85c43240fe02e603dd1d7d584a20e3ba7dae114260dc3d67a3de149cd7",
    "hashmap/expected.json": "a78f929d105e451bbf79669014153a289ffbc20f38dd2dec534fa3758b6570e4",
    "hashmap/stateful-0-2": "98c54c2749b3dfd1d7438ecb457166b87e072a919fbe5dd656b51431b62fd94e",
    "hashmap/stateful-sink-0-2": "acaca430dca44cf9afda4748d8a77149e7885ab6f0d87db5ac79d00d6dc728df",
    "hashmap/windows-0-2": "e422837fa47853a13f3ce11f3b026011540d1a8c9b343ea5a72164076962ef2f",
    "hashmap/windows-sink-0-2": "1aff290daccfcd7da9c4fb126790613d10ad395310bc116bdcdd8462bfdc77b4",
    "rocksdb/_metadata": "e0a5084e1b41083af5471e6599f7304d34a718813882f7d8d9597ad3ea014085",
    "rocksdb/enumerator-events": "66a7d5f4ff347bf9b3a2888b64e5942921230c435216103e5b6f6ef28ee894ec",
    "rocksdb/events-0-2": "ae8caf85c43240fe02e603dd1d7d584a20e3ba7dae114260dc3d67a3de149cd7",
    "rocksdb/expected.json": "a78f929d105e451bbf79669014153a289ffbc20f38dd2dec534fa3758b6570e4",
    "rocksdb/stateful-0-2": "68678791949d06fe271e307e186623179629a202ebaf4d19748d3a89644a4d65",
    "rocksdb/stateful-sink-0-2": "acaca430dca44cf9afda4748d8a77149e7885ab6f0d87db5ac79d00d6dc728df",
    "rocksdb/windows-0-2": "b49896612eb0b92acf1546644eac0fc409b199da70a0b915267f62260c5c34f0",
    "rocksdb/windows-sink-0-2": "1aff290daccfcd7da9c4fb126790613d10ad395310bc116bdcdd8462bfdc77b4",
}
"""Digests of the committed fixture: it is never regenerated (see the module docstring)."""


def test_fixture_is_the_committed_version_1_savepoint() -> None:
    found = {
        str(p.relative_to(FIXTURE)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(FIXTURE.rglob("*"))
        if p.is_file() and p.name != ".gitattributes"
    }
    assert found == FIXTURE_SHA256, (
        "the savepoint-v1 fixture was changed; fixtures are immutable (add savepoint-v2)"
    )
    for written_by in ("hashmap", "rocksdb"):
        meta = json.loads((FIXTURE / written_by / "_metadata").read_text())
        assert meta["version"] == 1 and meta["kind"] == "savepoint"
    # this Strom still writes (and therefore must keep reading) version 1
    assert (METADATA_VERSION, SNAPSHOT_FORMAT_VERSION, KEYED_SNAPSHOT_VERSION) == (1, 1, 1)


def expected_from_input(position: int) -> dict[str, Any]:
    """What the job emits for the events from ``position`` on, computed from the input:
    per event the running count and last three values of its key (over the *whole*
    input, so the restored value and list state are included), and the full per-key
    per-second sums and window aggregates."""
    all_events = events()
    elements = []
    for i in range(position, N_EVENTS):
        key, ts, _ = all_events[i]
        mine = [v for k, _, v in all_events[: i + 1] if k == key]
        elements.append(["element", key, ts, len(mine), mine[-3:]])
    sums: dict[tuple[str, int], list[int]] = defaultdict(list)
    for key, ts, v in all_events:
        sums[(key, ts // 1000)].append(v)
    return {
        "elements": sorted(elements, key=repr),
        "timers": {(k, s * 1000 + 999): sum(vs) for (k, s), vs in sums.items()},
        "windows": {(k, s * 1000): [len(vs), sum(vs)] for (k, s), vs in sums.items()},
    }


def split_position(savepoint: Path) -> int:
    """The FileSource split position stored in the savepoint (records to skip)."""
    envelope = pickle.loads((savepoint / "events-0-2").read_bytes())
    (split,) = envelope["state"]["splits"]
    assert split.path == "memory:///strom-compat-fixture/events.csv"
    position: int = split.records_to_skip
    return position


@pytest.mark.parametrize("restored_by", ["hashmap", "rocksdb"])
@pytest.mark.parametrize("written_by", ["hashmap", "rocksdb"])
def test_restore_committed_savepoint(tmp_path: Path, written_by: str, restored_by: str) -> None:
    savepoint = tmp_path / "moved" / "savepoint"
    shutil.copytree(FIXTURE / written_by, savepoint)  # relocated: paths are relative
    out = restore_and_run(str(savepoint), restored_by)

    # 1. exactly what restoring produced when the fixture was made
    expected = json.loads((FIXTURE / written_by / "expected.json").read_text())
    assert out == {name: sorted(rows, key=repr) for name, rows in expected.items()}

    # 2. and what the input implies from the savepoint's position on
    position = split_position(savepoint)
    assert 0 < position < N_EVENTS  # the savepoint was taken mid-file
    truth = expected_from_input(position)
    elements = [r for r in out["stateful"] if r[0] == "element"]
    assert elements == truth["elements"]  # each remaining event once, state continued
    timers = [r for r in out["stateful"] if r[0] == "timer"]
    assert timers, "no timer fired"
    for _, key, ts, total in timers:
        assert truth["timers"][(key, ts)] == total  # map state restored
    fired_timers = {(k, ts) for _, k, ts, _ in timers}
    assert len(fired_timers) == len(timers)
    windows = {(k, start): [c, s] for _, k, start, c, s in out["windows"]}
    assert len(windows) == len(out["windows"])
    for kw, agg in windows.items():
        assert truth["windows"][kw] == agg  # pending window contents restored
    # everything at or after the position fires after the restore ...
    first_second = position * 25 // 1000
    for key, ts, _ in events()[position:]:
        assert (key, ts // 1000 * 1000 + 999) in fired_timers
        assert (key, ts // 1000 * 1000) in windows
    # ... and so do timers and windows that were pending in the savepoint
    assert any(ts // 1000 < first_second for _, ts in fired_timers)
    assert any(start // 1000 < first_second for _, start in windows)
    assert {k for k, _ in windows} == set(KEYS)
