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
        # committables pre-committed for checkpoints not yet complete: {checkpoint_id: [...]}
        self.pending: dict[int, list[Any]] = {}
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
        self.pending[checkpoint_id] = list(self.writer.prepare_commit())

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """Writer state plus the committables of this checkpoint."""
        return {
            "writer": self.writer.snapshot_state(checkpoint_id),
            "committables": list(self.pending.get(checkpoint_id, [])),
        }

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Commit the committables of every checkpoint up to ``checkpoint_id``."""
        due = sorted(cid for cid in self.pending if cid <= checkpoint_id)
        items: list[Any] = []
        for cid in due:
            items.extend(self.pending.pop(cid))
        self._commit(items)

    def end_input(self) -> None:
        """Flush, pre-commit and commit everything (end of bounded input)."""
        self.writer.flush(True)
        items: list[Any] = []
        for cid in sorted(self.pending):
            items.extend(self.pending.pop(cid))
        items.extend(self.writer.prepare_commit())
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
