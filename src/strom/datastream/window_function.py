"""Window functions (Flink's ``ProcessWindowFunction``, ``ProcessAllWindowFunction``,
``WindowFunction``, ``AllWindowFunction``). Re-exported by ``strom.datastream.window``."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from strom.datastream.functions import Function

if TYPE_CHECKING:
    from strom.datastream.output_tag import OutputTag
    from strom.datastream.window import Window

__all__ = [
    "AllWindowFunction",
    "ProcessAllWindowFunction",
    "ProcessWindowFunction",
    "WindowFunction",
]

W = TypeVar("W", bound="Window")
"""The window type."""
IN = TypeVar("IN")
"""Input record type."""
OUT = TypeVar("OUT")
"""Output record type."""
KEY = TypeVar("KEY")
"""Key type."""


class ProcessWindowFunction(Function, Generic[IN, OUT, KEY, W]):
    """Evaluates a window with full context (Flink's ``ProcessWindowFunction``)."""

    class Context(abc.ABC):
        """Context of one window evaluation; valid only during the call."""

        @abc.abstractmethod
        def window(self) -> Any:
            """The window being evaluated."""

        @abc.abstractmethod
        def current_processing_time(self) -> int:
            """Now, epoch ms."""

        @abc.abstractmethod
        def current_watermark(self) -> int:
            """The current watermark, epoch ms."""

        @abc.abstractmethod
        def window_state(self) -> Any:
            """Keyed state scoped to this key and window (``get_state(descriptor)``...)."""

        @abc.abstractmethod
        def global_state(self) -> Any:
            """Keyed state of this key across windows."""

        @abc.abstractmethod
        def output(self, output_tag: OutputTag, value: Any) -> None:
            """Emit to a side output."""

    @abc.abstractmethod
    def process(
        self, key: KEY, context: ProcessWindowFunction.Context, elements: Iterable[IN]
    ) -> Iterable[OUT] | None:
        """Yield the results for one key and window."""

    def clear(self, context: ProcessWindowFunction.Context) -> None:
        """The window is purged: delete per-window state kept in ``window_state()``."""


class ProcessAllWindowFunction(Function, Generic[IN, OUT, W]):
    """Evaluates a non-keyed window (``window_all``) with context."""

    Context = ProcessWindowFunction.Context

    @abc.abstractmethod
    def process(
        self, context: ProcessWindowFunction.Context, elements: Iterable[IN]
    ) -> Iterable[OUT] | None:
        """Yield the results for one window."""

    def clear(self, context: ProcessWindowFunction.Context) -> None:
        """The window is purged."""


class WindowFunction(Function, Generic[IN, OUT, KEY, W]):
    """The older window function without context (Flink's ``WindowFunction``, ``apply``)."""

    @abc.abstractmethod
    def apply(self, key: KEY, window: W, inputs: Iterable[IN]) -> Iterable[OUT] | None:
        """Yield the results for one key and window."""


class AllWindowFunction(Function, Generic[IN, OUT, W]):
    """``WindowFunction`` for ``window_all``."""

    @abc.abstractmethod
    def apply(self, window: W, inputs: Iterable[IN]) -> Iterable[OUT] | None:
        """Yield the results for one window."""
