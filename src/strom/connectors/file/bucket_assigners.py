"""Bucket assigners of the file sink: which sub-directory of the base path a record goes to."""

from __future__ import annotations

import abc
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from strom.connectors.file._compat import override
from strom.errors import ConfigurationError

__all__ = [
    "BasePathBucketAssigner",
    "BucketAssigner",
    "BucketAssignerContext",
    "DateTimeBucketAssigner",
]

T = TypeVar("T")
"""The type of records the sink writes."""


@dataclass(frozen=True)
class BucketAssignerContext:
    """What an assigner may use besides the record (Flink's ``BucketAssigner.Context``).

    Valid only during the call.

    Attributes:
        current_processing_time_ms: the writer's wall clock (int epoch ms).
        timestamp_ms: the record's event timestamp (int epoch ms) or None.
    """

    current_processing_time_ms: int
    timestamp_ms: int | None


class BucketAssigner(abc.ABC, Generic[T]):
    """Assigns records to buckets (Flink's ``BucketAssigner``).

    A bucket id is a relative path under the sink's base path ("" = the base path itself,
    "2024-01-01/eu" = a nested directory). Each bucket has its own part files and counters.
    Assigners are declarative and picklable.
    """

    @abc.abstractmethod
    def get_bucket_id(self, value: T, context: BucketAssignerContext) -> str:
        """Return the bucket id of one record."""

    def assign_batch(
        self, values: Sequence[T], timestamps_ms: Sequence[int] | None, current_time_ms: int
    ) -> dict[str, list[T]]:
        """Group a batch by bucket id, keeping record order within each bucket.

        The default calls :meth:`get_bucket_id` per record; assigners whose answer does not
        depend on the record override this for speed.

        Args:
            values: the batch.
            timestamps_ms: parallel event timestamps (int epoch ms) or None.
            current_time_ms: processing time (int epoch ms).
        """
        groups: dict[str, list[T]] = {}
        for i, value in enumerate(values):
            ts = timestamps_ms[i] if timestamps_ms is not None else None
            bucket = self.get_bucket_id(value, BucketAssignerContext(current_time_ms, ts))
            groups.setdefault(bucket, []).append(value)
        return groups


class BasePathBucketAssigner(BucketAssigner[Any]):
    """Writes every record to the base path itself (Flink's ``BasePathBucketAssigner``)."""

    @override
    def get_bucket_id(self, value: Any, context: BucketAssignerContext) -> str:
        """Always "" (the base path)."""
        return ""

    @override
    def assign_batch(
        self, values: Sequence[Any], timestamps_ms: Sequence[int] | None, current_time_ms: int
    ) -> dict[str, list[Any]]:
        """Put the whole batch into the base path bucket."""
        return {"": values if isinstance(values, list) else list(values)}

    def __repr__(self) -> str:
        return "BasePathBucketAssigner()"


class DateTimeBucketAssigner(BucketAssigner[Any]):
    """Buckets by the processing time of writing (Flink's ``DateTimeBucketAssigner``).

    Args:
        format_string: a :func:`time.strftime` pattern; the default gives hourly buckets
            such as ``2024-05-01--13`` (Flink's ``yyyy-MM-dd--HH``). '/' makes nested
            directories.
        tz: the time zone of the bucket names (UTC by default; never naive).

    Raises:
        ConfigurationError: ``tz`` is not a ``datetime.tzinfo``.
    """

    def __init__(
        self, format_string: str = "%Y-%m-%d--%H", tz: datetime.tzinfo = datetime.UTC
    ) -> None:
        if not isinstance(tz, datetime.tzinfo):
            msg = f"DateTimeBucketAssigner tz must be a datetime.tzinfo, got {tz!r}."
            raise ConfigurationError(msg)
        self.format_string = format_string
        self.tz = tz

    def _bucket(self, time_ms: int) -> str:
        moment = datetime.datetime.fromtimestamp(time_ms / 1000, tz=self.tz)
        return moment.strftime(self.format_string)

    @override
    def get_bucket_id(self, value: Any, context: BucketAssignerContext) -> str:
        """The bucket of the current processing time."""
        return self._bucket(context.current_processing_time_ms)

    @override
    def assign_batch(
        self, values: Sequence[Any], timestamps_ms: Sequence[int] | None, current_time_ms: int
    ) -> dict[str, list[Any]]:
        """Put the whole batch into the bucket of ``current_time_ms``."""
        batch = values if isinstance(values, list) else list(values)
        return {self._bucket(current_time_ms): batch}

    def __repr__(self) -> str:
        return f"DateTimeBucketAssigner({self.format_string!r}, tz={self.tz!r})"
