"""How the file sink turns records into bytes: row encoders and bulk writers.

* An :class:`Encoder` (row format, Flink's ``Encoder``) encodes a batch of records into
  bytes appended to the part file; part files can be rolled after any batch.
* A :class:`BulkWriterFactory` (bulk format, Flink's ``BulkWriter.Factory``) creates a
  :class:`BulkWriter` per part file that owns the file's layout (Parquet row groups and
  footer); such files are finished only when rolled.
"""

from __future__ import annotations

import abc
import csv
import io
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from strom.connectors.file._compat import override
from strom.errors import ConfigurationError, ConnectorError, ErrorDomain

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = [
    "BulkWriter",
    "BulkWriterFactory",
    "CsvEncoder",
    "Encoder",
    "JsonLinesEncoder",
    "ParquetBulkWriters",
    "ParquetWriterFactory",
    "SimpleStringEncoder",
]

T = TypeVar("T")
"""The type of records the sink writes."""

DEFAULT_ROW_GROUP_SIZE = 128 * 1024
"""Rows buffered per Parquet row group: large enough for good compression, bounded memory."""


def record_error(msg: str) -> ConnectorError:
    """A ConnectorError for records the sink cannot encode: the user must fix the data."""
    error = ConnectorError(msg)
    error.domain = ErrorDomain.USER
    error.retryable = False
    return error


class Encoder(abc.ABC, Generic[T]):
    """Encodes records for row-format part files (Flink's ``Encoder``).

    Encoders are declarative and picklable; one instance may serve several writers.
    """

    @abc.abstractmethod
    def encode_batch(self, values: Sequence[T]) -> bytes:
        """Encode a batch of records into the bytes appended to the part file.

        Raises:
            Exception: a record cannot be encoded (the sink reports it with context).
        """

    def encode(self, value: T) -> bytes:
        """Encode one record (defaults to a batch of one)."""
        return self.encode_batch([value])

    def header(self) -> bytes:
        """Bytes written at the start of every part file (e.g. a CSV header); default none."""
        return b""

    @staticmethod
    def simple_string_encoder(charset: str = "utf-8") -> SimpleStringEncoder:
        r"""``str(value) + "\n"`` per record (Flink's ``SimpleStringEncoder``)."""
        return SimpleStringEncoder(charset)

    @staticmethod
    def json_lines_encoder() -> JsonLinesEncoder:
        """One JSON document per line, encoded with msgspec."""
        return JsonLinesEncoder()

    @staticmethod
    def csv_encoder(
        columns: Sequence[str] | None = None, delimiter: str = ",", write_header: bool = False
    ) -> CsvEncoder:
        """CSV rows; see :class:`CsvEncoder`."""
        return CsvEncoder(columns, delimiter, write_header)


class SimpleStringEncoder(Encoder[Any]):
    r"""Writes ``str(value)`` followed by ``"\n"`` (Flink's ``SimpleStringEncoder``).

    Args:
        charset: a Python codec name.

    Raises:
        ConfigurationError: unknown charset.
    """

    def __init__(self, charset: str = "utf-8") -> None:
        try:
            "".encode(charset)
        except LookupError as exc:
            msg = f"Unknown charset {charset!r}; use a Python codec name such as 'utf-8'."
            raise ConfigurationError(msg) from exc
        self.charset = charset

    @override
    def encode_batch(self, values: Sequence[Any]) -> bytes:
        """Encode ``str(value)`` of each record, newline-terminated."""
        text = "\n".join(map(str, values))
        return (text + "\n").encode(self.charset) if values else b""

    def __repr__(self) -> str:
        return f"SimpleStringEncoder({self.charset!r})"


class JsonLinesEncoder(Encoder[Any]):
    """One JSON document per line (JSON Lines), encoded with ``msgspec.json``.

    Records may be anything msgspec encodes: dicts, lists, scalars, ``msgspec.Struct``,
    dataclasses.
    """

    def __init__(self) -> None:
        self._encoder: msgspec.json.Encoder | None = None

    @override
    def encode_batch(self, values: Sequence[Any]) -> bytes:
        """Encode each record as one JSON line."""
        if self._encoder is None:
            self._encoder = msgspec.json.Encoder()
        return self._encoder.encode_lines(values)

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._encoder = None

    def __repr__(self) -> str:
        return "JsonLinesEncoder()"


class CsvEncoder(Encoder[Any]):
    """CSV rows, written with the standard :mod:`csv` module.

    Records are dicts or sequences. With ``columns``, dicts are written in that column order
    (a missing key gives an empty field; an unknown key is an error, never dropped).
    Without ``columns``, a dict is written in its own key order and a sequence as is.

    Args:
        columns: column names and order, or None.
        delimiter: the field separator (one character).
        write_header: write ``columns`` as the first row of every part file (so each part
            reads back with ``CsvFormat(has_header=True)``); needs ``columns``.

    Raises:
        ConfigurationError: bad delimiter, or ``write_header`` without ``columns``.
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        delimiter: str = ",",
        write_header: bool = False,
    ) -> None:
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            msg = f"csv_encoder delimiter must be a single character, got {delimiter!r}."
            raise ConfigurationError(msg)
        if write_header and not columns:
            msg = "csv_encoder(write_header=True) needs columns=[...] to write."
            raise ConfigurationError(msg)
        if isinstance(columns, str):
            msg = f"csv_encoder columns must be a list of names, got {columns!r}."
            raise ConfigurationError(msg)
        self.columns = tuple(columns) if columns is not None else None
        self.delimiter = delimiter
        self.write_header = write_header

    def _rows(self, values: Sequence[Any]) -> list[Sequence[Any]]:
        columns = self.columns
        rows: list[Sequence[Any]] = []
        for value in values:
            if isinstance(value, dict):
                if columns is None:
                    rows.append(list(value.values()))
                    continue
                extra = value.keys() - set(columns)
                if extra:
                    msg = (
                        f"CSV record has keys {sorted(extra)} that are not in the encoder's "
                        f"columns {list(columns)}; add them to csv_encoder(columns=...)."
                    )
                    raise ValueError(msg)
                rows.append([value.get(c) for c in columns])
            else:
                rows.append(value)
        return rows

    @override
    def encode_batch(self, values: Sequence[Any]) -> bytes:
        """Encode the records as CSV rows.

        Raises:
            ValueError: a dict record has keys outside ``columns``.
        """
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.delimiter, lineterminator="\n").writerows(
            self._rows(values)
        )
        return buffer.getvalue().encode("utf-8")

    @override
    def header(self) -> bytes:
        """The header row if ``write_header`` is set, else nothing."""
        if not self.write_header or self.columns is None:
            return b""
        return self.encode_batch([list(self.columns)])

    def __repr__(self) -> str:
        return f"CsvEncoder(columns={self.columns}, delimiter={self.delimiter!r})"


class BulkWriter(abc.ABC, Generic[T]):
    """Writes one bulk-format part file (Flink's ``BulkWriter``).

    Call order: ``add_batch``* -> ``finish`` (then the sink closes the stream). ``flush``
    may be called in between.
    """

    @abc.abstractmethod
    def add_batch(self, values: Sequence[T]) -> None:
        """Add records (may buffer them).

        Raises:
            ConnectorError: the records do not fit the file's schema.
        """

    def flush(self) -> None:
        """Push buffered data to the stream, if the format allows it cheaply."""

    @abc.abstractmethod
    def finish(self) -> None:
        """Write everything buffered and the file's trailer; the file is then complete."""


class BulkWriterFactory(abc.ABC, Generic[T]):
    """Creates a :class:`BulkWriter` per part file (Flink's ``BulkWriter.Factory``)."""

    @abc.abstractmethod
    def create(self, stream: IO[bytes], path: str) -> BulkWriter[T]:
        """Create a writer for the part file ``path`` open as ``stream``."""


class ParquetWriterFactory(BulkWriterFactory[dict[str, Any]]):
    """Writes dicts to Parquet files with pyarrow (Flink's ``ParquetWriterFactory``).

    Rows are buffered into row groups of ``row_group_size`` rows; a part file is complete
    (footer written) when it is rolled, which bulk formats do at every checkpoint.

    Args:
        schema: the ``pyarrow.Schema`` of the rows. If None, each part file takes the
            schema pyarrow infers from its first batch: pass a schema when early batches
            may have all-null columns or varying keys. Keys not in the schema are ignored.
        compression: Parquet codec ("snappy", "zstd", "gzip", "none", ...).
        row_group_size: rows per row group (> 0).

    Raises:
        ConfigurationError: invalid ``row_group_size`` or ``schema``.
    """

    def __init__(
        self,
        schema: pa.Schema | None = None,
        compression: str = "snappy",
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    ) -> None:
        if not isinstance(row_group_size, int) or row_group_size <= 0:
            msg = f"row_group_size must be a positive int, got {row_group_size!r}."
            raise ConfigurationError(msg)
        if schema is not None:
            import pyarrow as pa

            if not isinstance(schema, pa.Schema):
                msg = f"ParquetWriterFactory schema must be a pyarrow.Schema, got {schema!r}."
                raise ConfigurationError(msg)
        self.schema = schema
        self.compression = compression
        self.row_group_size = row_group_size

    @override
    def create(self, stream: IO[bytes], path: str) -> BulkWriter[dict[str, Any]]:
        """Create the Parquet writer of one part file."""
        return _ParquetBulkWriter(self, stream, path)

    def __repr__(self) -> str:
        return f"ParquetWriterFactory(schema={self.schema}, compression={self.compression!r})"


class _ParquetBulkWriter(BulkWriter[dict[str, Any]]):
    def __init__(self, factory: ParquetWriterFactory, stream: IO[bytes], path: str) -> None:
        self._factory = factory
        self._stream = stream
        self._path = path
        self._schema: pa.Schema | None = factory.schema
        self._writer: pq.ParquetWriter | None = None
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_rows = 0

    def _to_batch(self, values: Sequence[dict[str, Any]]) -> pa.RecordBatch:
        import pyarrow as pa

        try:
            batch = pa.RecordBatch.from_pylist(list(values), schema=self._schema)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            origin = (
                "given" if self._factory.schema is not None else "inferred from the first batch"
            )
            msg = (
                f"Cannot write records to Parquet file '{self._path}': {exc}. The schema "
                f"({origin}) is {self._schema}; pass a matching "
                "ParquetWriterFactory(schema=...)."
            )
            raise record_error(msg) from exc
        if self._schema is None:
            self._schema = batch.schema
        return batch

    def _write_buffer(self, final: bool) -> None:
        """Write whole row groups from the buffer (and the remainder if ``final``)."""
        if not self._buffer:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            assert self._schema is not None
            self._writer = pq.ParquetWriter(
                self._stream, self._schema, compression=self._factory.compression
            )
        group = self._factory.row_group_size
        table = pa.Table.from_batches(self._buffer)
        rows = table.num_rows if final else table.num_rows // group * group
        if rows:
            self._writer.write_table(table.slice(0, rows), row_group_size=group)
        rest = table.slice(rows)
        self._buffer = rest.to_batches() if rest.num_rows else []
        self._buffered_rows = rest.num_rows

    @override
    def add_batch(self, values: Sequence[dict[str, Any]]) -> None:
        if not values:
            return
        batch = self._to_batch(values)
        self._buffer.append(batch)
        self._buffered_rows += batch.num_rows
        if self._buffered_rows >= self._factory.row_group_size:
            self._write_buffer(final=False)

    @override
    def finish(self) -> None:
        self._write_buffer(final=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ParquetBulkWriters:
    """Factories of Parquet bulk writers (PyFlink's ``ParquetBulkWriters``)."""

    @staticmethod
    def for_dicts(
        schema: pa.Schema | None = None,
        compression: str = "snappy",
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    ) -> ParquetWriterFactory:
        """A factory writing dict records; see :class:`ParquetWriterFactory`."""
        return ParquetWriterFactory(schema, compression, row_group_size)
