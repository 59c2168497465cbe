"""Strom's public exception tree.

Every exception Strom raises derives from :class:`StreamingError`. Each carries a
``domain`` (who must act: the user, an external system, or Strom itself) and a
``retryable`` flag (whether a restart may succeed), in the spirit of Arroyo's error
classification and Flink's ``JobExecutionException``::

    StreamingError
    ├── InvalidProgramError            build time: the pipeline is malformed (USER)
    │   ├── DuplicateUidError          two operators share one ``uid``
    │   └── InvalidKeySelectorError    ``key_by`` got something that cannot select a key
    │   └── StateMigrationError        restored state does not fit the new declaration
    ├── ConfigurationError             a setting has an invalid value (USER)
    ├── TaskError                      runtime: carries job id, operator uid/name, subtask index
    │   ├── UserFunctionError          a user function raised; original chained as __cause__
    │   ├── UnhashableKeyError         a key selector returned a value that cannot be a key
    │   └── ConnectorError             a source/sink failed talking to an external system
    │       └── DeserializationError   a record could not be decoded
    └── JobExecutionError              raised by ``execute()``: the job failed; cause chained
        └── JobCancelledError          the job was cancelled before it finished
"""

from __future__ import annotations

import enum

__all__ = [
    "ConfigurationError",
    "ConnectorError",
    "DeserializationError",
    "DuplicateUidError",
    "ErrorDomain",
    "InvalidKeySelectorError",
    "InvalidProgramError",
    "JobCancelledError",
    "JobExecutionError",
    "StateMigrationError",
    "StreamingError",
    "TaskError",
    "UnhashableKeyError",
    "UserFunctionError",
]


class ErrorDomain(enum.Enum):
    """Who must act on an error (mirrors Arroyo's ``ErrorDomain``)."""

    USER = "user"
    """The program, its input or its configuration is wrong: the user must fix it."""
    EXTERNAL = "external"
    """An external system (broker, filesystem) failed: it may recover on its own."""
    INTERNAL = "internal"
    """A bug in Strom: please report it."""


class StreamingError(Exception):
    """Root of every Strom exception.

    Attributes:
        domain: who must act (:class:`ErrorDomain`).
        retryable: True if a restart of the job might succeed.
    """

    domain: ErrorDomain = ErrorDomain.INTERNAL
    retryable: bool = False


class InvalidProgramError(StreamingError):
    """The pipeline is malformed; raised while building or translating it (before it runs).

    Mirrors Flink's ``InvalidProgramException``.
    """

    domain = ErrorDomain.USER


class DuplicateUidError(InvalidProgramError):
    """Two operators were given the same ``uid``; uids must be unique within a job."""


class InvalidKeySelectorError(InvalidProgramError):
    """``key_by`` was given an argument that cannot select a key from a record."""


class StateMigrationError(InvalidProgramError):
    """Restored state cannot be read with the state's new declaration (kind, serializer or
    TTL changed incompatibly); raised before the job processes records."""


class ConfigurationError(StreamingError):
    """A configuration value is invalid (wrong type, out of range, unknown option)."""

    domain = ErrorDomain.USER


class TaskError(StreamingError):
    """A failure inside a running task, with the context needed to find it.

    Args:
        message: what went wrong and how to fix it.
        job_id: hex id of the job, or None if unknown.
        operator_uid: the ``uid`` of the failing operator.
        operator_name: its display name.
        subtask_index: 0-based index of the failing parallel subtask.
        checkpoint_id: the checkpoint in progress, if relevant.
    """

    domain = ErrorDomain.USER

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        operator_uid: str | None = None,
        operator_name: str | None = None,
        subtask_index: int | None = None,
        checkpoint_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.operator_uid = operator_uid
        self.operator_name = operator_name
        self.subtask_index = subtask_index
        self.checkpoint_id = checkpoint_id

    def __str__(self) -> str:
        where = []
        if self.operator_name is not None:
            where.append(f"operator '{self.operator_name}'")
        if self.operator_uid is not None:
            where.append(f"uid '{self.operator_uid}'")
        if self.subtask_index is not None:
            where.append(f"subtask {self.subtask_index}")
        if self.checkpoint_id is not None:
            where.append(f"checkpoint {self.checkpoint_id}")
        if self.job_id is not None:
            where.append(f"job {self.job_id}")
        return f"{self.message} [{', '.join(where)}]" if where else self.message


class UserFunctionError(TaskError):
    """A user function raised an exception; the original is chained as ``__cause__``."""


class UnhashableKeyError(TaskError):
    """A key selector returned a value that cannot be used as a key (e.g. a list or dict)."""


class ConnectorError(TaskError):
    """A source or sink failed (I/O error, bad path, broker unreachable)."""

    domain = ErrorDomain.EXTERNAL
    retryable = True


class DeserializationError(ConnectorError):
    """A record could not be decoded by the source's format."""

    domain = ErrorDomain.USER
    retryable = False


class JobExecutionError(StreamingError):
    """Raised by ``execute()`` when the job fails; the task failure is chained as ``__cause__``.

    Mirrors Flink's ``JobExecutionException``.

    Args:
        message: summary of the failure (includes the failing operator and subtask).
        job_id: hex id of the failed job.
    """

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobCancelledError(JobExecutionError):
    """The job was cancelled (``JobClient.cancel()`` or Ctrl-C) before it finished."""
