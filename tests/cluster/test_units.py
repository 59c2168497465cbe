"""Unit tests of the cluster pieces that need no processes: job status state machine,
execution graph scheduling, the in-process transport, exception shipping and the frame
codec."""

from __future__ import annotations

import traceback

import pytest

from strom._cluster.failures import rebuild_exception, ship_exception
from strom._cluster.jobmanager.execution_graph import ExecutionGraph
from strom._cluster.jobmanager.job_status import (
    IllegalJobStatusTransitionError,
    JobStatusMachine,
)
from strom._cluster.rpc.messages import SplitRequest
from strom._cluster.rpc.transport import InProcessConnection
from strom._runtime.elements import END_OF_INPUT, RecordBatch, WatermarkStatus
from strom._runtime.io.network import decode_element, encode_element
from strom.datastream import JobStatus, StreamExecutionEnvironment, Watermark
from strom.errors import UserFunctionError
from strom.testing import TestingSink


def test_job_status_machine_allows_flink_transitions_only() -> None:
    m = JobStatusMachine("j")
    m.transition(JobStatus.RUNNING)
    m.transition(JobStatus.FAILING)
    m.transition(JobStatus.RESTARTING)  # the checkpoint issue's path
    m.transition(JobStatus.RUNNING)
    m.transition(JobStatus.FINISHED)
    assert [s for s, _ in m.history][-1] is JobStatus.FINISHED
    with pytest.raises(IllegalJobStatusTransitionError, match="FINISHED -> RUNNING"):
        m.transition(JobStatus.RUNNING)


def test_slot_sharing_puts_subtask_i_of_every_vertex_in_slot_i() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(4)
    env.from_sequence(1, 10).key_by(lambda x: x % 3).sum(0).sink_to(TestingSink())
    jg = env.get_job_graph()
    eg = ExecutionGraph(jg, ["tm-0", "tm-1"])
    assert eg.slot_tm == ["tm-0", "tm-0", "tm-1", "tm-1"]
    for (_vid, i), ev in eg.vertices.items():
        assert ev.tm_id == eg.slot_tm[i]
    # 4 x 4 keyed channels: half of them stay inside a TaskManager
    assert len(eg.channels) == 16 and eg.remote_channel_count() == 8
    assert len({c.channel_id for c in eg.channels}) == 16


def test_in_process_transport_delivers_pickled_messages_in_order() -> None:
    import threading

    a, b = InProcessConnection.pair()
    got: list[object] = []
    done = threading.Event()
    b.start(lambda m: got.append(m), lambda err: done.set())
    for i in range(5):
        a.send(SplitRequest("job", "v", i))
    a.close()
    assert done.wait(5)
    assert got == [SplitRequest("job", "v", i) for i in range(5)]


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


def boom() -> None:
    raise ValueError("deep")


def test_shipped_exception_keeps_cause_chain_and_remote_traceback() -> None:
    try:
        try:
            boom()
        except ValueError as e:
            raise UserFunctionError("map failed", operator_uid="m", subtask_index=1) from e
    except UserFunctionError as err:
        shipped = ship_exception(err)
    rebuilt = rebuild_exception(shipped, "TaskManager tm-9 (pid 1)")
    assert isinstance(rebuilt, UserFunctionError)
    assert rebuilt.operator_uid == "m" and rebuilt.subtask_index == 1
    assert isinstance(rebuilt.__cause__, ValueError)
    text = "".join(traceback.format_exception(rebuilt.__cause__))
    assert "in boom" in text and "tm-9" in text


@pytest.mark.parametrize(
    "element",
    [
        RecordBatch([(1, "a"), (2, "b")], [5, 6]),
        RecordBatch([{"x": [1.5, None]}], None),
        # marshal version 4 (shared references): repeated keys and strs, bools stay bools
        RecordBatch([{"k": i % 3, "src": f"s{i % 2}", "ok": i % 2 == 0} for i in range(50)], None),
        RecordBatch([(f"user-{i % 4}", i, 1.0) for i in range(50)], list(range(50))),
        RecordBatch([(i % 7, 2**70 + i) for i in range(50)], None),  # int tuples: version 2
        RecordBatch([Point(1, 2)], None),  # not marshal-able: pickled
        Watermark(42),
        WatermarkStatus.IDLE,  # type: ignore[attr-defined]
        END_OF_INPUT,
    ],
)
def test_frame_codec_round_trips(element: object) -> None:
    out = decode_element(encode_element(element))
    if isinstance(element, RecordBatch):
        assert isinstance(out, RecordBatch)
        assert out.timestamps == element.timestamps
        if isinstance(element.values[0], Point):
            assert [(p.x, p.y) for p in out.values] == [(1, 2)]
        else:
            assert out.values == element.values
        assert [type(v) for v in out.values] == [type(v) for v in element.values]
        if isinstance(element.values[0], dict):
            assert [type(x) for x in out.values[0].values()] == [
                type(x) for x in element.values[0].values()
            ]
    else:
        assert out == element
    assert decode_element(encode_element(END_OF_INPUT)) is END_OF_INPUT
