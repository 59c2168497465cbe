"""PrintSink: writes records to stdout/stderr (Flink's ``PrintSink``)."""

from __future__ import annotations

import sys
from typing import Any

from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext

__all__ = ["PrintSink"]


class _PrintWriter(SinkWriter[Any, None]):
    def __init__(self, prefix: str, stderr: bool) -> None:
        self.prefix = prefix
        self.stderr = stderr

    def write(self, value: Any, timestamp_ms: int | None) -> None:
        stream = sys.stderr if self.stderr else sys.stdout
        stream.write(f"{self.prefix}{value}\n")

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        stream = sys.stderr if self.stderr else sys.stdout
        p = self.prefix
        stream.write("".join(f"{p}{v}\n" for v in values))

    def flush(self, end_of_input: bool) -> None:
        (sys.stderr if self.stderr else sys.stdout).flush()


class PrintSink(Sink[Any, None]):
    """Prints ``str(record)``, one per line.

    With a parallelism above 1 each line starts with the 1-based subtask index, and with
    an identifier with ``"identifier:"``, as in Flink (``"wc:2> ('a', 3)"``).

    Args:
        sink_identifier: optional prefix.
        is_stderr: print to stderr instead of stdout.
    """

    def __init__(self, sink_identifier: str | None = None, is_stderr: bool = False) -> None:
        self.sink_identifier = sink_identifier
        self.is_stderr = is_stderr

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
        """A writer with the subtask prefix."""
        prefix = ""
        if context.parallelism > 1:
            prefix = f"{context.subtask_index + 1}> "
        if self.sink_identifier:
            prefix = f"{self.sink_identifier}:{prefix}" if prefix else f"{self.sink_identifier}> "
        return _PrintWriter(prefix, self.is_stderr)
