"""Credit-based flow control: a slow sink slows the sources; memory stays bounded.

The sink runs in TaskManager 0 and sleeps 1 ms per record; the source subtask in
TaskManager 1 can only send what the sink's channel granted credits for. A short
version of ``benchmarks/backpressure.py`` (which records the 30 s figure)."""

from __future__ import annotations

import time
from typing import Any

from cluster_procs import rss_bytes

from strom._cluster.minicluster import MiniCluster
from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
from strom.datastream import StreamExecutionEnvironment
from strom.errors import JobCancelledError

CAPACITY = 8  # execution.channel-capacity (default)
BATCH = 1000  # execution.batch-size (default)


class _SlowWriter(SinkWriter[Any, None]):
    def write(self, value: Any, timestamp_ms: int | None) -> None:
        time.sleep(0.001)

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        time.sleep(0.001 * len(values))


class SlowSink(Sink[Any, None]):
    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
        return _SlowWriter()


def test_slow_sink_backpressures_sources_and_memory_stays_bounded(
    own_cluster: MiniCluster,
) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    # source subtask 1 runs alone in TaskManager 1 and feeds the sink in TaskManager 0
    # over the network: only credits hold it back
    env.from_sequence(1, 10**15).rebalance().map(lambda x: (x, "payload" * 8)) \
        .set_parallelism(1).sink_to(SlowSink()).set_parallelism(1)
    client = env.execute_async("backpressure")
    pids = [h.pid for h in own_cluster.taskmanagers()]
    try:
        time.sleep(1.5)
        base = sum(rss_bytes(p) for p in pids)
        lags = []
        bp = []
        for _ in range(5):
            time.sleep(0.5)
            rows = client.get_metrics()
            produced = sum(r["records_out"] for r in rows if r["operator"] == "Sequence Source")
            consumed = sum(r["records_in"] for r in rows if r["operator"] == "SlowSink")
            lags.append(produced - consumed)
            bp.append(max(
                r["backpressured_ms"] for r in rows if r["operator"] == "Sequence Source"
            ))
            assert all(r["input_queue"] <= 2 * CAPACITY for r in rows)
        growth = sum(rss_bytes(p) for p in pids) - base
    finally:
        client.cancel()
        try:
            client.get_job_execution_result(timeout=10)
        except JobCancelledError:
            pass
    # sources ran ahead of the sinks by at most the channels' buffers (each of the 4
    # channels: CAPACITY frames at the sender + CAPACITY credits at the receiver) plus
    # partly filled output buffers and the batch in hand
    bound = 4 * 2 * CAPACITY * BATCH + 8 * BATCH
    assert max(lags) <= bound, lags
    assert bp[-1] > bp[0] > 0  # the producers spend their time back-pressured
    assert growth < 20_000_000, f"TaskManagers grew by {growth / 1e6:.1f} MB"
