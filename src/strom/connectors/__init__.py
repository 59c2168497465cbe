"""Strom connectors: the FLIP-27 source SPI, the Sink V2 SPI and built-in connectors.

- SPI: :class:`Source`, :class:`SourceSplit`, :class:`SplitEnumerator`,
  :class:`SourceReader`, :class:`Sink`, :class:`SinkWriter`, :class:`Committer`.
- Built-ins: :class:`CollectionSource`, :class:`NumberSequenceSource`,
  :class:`DataGeneratorSource`, :class:`PrintSink`; files in ``strom.connectors.file``
  (:class:`FileSource`, :class:`FileSink`).
"""

from strom.connectors.collection import (
    CollectionSource,
    DataGeneratorSource,
    NumberSequenceSource,
    RateLimiterStrategy,
)
from strom.connectors.print_sink import PrintSink
from strom.connectors.sink import CommitRequest, Committer, Sink, SinkWriter, SinkWriterContext
from strom.connectors.source import (
    Boundedness,
    InputStatus,
    ReaderOutput,
    Source,
    SourceReader,
    SourceReaderContext,
    SourceSplit,
    SplitEnumerator,
    SplitEnumeratorContext,
)

__all__ = [
    "Boundedness",
    "CollectionSource",
    "CommitRequest",
    "Committer",
    "DataGeneratorSource",
    "FileSink",
    "FileSource",
    "InputStatus",
    "NumberSequenceSource",
    "PrintSink",
    "RateLimiterStrategy",
    "ReaderOutput",
    "Sink",
    "SinkWriter",
    "SinkWriterContext",
    "Source",
    "SourceReader",
    "SourceReaderContext",
    "SourceSplit",
    "SplitEnumerator",
    "SplitEnumeratorContext",
]


def __getattr__(name: str) -> object:
    # FileSource/FileSink live in strom.connectors.file (imports pyarrow lazily)
    if name in ("FileSource", "FileSink"):
        from strom.connectors import file

        return getattr(file, name)
    msg = f"module 'strom.connectors' has no attribute {name!r}"
    raise AttributeError(msg)
