"""SinkWriterOperator: runs a ``SinkWriter`` and, for two-phase sinks, its ``Committer``.

Before each checkpoint barrier the writer flushes and pre-commits; the committables are
part of the checkpoint and are committed when the checkpoint completes. At the end of a
bounded input everything left is flushed, pre-committed and committed. (Flink runs the
committer as its own operator; here it is fused into the writer's operator at the same
parallelism, which keeps the same guarantees.)
"""

from __future__ import annotations

from typing import Any

from strom._runtime.operators.base import StreamOperator
from strom.connectors.sink import CommitRequest, Committer, Sink, SinkWriter, SinkWriterContext
from strom.errors import ConnectorError, TaskError

__all__ = ["SinkWriterOperator"]


class SinkWriterOperator(StreamOperator):
    """Writes records through a ``SinkWriter`` (Flink's ``SinkWriterOperator``)."""

    writer: SinkWriter[Any, Any]
    committer: Committer[Any] | None

    def open(self) -> None:
        """Create the writer (restored if state was given) and the committer."""
        assert self.spec is not None
        sink: Sink[Any, Any] = self.spec.params["sink"]
        c = self.context
        wctx = SinkWriterContext(
            subtask_index=c.subtask_index,
            parallelism=c.parallelism,
            attempt_number=c.attempt_number,
            job_id=c.job_id,
            operator_uid=c.uid,
        )
        mine = (
            self.restored.mine(c.subtask_index, c.parallelism) if self.restored is not None else []
        )
        try:
            if self.restored is not None:
                writer_state = [w for st in mine for w in st.get("writer", [])]
                self.writer = sink.restore_writer(wctx, writer_state)
            else:
                self.writer = sink.create_writer(wctx)
            self.committer = sink.create_committer()
        except TaskError:
            raise
        except Exception as e:
            raise self._error(e, "create the sink writer") from e
        # committables not yet committed, tagged with the checkpoint that holds them
        # (None: written at end of input, to be held by the next/final checkpoint)
        self.pending: list[tuple[int | None, Any]] = []
        self.checkpointing = int(c.config.get("execution.checkpointing.interval", -1)) > 0
        restored_committables = [c for st in mine for c in st.get("committables", [])]
        if restored_committables:
            # the restored checkpoint completed, so its committables must become visible;
            # the committer is idempotent, so committing again after a crash is safe
            self._commit(restored_committables)

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Write a batch."""
        self.writer.write_batch(values, timestamps)

    def prepare_snapshot_pre_barrier(self, checkpoint_id: int) -> None:
        """Flush and pre-commit everything written before the barrier."""
        self.writer.flush(False)
        self.pending.extend((checkpoint_id, c) for c in self.writer.prepare_commit())

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """Writer state plus every committable not committed yet (those of this
        checkpoint, of end of input, and of earlier checkpoints that were aborted)."""
        self.pending = [(checkpoint_id if t is None else t, c) for t, c in self.pending]
        return {
            "writer": self.writer.snapshot_state(checkpoint_id),
            "committables": [c for t, c in self.pending if t <= checkpoint_id],  # type: ignore[operator]
        }

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Commit the committables held by checkpoints up to ``checkpoint_id``."""
        due = [c for t, c in self.pending if t is not None and t <= checkpoint_id]
        self.pending = [(t, c) for t, c in self.pending if t is None or t > checkpoint_id]
        self._commit(due)

    def end_input(self) -> None:
        """Flush and pre-commit the rest. Without checkpointing commit at once; with it,
        the final checkpoint holds the committables and its completion commits them."""
        self.writer.flush(True)
        self.pending.extend((None, c) for c in self.writer.prepare_commit())
        if not self.checkpointing:
            items = [c for _t, c in self.pending]
            self.pending = []
            self._commit(items)

    def _commit(self, items: list[Any]) -> None:
        if items and self.committer is not None:
            try:
                self.committer.commit([CommitRequest(c) for c in items])
            except TaskError:
                raise
            except Exception as e:
                raise self._error(e, "commit") from e

    def close(self) -> None:
        """Close writer and committer."""
        w = getattr(self, "writer", None)
        if w is not None:
            w.close()
        if getattr(self, "committer", None) is not None:
            assert self.committer is not None
            self.committer.close()

    def _error(self, exc: Exception, what: str) -> ConnectorError:
        c = self.context
        msg = f"sink failed to {what}: {type(exc).__name__}: {exc}"
        return ConnectorError(
            msg,
            job_id=c.job_id,
            operator_uid=c.uid,
            operator_name=c.name,
            subtask_index=c.subtask_index,
        )
