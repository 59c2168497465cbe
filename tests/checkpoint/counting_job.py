"""A keyed counting job whose every update appears exactly once, and its output reader.

Shared by the recovery tests on the LocalExecutor and the incremental RocksDB tests.
Importable by TaskManagers (``sys.path`` is shipped), so its functions pickle by reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from strom.connectors import DataGeneratorSource
from strom.connectors.file import Encoder, FileSink
from strom.datastream import StreamExecutionEnvironment


def counting_job(env: StreamExecutionEnvironment, out: Path, n: int | None, rate: float) -> None:
    """``(key, index, running count)`` per record over 5 keys into a FileSink at ``out``."""
    source = DataGeneratorSource(lambda i: (f"k{i % 5}", i), n, rate)
    env.from_source(source, None, "gen").uid("gen").key_by(lambda r: r[0]).reduce(
        lambda a, b: (a[0], b[1], (a[2] if len(a) == 3 else 1) + 1)
    ).uid("count").sink_to(
        FileSink.for_row_format(str(out), Encoder.json_lines_encoder()).build()
    ).uid("sink")


def read_output(path: Path) -> list[Any]:
    """Every committed JSON line under ``path`` (in-progress dot files skipped)."""
    if not path.exists():
        return []
    files = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]
