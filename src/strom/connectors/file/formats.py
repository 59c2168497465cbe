"""File formats of the file source: how bytes of one file become records.

Two families, as in Flink:

* :class:`StreamFormat` reads a sequential byte stream, so the file source decompresses
  ``.gz``/``.bz2``/``.xz``/``.zip`` files for it transparently:
  :meth:`StreamFormat.text_line_format` (lines), :meth:`StreamFormat.csv_format` /
  :class:`CsvFormat` (dicts by header), :meth:`StreamFormat.json_lines_format` (decoded
  JSON values).
* :class:`BulkFormat` needs random access to the raw file: :meth:`BulkFormat.parquet` /
  :class:`ParquetFormat` (dicts per row, read in Arrow record batches).

Both create a :class:`FormatReader` per file, which hands out records in batches and counts
its position in records so that a checkpointed split resumes exactly.

Malformed input: the CSV and JSON-lines formats take ``on_error``. ``"fail"`` (the default)
raises :class:`~strom.errors.DeserializationError` naming the file, the line and the fix.
``"skip"`` drops the malformed record but never silently: each skip is counted
(:attr:`FormatReader.num_skipped_records`, summed by the source reader's
``num_skipped_records`` attribute) and the first ones of every file are logged at WARNING.
"""

from __future__ import annotations

import abc
import contextlib
import csv
import io
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Generic, Literal, TypeVar

import msgspec

from strom.connectors.file._compat import override
from strom.errors import ConfigurationError, DeserializationError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = [
    "BulkFormat",
    "CsvFormat",
    "FormatReader",
    "JsonLinesFormat",
    "OnError",
    "ParquetFormat",
    "StreamFormat",
    "TextLineFormat",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
"""The type of records a format produces."""

OnError = Literal["fail", "skip"]
"""Policy for malformed records: raise DeserializationError, or skip and count them."""

_MAX_LOGGED_SKIPS_PER_FILE = 10
"""Skipped records logged individually per file; more are only counted (avoids log floods)."""

_SKIP_HINT = "or build the format with on_error='skip' to skip (and count) malformed records"


def _check_on_error(on_error: str) -> None:
    if on_error not in ("fail", "skip"):
        msg = f"on_error must be 'fail' or 'skip', got {on_error!r}."
        raise ConfigurationError(msg)


def _check_charset(charset: str) -> None:
    try:
        "".encode(charset)
    except LookupError as exc:
        msg = f"Unknown charset {charset!r}; use a Python codec name such as 'utf-8'."
        raise ConfigurationError(msg) from exc


class FormatReader(abc.ABC, Generic[T]):
    """Reads the records of one opened file (Flink's ``StreamFormat.Reader``/``BulkFormat.Reader``).

    Created by a format for one file; used from one thread; closed by the source reader.

    Attributes:
        path: the file being read (for error messages).
        position: records consumed so far from the start of the file, including skipped
            malformed records and blank lines; stored in the split on snapshot.
        num_skipped_records: malformed records skipped under ``on_error="skip"``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.position = 0
        self.num_skipped_records = 0

    @abc.abstractmethod
    def read_batch(self, max_records: int) -> list[T]:
        """Return the next records, at most ``max_records``; an empty list means end of file.

        Raises:
            DeserializationError: malformed input under ``on_error="fail"``, or undecodable
                bytes.
        """

    @abc.abstractmethod
    def skip_records(self, num_records: int) -> None:
        """Consume ``num_records`` records without returning them (restore from a split).

        Stops silently at end of file. Advances :attr:`position` by the records consumed.
        """

    def close(self) -> None:
        """Release resources held beyond the stream (the stream itself is closed by the caller)."""

    def _malformed(self, on_error: OnError, kind: str, line: int, detail: str) -> None:
        """Apply the malformed-record policy: raise, or count and (rate-limited) log."""
        if on_error == "fail":
            msg = (
                f"Malformed {kind} record in '{self.path}' at line {line}: {detail}. Fix the "
                f"input, {_SKIP_HINT}."
            )
            raise DeserializationError(msg)
        self.num_skipped_records += 1
        if self.num_skipped_records <= _MAX_LOGGED_SKIPS_PER_FILE:
            logger.warning(
                "Skipped malformed %s record in '%s' at line %d: %s", kind, self.path, line, detail
            )


class StreamFormat(abc.ABC, Generic[T]):
    """A format read from a sequential (possibly decompressed) byte stream.

    Mirrors Flink's ``StreamFormat``. Implementations are declarative and picklable; all
    per-file state lives in the :class:`FormatReader` they create.
    """

    @abc.abstractmethod
    def create_reader(self, stream: IO[bytes], path: str) -> FormatReader[T]:
        """Create a reader for one file.

        Args:
            stream: the file's bytes (already decompressed); not seekable in general.
            path: the file's path, for error messages.
        """

    def restore_reader(self, stream: IO[bytes], path: str, records_to_skip: int) -> FormatReader[T]:
        """Create a reader that resumes after ``records_to_skip`` records (default: skip them)."""
        reader = self.create_reader(stream, path)
        if records_to_skip:
            reader.skip_records(records_to_skip)
        return reader

    @staticmethod
    def text_line_format(charset: str = "utf-8") -> TextLineFormat:
        r"""Lines of text, without the trailing newline (Flink's ``TextLineInputFormat``).

        Args:
            charset: a Python codec name. ``\n``, ``\r\n`` and ``\r`` end lines.

        Raises:
            ConfigurationError: unknown charset.
        """
        return TextLineFormat(charset)

    @staticmethod
    def csv_format(
        *,
        delimiter: str = ",",
        quote_char: str = '"',
        has_header: bool = True,
        column_names: Sequence[str] | None = None,
        converters: Mapping[str, Callable[[str], Any]] | None = None,
        schema: Mapping[str, Any] | pa.Schema | None = None,
        charset: str = "utf-8",
        on_error: OnError = "fail",
    ) -> CsvFormat:
        """CSV rows as dicts keyed by column name; see :class:`CsvFormat` for the arguments."""
        return CsvFormat(
            delimiter=delimiter,
            quote_char=quote_char,
            has_header=has_header,
            column_names=column_names,
            converters=converters,
            schema=schema,
            charset=charset,
            on_error=on_error,
        )

    @staticmethod
    def json_lines_format(record_type: Any = Any, on_error: OnError = "fail") -> JsonLinesFormat:
        """One JSON value per line, decoded with msgspec; see :class:`JsonLinesFormat`."""
        return JsonLinesFormat(record_type=record_type, on_error=on_error)


class BulkFormat(abc.ABC, Generic[T]):
    """A format that needs random access to the raw file (Flink's ``BulkFormat``).

    Bulk formats receive the file undecompressed and seekable; they read in batches
    natively (Parquet row groups). Implementations are declarative and picklable.
    """

    @abc.abstractmethod
    def create_reader(self, file: IO[bytes], path: str) -> FormatReader[T]:
        """Create a reader for one file.

        Args:
            file: the raw, seekable file.
            path: the file's path, for error messages.

        Raises:
            DeserializationError: the file is not valid in this format.
        """

    def restore_reader(self, file: IO[bytes], path: str, records_to_skip: int) -> FormatReader[T]:
        """Create a reader that resumes after ``records_to_skip`` records (default: skip them)."""
        reader = self.create_reader(file, path)
        if records_to_skip:
            reader.skip_records(records_to_skip)
        return reader

    @staticmethod
    def parquet(columns: Sequence[str] | None = None) -> ParquetFormat:
        """Parquet rows as dicts; see :class:`ParquetFormat`."""
        return ParquetFormat(columns)


# --------------------------------------------------------------------------------- text lines


class TextLineFormat(StreamFormat[str]):
    r"""Lines of text without their line terminator (Flink's ``TextLineInputFormat``).

    Every line is a record, empty lines included. Undecodable bytes always raise
    :class:`~strom.errors.DeserializationError` (there is no per-line recovery).

    Args:
        charset: a Python codec name; ``\n``, ``\r\n`` and ``\r`` end lines.

    Raises:
        ConfigurationError: unknown charset.
    """

    def __init__(self, charset: str = "utf-8") -> None:
        _check_charset(charset)
        self.charset = charset

    @override
    def create_reader(self, stream: IO[bytes], path: str) -> FormatReader[str]:
        """Create a line reader over the decoded stream."""
        return _TextLineReader(stream, path, self.charset)

    def __repr__(self) -> str:
        return f"TextLineFormat(charset={self.charset!r})"


class _TextLineReader(FormatReader[str]):
    def __init__(self, stream: IO[bytes], path: str, charset: str) -> None:
        super().__init__(path)
        self._charset = charset
        self._text = io.TextIOWrapper(stream, encoding=charset, newline=None)

    def _lines(self, n: int) -> list[str]:
        try:
            return list(itertools.islice(self._text, n))
        except UnicodeDecodeError as exc:
            msg = (
                f"Cannot decode '{self.path}' as {self._charset} at or after line "
                f"{self.position + 1}: {exc}. Pass the file's encoding as "
                "text_line_format(charset=...)."
            )
            raise DeserializationError(msg) from exc

    @override
    def read_batch(self, max_records: int) -> list[str]:
        lines = self._lines(max_records)
        self.position += len(lines)
        return [line[:-1] if line.endswith("\n") else line for line in lines]

    @override
    def skip_records(self, num_records: int) -> None:
        self.position += len(self._lines(num_records))

    @override
    def close(self) -> None:
        # Detach so the wrapper never closes the stream, which the caller owns.
        with contextlib.suppress(ValueError):
            self._text.detach()


# ---------------------------------------------------------------------------------------- CSV


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "t", "y"):
        return True
    if lowered in ("false", "0", "no", "f", "n"):
        return False
    msg = f"not a boolean: {text!r}"
    raise ValueError(msg)


def _converter_for_type(name: str, typ: Any) -> Callable[[str], Any]:
    """Map a schema entry (Python type, callable or pyarrow DataType) to a str -> value parser."""
    if typ is bool:
        return _parse_bool
    if isinstance(typ, type) or (callable(typ) and not hasattr(typ, "id")):
        parse: Callable[[str], Any] = typ
        return parse
    import pyarrow as pa

    if pa.types.is_boolean(typ):
        return _parse_bool
    if pa.types.is_integer(typ):
        return int
    if pa.types.is_floating(typ):
        return float
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return str
    msg = (
        f"CSV schema column '{name}' has type {typ}, which CsvFormat cannot parse; use int, "
        "float, str or bool types, or pass converters={name: parse_function}."
    )
    raise ConfigurationError(msg)


class _EmptyIsNone:
    """A picklable parser wrapper that maps the empty field to None."""

    def __init__(self, parse: Callable[[str], Any]) -> None:
        self.parse = parse

    def __call__(self, text: str) -> Any:
        return None if text == "" else self.parse(text)


class CsvFormat(StreamFormat[dict[str, Any]]):
    """CSV rows as dicts keyed by column name (Flink's ``CsvReaderFormat``).

    Parsed with the standard :mod:`csv` module (quoted fields may span lines). Blank rows are
    skipped. A row whose field count differs from the columns' is malformed.

    Args:
        delimiter: the field separator (one character).
        quote_char: the quote character (one character).
        has_header: True if the first row holds column names.
        column_names: column names; required when ``has_header`` is False unless ``schema``
            gives them. With a header, these replace the header's names.
        converters: per-column parsers ``str -> value`` (e.g. ``{"age": int}``); they get
            every field's raw text, empty fields included. A raising converter makes the
            record malformed.
        schema: column types as ``{name: type}`` (``int``, ``float``, ``str``, ``bool`` or
            any ``str -> value`` callable) or a ``pyarrow.Schema`` (integer, floating,
            boolean and string fields). Its order gives the column names when there is no
            header and no ``column_names``. Empty fields of non-``str`` columns become None.
            ``converters`` win over ``schema`` for the same column.
        charset: a Python codec name.
        on_error: ``"fail"`` (raise DeserializationError with file and line) or ``"skip"``
            (skip malformed records, count them in ``num_skipped_records``, log the first).

    Raises:
        ConfigurationError: invalid options (no column names, bad delimiter, unknown
            charset, unsupported schema type).
    """

    def __init__(
        self,
        *,
        delimiter: str = ",",
        quote_char: str = '"',
        has_header: bool = True,
        column_names: Sequence[str] | None = None,
        converters: Mapping[str, Callable[[str], Any]] | None = None,
        schema: Mapping[str, Any] | pa.Schema | None = None,
        charset: str = "utf-8",
        on_error: OnError = "fail",
    ) -> None:
        for opt, val in (("delimiter", delimiter), ("quote_char", quote_char)):
            if not isinstance(val, str) or len(val) != 1:
                msg = f"CsvFormat {opt} must be a single character, got {val!r}."
                raise ConfigurationError(msg)
        _check_charset(charset)
        _check_on_error(on_error)
        schema_items: list[tuple[str, Any]] = []
        if schema is not None:
            if isinstance(schema, Mapping):
                schema_items = list(schema.items())
            else:
                schema_items = [(field.name, field.type) for field in schema]
        if column_names is None and not has_header and schema_items:
            column_names = [name for name, _ in schema_items]
        if column_names is None and not has_header:
            msg = "CsvFormat without a header needs column_names=[...] or a schema."
            raise ConfigurationError(msg)
        self.delimiter = delimiter
        self.quote_char = quote_char
        self.has_header = has_header
        self.column_names = tuple(column_names) if column_names is not None else None
        if self.column_names is not None:
            _check_unique(self.column_names, "column_names")
            unknown = sorted(set(converters or {}).union(n for n, _ in schema_items))
            unknown = [n for n in unknown if n not in self.column_names]
            if unknown:
                msg = (
                    f"CsvFormat converters/schema name columns {unknown} that are not in "
                    f"column_names {list(self.column_names)}."
                )
                raise ConfigurationError(msg)
        parsers: dict[str, Callable[[str], Any]] = {}
        for name, typ in schema_items:
            parse = _converter_for_type(name, typ)
            parsers[name] = parse if typ is str else _EmptyIsNone(parse)
        parsers.update(converters or {})
        self.converters = parsers
        self.charset = charset
        self.on_error: OnError = on_error

    @override
    def create_reader(self, stream: IO[bytes], path: str) -> FormatReader[dict[str, Any]]:
        """Create a CSV reader; the header (if any) is read with the first batch."""
        return _CsvReader(self, stream, path)

    def __repr__(self) -> str:
        return (
            f"CsvFormat(delimiter={self.delimiter!r}, has_header={self.has_header}, "
            f"column_names={self.column_names}, on_error={self.on_error!r})"
        )


def _check_unique(names: Sequence[str], what: str) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        msg = f"CSV {what} has duplicate names {dupes}; column names must be unique."
        raise DeserializationError(msg) if what.startswith("header") else ConfigurationError(msg)


class _CsvReader(FormatReader[dict[str, Any]]):
    def __init__(self, fmt: CsvFormat, stream: IO[bytes], path: str) -> None:
        super().__init__(path)
        self._fmt = fmt
        self._text = io.TextIOWrapper(stream, encoding=fmt.charset, newline="")
        self._rows = csv.reader(self._text, delimiter=fmt.delimiter, quotechar=fmt.quote_char)
        self._names: tuple[str, ...] = fmt.column_names or ()
        self._header_read = not fmt.has_header
        self._converters: list[tuple[str, Callable[[str], Any]]] = []
        if self._header_read:
            self._bind_converters()

    def _bind_converters(self) -> None:
        missing = sorted(set(self._fmt.converters) - set(self._names))
        if missing:
            msg = (
                f"CSV file '{self.path}' has no columns {missing} that converters/schema name "
                f"(columns: {list(self._names)}); fix the header or the format's options."
            )
            raise DeserializationError(msg)
        self._converters = [(n, c) for n, c in self._fmt.converters.items()]

    def _next_row(self) -> list[str] | None:
        """Next parsed row; None at end of file. csv.Error makes a malformed record."""
        while True:
            try:
                return next(self._rows)
            except StopIteration:
                return None
            except csv.Error as exc:
                if not self._header_read:
                    raise self._header_error(str(exc)) from exc
                self.position += 1
                self._malformed(self._fmt.on_error, "CSV", self._rows.line_num, str(exc))
            except UnicodeDecodeError as exc:
                raise self._decode_error(exc) from exc

    def _decode_error(self, exc: UnicodeDecodeError) -> DeserializationError:
        msg = (
            f"Cannot decode CSV file '{self.path}' as {self._fmt.charset} near line "
            f"{self._rows.line_num + 1}: {exc}. Pass the file's encoding as charset=..."
        )
        return DeserializationError(msg)

    def _header_error(self, detail: str) -> DeserializationError:
        msg = f"Cannot read the CSV header of '{self.path}': {detail}; fix the file's first line."
        return DeserializationError(msg)

    def _read_header(self) -> None:
        header = self._next_row()
        while header == []:  # blank lines before the header
            header = self._next_row()
        self._header_read = True
        if header is None:
            return
        if not self._names:
            self._names = tuple(header)
            _check_unique(self._names, f"header of '{self.path}'")
        self._bind_converters()

    @override
    def read_batch(self, max_records: int) -> list[dict[str, Any]]:
        if not self._header_read:
            self._read_header()
        out: list[dict[str, Any]] = []
        while len(out) < max_records:
            try:
                if not self._fill(out, max_records):
                    break
            except csv.Error as exc:
                self.position += 1
                self._malformed(self._fmt.on_error, "CSV", self._rows.line_num, str(exc))
            except UnicodeDecodeError as exc:
                raise self._decode_error(exc) from exc
        return out

    def _fill(self, out: list[dict[str, Any]], max_records: int) -> bool:
        """Append records until ``out`` holds ``max_records`` (True) or the file ends (False)."""
        names = self._names
        width = len(names)
        converters = self._converters
        on_error = self._fmt.on_error
        for row in self._rows:
            self.position += 1
            if len(row) != width:
                if row:  # blank rows are no records
                    detail = f"expected {width} fields {list(names)}, got {len(row)}: {row!r}"
                    self._malformed(on_error, "CSV", self._rows.line_num, detail)
                continue
            record: dict[str, Any] = dict(zip(names, row))
            if converters:
                try:
                    for name, convert in converters:
                        record[name] = convert(record[name])
                except Exception as exc:  # a user converter may raise anything
                    detail = f"column '{name}': cannot convert {record[name]!r}: {exc}"
                    self._malformed(on_error, "CSV", self._rows.line_num, detail)
                    continue
            out.append(record)
            if len(out) >= max_records:
                return True
        return False

    @override
    def skip_records(self, num_records: int) -> None:
        if not self._header_read:
            self._read_header()
        for _ in range(num_records):
            if self._next_row() is None:
                return
            self.position += 1

    @override
    def close(self) -> None:
        # Detach so the wrapper never closes the stream, which the caller owns.
        with contextlib.suppress(ValueError):
            self._text.detach()


# --------------------------------------------------------------------------------- JSON lines


class JsonLinesFormat(StreamFormat[Any]):
    """One JSON value per line, decoded with ``msgspec.json`` (JSON Lines / NDJSON).

    Blank lines are ignored (they count toward the split position but produce no record).

    Args:
        record_type: the type to decode and validate into (``Any`` for plain dicts/lists,
            or a ``msgspec.Struct``, dataclass, ``TypedDict``...). A value that does not
            match makes the record malformed.
        on_error: ``"fail"`` (raise DeserializationError with file and line) or ``"skip"``
            (skip malformed lines, count them in ``num_skipped_records``, log the first).

    Raises:
        ConfigurationError: invalid ``on_error`` or a type msgspec cannot decode into.
    """

    def __init__(self, record_type: Any = Any, on_error: OnError = "fail") -> None:
        _check_on_error(on_error)
        try:
            msgspec.json.Decoder(record_type)
        except TypeError as exc:
            msg = f"json_lines_format cannot decode into {record_type!r}: {exc}"
            raise ConfigurationError(msg) from exc
        self.record_type = record_type
        self.on_error: OnError = on_error

    @override
    def create_reader(self, stream: IO[bytes], path: str) -> FormatReader[Any]:
        """Create a JSON-lines reader."""
        return _JsonLinesReader(self, stream, path)

    def __repr__(self) -> str:
        return f"JsonLinesFormat(record_type={self.record_type!r}, on_error={self.on_error!r})"


class _JsonLinesReader(FormatReader[Any]):
    def __init__(self, fmt: JsonLinesFormat, stream: IO[bytes], path: str) -> None:
        super().__init__(path)
        self._on_error: OnError = fmt.on_error
        self._decoder = msgspec.json.Decoder(fmt.record_type)
        self._stream = stream

    @override
    def read_batch(self, max_records: int) -> list[Any]:
        decode = self._decoder.decode
        while True:
            lines = list(itertools.islice(self._stream, max_records))
            if not lines:
                return []
            first_line = self.position + 1
            self.position += len(lines)
            try:  # blank lines fail to decode and take the slow path that skips them
                out = list(map(decode, lines))
            except msgspec.DecodeError:
                out = self._decode_each(lines, first_line)
            if out:
                return out

    def _decode_each(self, lines: list[bytes], first_line: int) -> list[Any]:
        """Slow path after a failure: decode line by line to find and report bad lines."""
        decode = self._decoder.decode
        out: list[Any] = []
        for line_no, line in enumerate(lines, start=first_line):
            if line.isspace():
                continue
            try:
                out.append(decode(line))
            except msgspec.DecodeError as exc:
                self._malformed(self._on_error, "JSON", line_no, str(exc))
        return out

    @override
    def skip_records(self, num_records: int) -> None:
        self.position += sum(1 for _ in itertools.islice(self._stream, num_records))


# ------------------------------------------------------------------------------------ Parquet


class ParquetFormat(BulkFormat[dict[str, Any]]):
    """Parquet rows as dicts (Flink's ``ParquetColumnarRowInputFormat``), read with pyarrow.

    Rows are read in Arrow record batches (``ParquetFile.iter_batches``) and converted with
    ``to_pylist``. Restoring a split skips whole row groups via the file's metadata, so
    resuming a large file is cheap.

    Args:
        columns: the columns to read (all if None); dicts hold these keys only.

    Raises:
        ConfigurationError: ``columns`` is not a sequence of names.
    """

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        if columns is not None and (
            isinstance(columns, str) or not all(isinstance(c, str) for c in columns)
        ):
            msg = f"ParquetFormat columns must be a list of column names, got {columns!r}."
            raise ConfigurationError(msg)
        self.columns = list(columns) if columns is not None else None

    @override
    def create_reader(self, file: IO[bytes], path: str) -> FormatReader[dict[str, Any]]:
        """Open the Parquet file.

        Raises:
            DeserializationError: the file is not valid Parquet.
        """
        return _ParquetReader(file, path, self.columns)

    def __repr__(self) -> str:
        return f"ParquetFormat(columns={self.columns!r})"


class _ParquetReader(FormatReader[dict[str, Any]]):
    def __init__(self, file: IO[bytes], path: str, columns: list[str] | None) -> None:
        super().__init__(path)
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._arrow_errors = (pa.ArrowException, OSError)
        try:
            self._file: pq.ParquetFile = pq.ParquetFile(file)
        except self._arrow_errors as exc:
            raise self._error(exc) from exc
        self._columns = columns
        self._first_row_group = 0
        self._rows_to_drop = 0
        self._batches: Any = None
        self._pending: pa.RecordBatch | None = None

    def _error(self, exc: BaseException) -> DeserializationError:
        msg = (
            f"Cannot read Parquet file '{self.path}': {exc}. Check that it is a complete "
            "Parquet file (and that the columns asked for exist)."
        )
        return DeserializationError(msg)

    def _next_batch(self, batch_size: int) -> pa.RecordBatch | None:
        if self._batches is None:
            num_groups = self._file.metadata.num_row_groups
            self._batches = self._file.iter_batches(
                batch_size=batch_size,
                row_groups=range(self._first_row_group, num_groups),
                columns=self._columns,
            )
        try:
            batch: pa.RecordBatch | None = next(self._batches, None)
        except self._arrow_errors as exc:
            raise self._error(exc) from exc
        return batch

    @override
    def read_batch(self, max_records: int) -> list[dict[str, Any]]:
        while self._pending is None or self._pending.num_rows == 0:
            batch = self._next_batch(max_records)
            if batch is None:
                return []
            if self._rows_to_drop:
                dropped = min(self._rows_to_drop, batch.num_rows)
                self._rows_to_drop -= dropped
                batch = batch.slice(dropped)
            self._pending = batch
        taken = self._pending.slice(0, max_records)
        self._pending = self._pending.slice(taken.num_rows)
        self.position += taken.num_rows
        rows: list[dict[str, Any]] = taken.to_pylist()
        return rows

    @override
    def skip_records(self, num_records: int) -> None:
        if self._batches is not None:
            # Already reading: consume rows from the batch stream.
            while num_records > 0:
                consumed = len(self.read_batch(num_records))
                if not consumed:
                    return
                num_records -= consumed
            return
        meta = self._file.metadata
        remaining = num_records
        group = self._first_row_group
        while group < meta.num_row_groups and remaining >= meta.row_group(group).num_rows:
            remaining -= meta.row_group(group).num_rows
            group += 1
        self._first_row_group = group
        total_left = sum(meta.row_group(g).num_rows for g in range(group, meta.num_row_groups))
        self._rows_to_drop = min(remaining, total_left)
        self.position += num_records - remaining + self._rows_to_drop

    @override
    def close(self) -> None:
        self._pending = None
        self._batches = None
        self._file.close()
