"""FileSink: exactly-once part files under a base path (row formats and Parquet).

Example::

    from strom.connectors.file import Encoder, FileSink, OutputFileConfig, RollingPolicy

    sink = (
        FileSink.for_row_format("/data/out", Encoder.simple_string_encoder())
        .with_rolling_policy(RollingPolicy.default_rolling_policy(part_size=64 * 1024 * 1024))
        .with_output_file_config(OutputFileConfig(part_prefix="words", part_suffix=".txt"))
        .build()
    )
    # stream.sink_to(sink)

Two-phase commit: each writer writes hidden in-progress files
(``.{prefix}-{subtask}-{counter}{suffix}.inprogress.{uuid}``), closes them when the rolling
policy says so and, always, at every checkpoint (``prepare_commit``); the committer renames
them to ``{prefix}-{subtask}-{counter}{suffix}`` once the checkpoint completed. So files
become visible only with a completed checkpoint (or at the end of a bounded job), and a
restarted job never sees half-written or duplicated data under a final name.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from strom.connectors.file._committable import FileSinkCommittable, FileWriterState
from strom.connectors.file._compat import override
from strom.connectors.file._writer import FileCommitter, FileWriter
from strom.connectors.file.bucket_assigners import BasePathBucketAssigner, BucketAssigner
from strom.connectors.file.encoders import BulkWriterFactory, Encoder
from strom.connectors.file.rolling import (
    DefaultRollingPolicy,
    OnCheckpointRollingPolicy,
    RollingPolicy,
)
from strom.connectors.sink import Committer, Sink, SinkWriter, SinkWriterContext
from strom.errors import ConfigurationError

__all__ = [
    "FileSink",
    "FileSinkBuilder",
    "FileSinkCommittable",
    "FileWriterState",
    "OutputFileConfig",
]

_V = TypeVar("_V")
"""The type a builder argument is checked against."""


@dataclass(frozen=True)
class OutputFileConfig:
    """Part file naming (Flink's ``OutputFileConfig``): ``{prefix}-{subtask}-{counter}{suffix}``.

    Args:
        part_prefix: non-empty, without '/', not starting with '.' or '_' (such names are
            hidden from readers).
        part_suffix: e.g. ".txt" or ".parquet"; without '/'.

    Raises:
        ConfigurationError: an invalid prefix or suffix.
    """

    part_prefix: str = "part"
    part_suffix: str = ""

    def __post_init__(self) -> None:
        prefix, suffix = self.part_prefix, self.part_suffix
        if not isinstance(prefix, str) or not prefix or "/" in prefix:
            msg = f"part_prefix must be a non-empty name without '/', got {prefix!r}."
            raise ConfigurationError(msg)
        if prefix.startswith((".", "_")):
            msg = (
                f"part_prefix {prefix!r} starts with '.' or '_', which would hide finished "
                "files from readers; choose a visible prefix."
            )
            raise ConfigurationError(msg)
        if not isinstance(suffix, str) or "/" in suffix:
            msg = f"part_suffix must be a string without '/', got {suffix!r}."
            raise ConfigurationError(msg)


class FileSink(Sink[Any, FileSinkCommittable]):
    """Writes records to part files with exactly-once commits (Flink's ``FileSink``).

    Build it with :meth:`for_row_format` or :meth:`for_bulk_format`. See the module
    docstring for the part file life cycle. Files left by failed attempts stay hidden
    (names starting with '.'); once no checkpoint references them they may be deleted.

    Args:
        base_path: the output directory, a local path or fsspec URL.
        encoder: the row encoder (row format), or None.
        bulk_writer_factory: the bulk writer factory (bulk format), or None.
        rolling_policy: when to roll in-progress files.
        output_file_config: part file naming.
        bucket_assigner: which sub-directory each record goes to.

    Raises:
        ConfigurationError: invalid arguments (exactly one of ``encoder`` and
            ``bulk_writer_factory`` must be given).
    """

    def __init__(
        self,
        base_path: str,
        encoder: Encoder[Any] | None,
        bulk_writer_factory: BulkWriterFactory[Any] | None,
        rolling_policy: RollingPolicy,
        output_file_config: OutputFileConfig,
        bucket_assigner: BucketAssigner[Any],
    ) -> None:
        if (encoder is None) == (bulk_writer_factory is None):
            msg = "FileSink needs exactly one of an Encoder (row format) or a BulkWriterFactory."
            raise ConfigurationError(msg)
        self.base_path = _check_base_path(base_path)
        self.encoder = encoder
        self.bulk_writer_factory = bulk_writer_factory
        self.rolling_policy = _check_type(rolling_policy, RollingPolicy, "rolling policy")
        self.output_file_config = _check_type(
            output_file_config, OutputFileConfig, "output file config"
        )
        self.bucket_assigner = _check_type(bucket_assigner, BucketAssigner, "bucket assigner")

    @staticmethod
    def for_row_format(base_path: str | os.PathLike[str], encoder: Encoder[Any]) -> FileSinkBuilder:
        """Start building a sink that encodes each record with ``encoder``.

        Defaults: :class:`DefaultRollingPolicy`, ``OutputFileConfig()``, one bucket.

        Args:
            base_path: the output directory (local path or fsspec URL).
            encoder: e.g. ``Encoder.simple_string_encoder()``.

        Raises:
            ConfigurationError: invalid path or encoder.
        """
        _check_type(encoder, Encoder, "encoder")
        return FileSinkBuilder(_check_base_path(base_path), encoder, None, DefaultRollingPolicy())

    @staticmethod
    def for_bulk_format(
        base_path: str | os.PathLike[str], writer_factory: BulkWriterFactory[Any]
    ) -> FileSinkBuilder:
        """Start building a sink that writes bulk files (Parquet) with ``writer_factory``.

        Defaults: :class:`OnCheckpointRollingPolicy`, ``OutputFileConfig()``, one bucket.

        Args:
            base_path: the output directory (local path or fsspec URL).
            writer_factory: e.g. ``ParquetBulkWriters.for_dicts(schema)``.

        Raises:
            ConfigurationError: invalid path or factory.
        """
        _check_type(writer_factory, BulkWriterFactory, "bulk writer factory")
        return FileSinkBuilder(
            _check_base_path(base_path), None, writer_factory, OnCheckpointRollingPolicy()
        )

    @override
    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, FileSinkCommittable]:
        """Create the :class:`~strom.connectors.file._writer.FileWriter` of a subtask."""
        return FileWriter(self, context)

    @override
    def restore_writer(
        self, context: SinkWriterContext, recovered_state: list[Any]
    ) -> SinkWriter[Any, FileSinkCommittable]:
        """Create a writer continuing the part counters of the recovered states.

        Raises:
            ConfigurationError: a state object is not a :class:`FileWriterState`.
        """
        counters: dict[str, int] = {}
        for state in recovered_state:
            if not isinstance(state, FileWriterState):
                msg = f"Cannot restore a FileSink writer from {type(state).__name__}."
                raise ConfigurationError(msg)
            for bucket, counter in state.bucket_counters.items():
                counters[bucket] = max(counters.get(bucket, 0), counter)
        return FileWriter(self, context, counters)

    @override
    def create_committer(self) -> Committer[FileSinkCommittable]:
        """Create the :class:`~strom.connectors.file._writer.FileCommitter`."""
        return FileCommitter()

    def __repr__(self) -> str:
        how = self.encoder if self.encoder is not None else self.bulk_writer_factory
        return f"FileSink({self.base_path!r}, {how!r}, {self.rolling_policy!r})"


@dataclass(frozen=True)
class FileSinkBuilder:
    """Configures a :class:`FileSink` (Flink's ``RowFormatBuilder`` / ``BulkFormatBuilder``).

    Immutable: every method returns a new builder. Get one from
    :meth:`FileSink.for_row_format` or :meth:`FileSink.for_bulk_format`.
    """

    base_path: str
    encoder: Encoder[Any] | None
    bulk_writer_factory: BulkWriterFactory[Any] | None
    rolling_policy: RollingPolicy
    output_file_config: OutputFileConfig = OutputFileConfig()
    bucket_assigner: BucketAssigner[Any] = dataclasses.field(default_factory=BasePathBucketAssigner)

    def with_rolling_policy(self, policy: RollingPolicy) -> FileSinkBuilder:
        """Set when in-progress files roll (every checkpoint rolls them regardless).

        Raises:
            ConfigurationError: ``policy`` is not a RollingPolicy.
        """
        return dataclasses.replace(
            self, rolling_policy=_check_type(policy, RollingPolicy, "rolling policy")
        )

    def with_output_file_config(self, config: OutputFileConfig) -> FileSinkBuilder:
        """Set the part file prefix and suffix.

        Raises:
            ConfigurationError: ``config`` is not an OutputFileConfig.
        """
        return dataclasses.replace(
            self,
            output_file_config=_check_type(config, OutputFileConfig, "output file config"),
        )

    def with_bucket_assigner(self, assigner: BucketAssigner[Any]) -> FileSinkBuilder:
        """Set how records map to sub-directories (default: all in the base path).

        Raises:
            ConfigurationError: ``assigner`` is not a BucketAssigner.
        """
        return dataclasses.replace(
            self, bucket_assigner=_check_type(assigner, BucketAssigner, "bucket assigner")
        )

    def build(self) -> FileSink:
        """Create the :class:`FileSink`."""
        return FileSink(
            self.base_path,
            self.encoder,
            self.bulk_writer_factory,
            self.rolling_policy,
            self.output_file_config,
            self.bucket_assigner,
        )


def _check_base_path(base_path: Any) -> str:
    text = os.fspath(base_path) if isinstance(base_path, str | os.PathLike) else None
    if not isinstance(text, str) or not text:
        msg = f"FileSink base_path must be a non-empty path or URL, got {base_path!r}."
        raise ConfigurationError(msg)
    return text


def _check_type(value: _V, expected: type, what: str) -> _V:
    if not isinstance(value, expected):
        msg = f"FileSink {what} must be a {expected.__name__}, got {value!r}."
        raise ConfigurationError(msg)
    return value
