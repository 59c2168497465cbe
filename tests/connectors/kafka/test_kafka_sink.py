"""KafkaSink against a real broker: delivery guarantees and the two-phase commit pieces."""

from __future__ import annotations

import base64
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from kafka_test_support import QUIET, consume_all, last_stable_offset

from strom.connectors.kafka import (
    DeliveryGuarantee,
    JsonSerializationSchema,
    KafkaRecordSerializationSchema,
    KafkaSink,
    SimpleStringSchema,
)
from strom.connectors.kafka._txn_client import TransactionCoordinatorClient
from strom.connectors.kafka._writer import PRECOMMITTED, KafkaCommittable, KafkaWriterState
from strom.connectors.sink import CommitRequest, SinkWriterContext
from strom.errors import ConnectorError

pytestmark = pytest.mark.kafka


def make_sink(
    bootstrap: str, topic: str, guarantee: DeliveryGuarantee, prefix: str | None = None
) -> KafkaSink:
    b = (
        KafkaSink.builder()
        .set_bootstrap_servers(bootstrap)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(topic)
            .set_key_serialization_schema(lambda v: v.split(":")[0].encode())
            .set_value_serialization_schema(SimpleStringSchema())
            .set_header_provider(lambda v: {"src": b"strom"})
            .build()
        )
        .set_delivery_guarantee(guarantee)
        .set_kafka_producer_config({"linger.ms": 1, **QUIET})
    )
    if prefix is not None:
        b.set_transactional_id_prefix(prefix)
    return b.build()


def values(messages: list[Any]) -> list[str]:
    return sorted(m.value().decode() for m in messages)


@pytest.mark.parametrize("guarantee", [DeliveryGuarantee.NONE, DeliveryGuarantee.AT_LEAST_ONCE])
def test_non_transactional_delivery(
    guarantee: DeliveryGuarantee, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(2)
    sink = make_sink(kafka_bootstrap, topic, guarantee)
    assert sink.create_committer() is None
    writer = sink.create_writer(SinkWriterContext(0, 1))
    writer.write_batch(
        [f"k{i}:v{i}" for i in range(100)], [1_700_000_000_000 + i for i in range(100)]
    )
    writer.flush(end_of_input=guarantee is DeliveryGuarantee.NONE)
    assert writer.prepare_commit() == [] and writer.snapshot_state(1) == []
    messages = consume_all(kafka_bootstrap, topic, expect=100)
    assert values(messages) == sorted(f"k{i}:v{i}" for i in range(100))
    m = next(m for m in messages if m.value() == b"k7:v7")
    assert m.key() == b"k7" and m.headers() == [("src", b"strom")]
    assert m.timestamp()[1] == 1_700_000_000_007  # the element's event time
    writer.close()


def test_exactly_once_visible_only_after_commit_and_commit_is_idempotent(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1)
    prefix = f"eo-{topic}"
    sink = make_sink(kafka_bootstrap, topic, DeliveryGuarantee.EXACTLY_ONCE, prefix)
    writer = sink.create_writer(SinkWriterContext(0, 1))
    committer = sink.create_committer()
    assert committer is not None

    writer.write_batch(["a:1", "a:2"], None)
    writer.flush(False)
    [c1] = writer.prepare_commit()
    assert c1 == KafkaCommittable(f"{prefix}-0-1", 0)
    assert writer.snapshot_state(1) == [KafkaWriterState(prefix, 0, 2)]
    writer.write_batch(["a:3"], None)  # the next checkpoint's transaction
    writer.flush(False)
    # pre-committed but not committed: a read_committed consumer sees nothing
    assert last_stable_offset(kafka_bootstrap, topic, 0) == 0
    assert consume_all(kafka_bootstrap, topic) == []

    committer.commit([CommitRequest(c1)])
    assert values(consume_all(kafka_bootstrap, topic, expect=2)) == ["a:1", "a:2"]
    committer.commit([CommitRequest(c1)])  # again (e.g. after a restart): a no-op
    [c2] = writer.prepare_commit()
    assert c2.transactional_id == f"{prefix}-0-2"
    assert writer.prepare_commit() == []  # nothing written since: no empty transaction
    committer.commit([CommitRequest(c2)])
    assert values(consume_all(kafka_bootstrap, topic, expect=3)) == ["a:1", "a:2", "a:3"]
    assert values(consume_all(kafka_bootstrap, topic, "read_uncommitted")) == ["a:1", "a:2", "a:3"]
    writer.close()
    committer.close()


_CRASHING_WRITER = textwrap.dedent(
    """
    import base64, pickle, sys, time
    from strom.connectors.sink import SinkWriterContext
    sink = pickle.loads(base64.b64decode(sys.argv[1]))
    writer = sink.create_writer(SinkWriterContext(0, 1))
    writer.write_batch(["a:before-checkpoint-1", "a:before-checkpoint-2"], None)
    writer.flush(False)
    committables = writer.prepare_commit()
    state = writer.snapshot_state(1)
    print(base64.b64encode(pickle.dumps((committables, state))).decode(), flush=True)
    writer.write_batch(["a:after-checkpoint"], None)   # in the next, open transaction
    writer.flush(False)
    print("written", flush=True)
    time.sleep(120)   # killed here, before the checkpoint's commit
    """
)


def test_restore_commits_precommitted_and_aborts_lingering_of_a_killed_writer(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1)
    prefix = f"crash-{topic}"
    sink = (  # picklable (no lambdas): the writer runs in a child process
        KafkaSink.builder()
        .set_bootstrap_servers(kafka_bootstrap)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(topic)
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
        .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .set_transactional_id_prefix(prefix)
        .set_kafka_producer_config({"linger.ms": 1, **QUIET})
        .build()
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, base64.b64encode(pickle.dumps(sink)).decode()],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        committables, state = pickle.loads(base64.b64decode(proc.stdout.readline()))
        assert proc.stdout.readline().strip() == "written"
    finally:
        proc.kill()  # SIGKILL: no abort, no close; both transactions stay open
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    client = TransactionCoordinatorClient({"bootstrap.servers": kafka_bootstrap})
    assert client.describe_transaction(f"{prefix}-0-1").state == "Ongoing"  # type: ignore[union-attr]
    assert client.describe_transaction(f"{prefix}-0-2").state == "Ongoing"  # type: ignore[union-attr]
    assert last_stable_offset(kafka_bootstrap, topic, 0) == 0  # open transactions block readers

    # restart from the checkpoint: the runtime restores the writer, then commits
    writer = sink.restore_writer(SinkWriterContext(0, 1, attempt_number=1), state)
    assert client.describe_transaction(f"{prefix}-0-2").state == "Empty"  # type: ignore[union-attr]
    assert client.describe_transaction(f"{prefix}-0-1").state == "Ongoing"  # type: ignore[union-attr]
    committer = sink.create_committer()
    assert committer is not None
    committer.commit([CommitRequest(c) for c in committables])  # over the wire: no live producer
    committer.commit([CommitRequest(c) for c in committables])  # idempotent
    assert client.describe_transaction(f"{prefix}-0-1").state == "CompleteCommit"  # type: ignore[union-attr]

    writer.write_batch(["a:after-restart"], None)
    [c] = writer.prepare_commit()
    assert c.transactional_id == f"{prefix}-0-2"  # the aborted id is reused, freshly fenced
    committer.commit([CommitRequest(c)])
    assert values(consume_all(kafka_bootstrap, topic, expect=3)) == [
        "a:after-restart",
        "a:before-checkpoint-1",
        "a:before-checkpoint-2",
    ]
    writer.close()
    committer.close()
    client.close()


def test_new_attempt_fences_a_zombie_writer(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1)
    prefix = f"zombie-{topic}"
    sink = make_sink(kafka_bootstrap, topic, DeliveryGuarantee.EXACTLY_ONCE, prefix)
    zombie = sink.create_writer(SinkWriterContext(0, 1))
    zombie.write_batch(["a:zombie-1"], None)
    [pre] = zombie.prepare_commit()
    state = zombie.snapshot_state(1)
    zombie.write_batch(["a:zombie-2"], None)  # open transaction 2
    zombie.flush(False)
    # the zombie's pre-committed producer is still live in this process; a new attempt
    # restored from checkpoint 1 fences transaction 2 and commits transaction 1
    writer = sink.restore_writer(SinkWriterContext(0, 1, attempt_number=1), state)
    committer = sink.create_committer()
    assert committer is not None
    committer.commit([CommitRequest(pre)])
    assert pre.transactional_id not in PRECOMMITTED
    with pytest.raises(ConnectorError):  # the zombie can no longer commit anything
        [z2] = zombie.prepare_commit()
        committer.commit([CommitRequest(z2)])
    zombie.close()
    writer.write_batch(["a:new"], None)
    committer.commit([CommitRequest(c) for c in writer.prepare_commit()])
    assert values(consume_all(kafka_bootstrap, topic, expect=2)) == ["a:new", "a:zombie-1"]
    writer.close()


def test_delivery_errors_fail_the_writer(kafka_bootstrap: str) -> None:
    sink = (
        KafkaSink.builder()
        .set_bootstrap_servers(kafka_bootstrap)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic("t")
            .set_value_serialization_schema(JsonSerializationSchema())
            .set_partitioner(lambda e, k, v, t: 99)  # no such partition
            .build()
        )
        .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
        .set_kafka_producer_config({"message.timeout.ms": 1000, **QUIET})
        .build()
    )
    writer = sink.create_writer(SinkWriterContext(0, 1))
    writer.write_batch([{"a": 1}], None)
    with pytest.raises(ConnectorError, match="could not be delivered"):
        writer.flush(False)
    writer.close()
