"""Errors of the distributed runtime (candidates for ``strom.errors`` once stable).

``TaskManagerLostError`` is what a job fails with when a TaskManager process dies (or
its connection drops); ``RemoteExceptionError`` stands in for an exception raised in a
TaskManager that cannot be unpickled in the client.
"""

from __future__ import annotations

from strom.errors import ErrorDomain, StreamingError

__all__ = ["RemoteExceptionError", "TaskManagerLostError"]


class TaskManagerLostError(StreamingError):
    """A TaskManager process died or became unreachable while running the job's subtasks.

    Args:
        message: names the TaskManager, its pid and how it ended.
        tm_id: the TaskManager's id.
        pid: its process id.
    """

    domain = ErrorDomain.EXTERNAL
    retryable = True

    def __init__(self, message: str, tm_id: str | None = None, pid: int | None = None) -> None:
        super().__init__(message)
        self.tm_id = tm_id
        self.pid = pid


class RemoteExceptionError(Exception):
    """An exception from a TaskManager whose type could not be rebuilt in the client.

    Args:
        message: ``"<qualified type>: <message>"`` of the original exception.
        type_name: the original exception's qualified type name.
    """

    def __init__(self, message: str, type_name: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
