"""File connectors: :class:`FileSource` and :class:`FileSink` (Flink's ``flink-connector-files``).

Reading::

    source = FileSource.for_record_stream_format(StreamFormat.csv_format(), "in/*.csv").build()
    parquet = FileSource.for_bulk_file_format(BulkFormat.parquet(), "in/data").build()

Writing, with exactly-once part files::

    sink = FileSink.for_row_format("out", Encoder.json_lines_encoder()).build()
    parquet_sink = FileSink.for_bulk_format("out", ParquetBulkWriters.for_dicts()).build()

Key classes:

* :class:`FileSource`, :class:`FileSourceBuilder`, :class:`FileSourceSplit`: the source.
* :class:`StreamFormat` (text lines, :class:`CsvFormat`, JSON lines) and :class:`BulkFormat`
  (:class:`ParquetFormat`): how a file becomes records.
* :class:`FileSink`, :class:`FileSinkBuilder`, :class:`OutputFileConfig`: the sink.
* :class:`Encoder` (row formats) and :class:`ParquetWriterFactory` /
  :class:`ParquetBulkWriters` (bulk formats): how records become bytes.
* :class:`RollingPolicy` (:class:`DefaultRollingPolicy`, :class:`OnCheckpointRollingPolicy`)
  and :class:`BucketAssigner` (:class:`DateTimeBucketAssigner`): file layout.
"""

from strom.connectors.file._split import FileSourceSplit, PendingSplitsCheckpoint
from strom.connectors.file.bucket_assigners import (
    BasePathBucketAssigner,
    BucketAssigner,
    BucketAssignerContext,
    DateTimeBucketAssigner,
)
from strom.connectors.file.encoders import (
    BulkWriter,
    BulkWriterFactory,
    CsvEncoder,
    Encoder,
    JsonLinesEncoder,
    ParquetBulkWriters,
    ParquetWriterFactory,
    SimpleStringEncoder,
)
from strom.connectors.file.formats import (
    BulkFormat,
    CsvFormat,
    FormatReader,
    JsonLinesFormat,
    OnError,
    ParquetFormat,
    StreamFormat,
    TextLineFormat,
)
from strom.connectors.file.rolling import (
    DefaultRollingPolicy,
    OnCheckpointRollingPolicy,
    PartFileInfo,
    RollingPolicy,
)
from strom.connectors.file.sink import (
    FileSink,
    FileSinkBuilder,
    FileSinkCommittable,
    FileWriterState,
    OutputFileConfig,
)
from strom.connectors.file.source import FileSource, FileSourceBuilder

__all__ = [
    "BasePathBucketAssigner",
    "BucketAssigner",
    "BucketAssignerContext",
    "BulkFormat",
    "BulkWriter",
    "BulkWriterFactory",
    "CsvEncoder",
    "CsvFormat",
    "DateTimeBucketAssigner",
    "DefaultRollingPolicy",
    "Encoder",
    "FileSink",
    "FileSinkBuilder",
    "FileSinkCommittable",
    "FileSource",
    "FileSourceBuilder",
    "FileSourceSplit",
    "FileWriterState",
    "FormatReader",
    "JsonLinesEncoder",
    "JsonLinesFormat",
    "OnCheckpointRollingPolicy",
    "OnError",
    "OutputFileConfig",
    "ParquetBulkWriters",
    "ParquetFormat",
    "ParquetWriterFactory",
    "PartFileInfo",
    "PendingSplitsCheckpoint",
    "RollingPolicy",
    "SimpleStringEncoder",
    "StreamFormat",
    "TextLineFormat",
]
