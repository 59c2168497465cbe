"""examples/kafka_pipeline.py against a plain-Python computation of the same figures."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
LIMIT = 6000


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kafka_pipeline", EXAMPLES / "kafka_pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_figures(csv_path: Path) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    """(origin, carrier, day in UTC-5) -> (departures, total delay, max delay)."""
    est = timezone(timedelta(hours=-5))
    out: dict[tuple[str, str, str], tuple[int, int, int]] = {}
    with csv_path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["dep_delay"] in ("", "NA"):
                continue
            hour = datetime.fromisoformat(row["time_hour"].replace("Z", "+00:00"))
            key = (row["origin"], row["carrier"], hour.astimezone(est).date().isoformat())
            d = int(row["dep_delay"])
            n, total, mx = out.get(key, (0, 0, -(2**31)))
            out[key] = (n + 1, total + d, max(mx, d))
    return out


def test_kafka_pipeline_example_is_exact(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = load_example()
    in_topic, out_topic = new_topic(4), new_topic(2)
    data_dir = tmp_path_factory.mktemp("flights")
    args = example.parse_args(
        [
            "--bootstrap-servers",
            kafka_bootstrap,
            "--input-topic",
            in_topic,
            "--output-topic",
            out_topic,
            "--data-dir",
            str(data_dir),
            "--limit",
            str(LIMIT),
            "--parallelism",
            "2",
        ]
    )
    figures: list[dict[str, Any]] = example.run(args, kafka_bootstrap)
    got = {
        (f["origin"], f["carrier"], f["day"]): (f["departures"], f["total_delay"], f["max_delay"])
        for f in figures
    }
    assert len(got) == len(figures)  # every window result exactly once
    assert got == expected_figures(data_dir / f"flights_first_{LIMIT}.csv")
    printed = capsys.readouterr().out
    assert f"{LIMIT:,} flights" in printed and "(0 late flights)" in printed
    sys.modules.pop("flight_delays", None)
