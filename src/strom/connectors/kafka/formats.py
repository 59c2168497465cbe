"""Value formats: (de)serialization schemas for raw bytes, UTF-8 strings, JSON and Avro.

Mirrors Flink's ``SerializationSchema`` / ``DeserializationSchema`` and the formats of
``flink-formats``. A schema turns one Kafka key or value (``bytes``) into a Python value
and back. Schemas are declarative and picklable; codecs are built lazily on first use
in the task that uses them.

``None`` (a Kafka tombstone or a missing key) deserializes to ``None``, and ``None``
serializes to ``None``, for every schema here.

Example::

    from strom.connectors.kafka import JsonDeserializationSchema, SimpleStringSchema

    JsonDeserializationSchema()                 # -> dict / list / str / int ...
    JsonDeserializationSchema(Order)            # -> Order (a msgspec.Struct or dataclass)
    SimpleStringSchema()                        # bytes <-> str (UTF-8)
    AvroDeserializationSchema(schema_dict)      # Avro binary, writer schema given, no registry
"""

from __future__ import annotations

import abc
import io
import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

from strom.errors import ConfigurationError

__all__ = [
    "AvroDeserializationSchema",
    "AvroSerializationSchema",
    "ByteArraySchema",
    "DeserializationSchema",
    "JsonDeserializationSchema",
    "JsonSerializationSchema",
    "SerializationSchema",
    "SimpleStringSchema",
]

T = TypeVar("T")
"""The Python type a schema produces or consumes."""


class DeserializationSchema(abc.ABC, Generic[T]):
    """Decodes ``bytes`` into a value (Flink's ``DeserializationSchema``).

    Implementations must be picklable and must not keep per-record state: one instance
    decodes every record of a reader, from the task thread.
    """

    @abc.abstractmethod
    def deserialize(self, message: bytes | None) -> T | None:
        """Decode one message; ``None`` in gives ``None`` out.

        Raises:
            Exception: any exception marks the record as undecodable; the source then
                applies its ``DeserializationErrorPolicy``.
        """


class SerializationSchema(abc.ABC, Generic[T]):
    """Encodes a value into ``bytes`` (Flink's ``SerializationSchema``).

    Implementations must be picklable; one instance encodes every record of a writer.
    """

    @abc.abstractmethod
    def serialize(self, element: T | None) -> bytes | None:
        """Encode one value; ``None`` in gives ``None`` out (a tombstone or a null key)."""


class _LazyCodec:
    """Mixin: drop cached codecs when pickled (codecs are rebuilt on first use)."""

    _codec: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_codec", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__getstate__() == other.__getstate__()

    def __hash__(self) -> int:
        return hash(type(self))


class ByteArraySchema(DeserializationSchema[bytes], SerializationSchema[bytes]):
    """Passes raw ``bytes`` through unchanged (both directions).

    ``bytearray`` and ``memoryview`` values are accepted when serializing.
    """

    def deserialize(self, message: bytes | None) -> bytes | None:
        """Return ``message`` as is."""
        return message

    def serialize(self, element: bytes | bytearray | memoryview | None) -> bytes | None:
        """Return ``element`` as ``bytes``.

        Raises:
            TypeError: ``element`` is not bytes-like.
        """
        if element is None or type(element) is bytes:
            return element
        if isinstance(element, bytearray | memoryview):
            return bytes(element)
        msg = f"ByteArraySchema serializes bytes, got {type(element).__name__}"
        raise TypeError(msg)

    def __repr__(self) -> str:
        return "ByteArraySchema()"

    def __eq__(self, other: object) -> bool:
        return type(other) is ByteArraySchema

    def __hash__(self) -> int:
        return hash(ByteArraySchema)


class SimpleStringSchema(DeserializationSchema[str], SerializationSchema[str]):
    """UTF-8 strings (both directions), Flink's ``SimpleStringSchema``.

    Args:
        encoding: the character set (default ``"utf-8"``).
    """

    def __init__(self, encoding: str = "utf-8") -> None:
        """Create the schema; see the class docstring."""
        try:
            "".encode(encoding)
        except LookupError as e:
            msg = f"unknown encoding {encoding!r}"
            raise ConfigurationError(msg) from e
        self.encoding = encoding

    def deserialize(self, message: bytes | None) -> str | None:
        """Decode ``message``.

        Raises:
            UnicodeDecodeError: invalid bytes for the encoding.
        """
        return None if message is None else message.decode(self.encoding)

    def serialize(self, element: str | None) -> bytes | None:
        """Encode ``element`` (any non-str value is converted with ``str()`` first)."""
        if element is None:
            return None
        if type(element) is not str:
            element = str(element)
        return element.encode(self.encoding)

    def __repr__(self) -> str:
        return f"SimpleStringSchema({self.encoding!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimpleStringSchema) and other.encoding == self.encoding

    def __hash__(self) -> int:
        return hash((SimpleStringSchema, self.encoding))


class JsonDeserializationSchema(_LazyCodec, DeserializationSchema[Any]):
    """JSON via msgspec, optionally validated into a type (Flink's ``JsonDeserializationSchema``).

    Args:
        type: the target type: ``Any`` (default: dicts, lists, str, int, float, bool,
            None), or anything msgspec decodes into, e.g. a ``msgspec.Struct``, a
            dataclass, a ``TypedDict`` or ``list[int]``.
    """

    def __init__(self, type: Any = Any) -> None:
        """Create the schema; see the class docstring."""
        try:
            msgspec.json.Decoder(type)
        except TypeError as e:
            msg = f"JsonDeserializationSchema cannot decode into {type!r}: {e}"
            raise ConfigurationError(msg) from e
        self.type = type

    def deserialize(self, message: bytes | None) -> Any:
        """Decode one JSON document.

        Raises:
            msgspec.DecodeError: invalid JSON, or it does not match ``type``.
        """
        if message is None:
            return None
        codec = self._codec
        if codec is None:
            codec = self._codec = msgspec.json.Decoder(self.type)
        return codec.decode(message)

    def __repr__(self) -> str:
        return f"JsonDeserializationSchema({self.type!r})"


class JsonSerializationSchema(_LazyCodec, SerializationSchema[Any]):
    """JSON via msgspec (Flink's ``JsonSerializationSchema``).

    Encodes dicts, lists, scalars, ``msgspec.Struct`` s, dataclasses, datetimes, UUIDs...

    Args:
        enc_hook: optional ``callable(obj) -> encodable`` for other types.
    """

    def __init__(self, enc_hook: Callable[[Any], Any] | None = None) -> None:
        """Create the schema; see the class docstring."""
        self.enc_hook = enc_hook

    def serialize(self, element: Any) -> bytes | None:
        """Encode one value as compact UTF-8 JSON.

        Raises:
            TypeError: a value msgspec cannot encode (pass ``enc_hook``).
        """
        if element is None:
            return None
        codec = self._codec
        if codec is None:
            codec = self._codec = msgspec.json.Encoder(enc_hook=self.enc_hook)
        encoded: bytes = codec.encode(element)
        return encoded

    def __repr__(self) -> str:
        return "JsonSerializationSchema()"


def _parse_avro_schema(schema: Any, what: str) -> Any:
    try:
        import fastavro
    except ImportError as e:  # pragma: no cover - fastavro is a dependency
        msg = "Avro schemas need the 'fastavro' package: pip install fastavro"
        raise ConfigurationError(msg) from e
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as e:
            msg = f"{what} must be an Avro schema as a dict or JSON text: {e}"
            raise ConfigurationError(msg) from e
    try:
        return fastavro.parse_schema(schema)
    except Exception as e:
        msg = f"invalid Avro {what}: {type(e).__name__}: {e}"
        raise ConfigurationError(msg) from e


class AvroDeserializationSchema(_LazyCodec, DeserializationSchema[Any]):
    """Avro binary records with a known writer schema, no schema registry.

    Flink's ``AvroDeserializationSchema.forGeneric``: each message is one Avro datum
    (no container header, no registry magic byte) decoded into dicts by fastavro.

    Args:
        schema: the writer schema, as a dict or JSON text.
        reader_schema: optional reader schema for schema evolution (Avro resolution rules).

    Raises:
        ConfigurationError: an invalid schema.
    """

    def __init__(self, schema: Any, reader_schema: Any = None) -> None:
        """Create the schema; see the class docstring."""
        _parse_avro_schema(schema, "schema")
        if reader_schema is not None:
            _parse_avro_schema(reader_schema, "reader_schema")
        self.schema = schema
        self.reader_schema = reader_schema

    def deserialize(self, message: bytes | None) -> Any:
        """Decode one Avro datum.

        Raises:
            Exception: fastavro's error for bytes that do not match the schema.
        """
        if message is None:
            return None
        import fastavro

        codec = self._codec
        if codec is None:
            reader = (
                None
                if self.reader_schema is None
                else _parse_avro_schema(self.reader_schema, "reader_schema")
            )
            codec = self._codec = (_parse_avro_schema(self.schema, "schema"), reader)
        buf = io.BytesIO(message)
        value = fastavro.schemaless_reader(buf, codec[0], codec[1])
        if buf.tell() != len(message):
            msg = f"{len(message) - buf.tell()} trailing bytes after the Avro datum"
            raise ValueError(msg)
        return value

    def __repr__(self) -> str:
        return "AvroDeserializationSchema(...)"


class AvroSerializationSchema(_LazyCodec, SerializationSchema[Any]):
    """Avro binary records (one datum per message, no registry) via fastavro.

    Args:
        schema: the Avro schema, as a dict or JSON text.

    Raises:
        ConfigurationError: an invalid schema.
    """

    def __init__(self, schema: Any) -> None:
        """Create the schema; see the class docstring."""
        _parse_avro_schema(schema, "schema")
        self.schema = schema

    def serialize(self, element: Any) -> bytes | None:
        """Encode one record (a dict matching the schema).

        Raises:
            Exception: fastavro's error for a value that does not match the schema.
        """
        if element is None:
            return None
        import fastavro

        codec = self._codec
        if codec is None:
            codec = self._codec = _parse_avro_schema(self.schema, "schema")
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, codec, element)
        return buf.getvalue()

    def __repr__(self) -> str:
        return "AvroSerializationSchema(...)"
