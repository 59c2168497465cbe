"""The source SPI (Flink's FLIP-27): Source, SourceSplit, SplitEnumerator, SourceReader.

A :class:`Source` is a declarative, picklable factory. At run time the JobManager side
creates one :class:`SplitEnumerator` that discovers :class:`SourceSplit` s and assigns them
to the parallel :class:`SourceReader` s (one per source subtask). A reader is polled by the
task's mailbox loop; each ``poll_next`` call hands a *batch* of records to the
:class:`ReaderOutput` and returns an :class:`InputStatus`.

Checkpoint contract (used by the checkpoint issue): ``SourceReader.snapshot_state`` returns
the reader's current splits with their progress, ``SplitEnumerator.snapshot_state`` the
enumerator's unassigned work; restoring hands both back.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

__all__ = [
    "Boundedness",
    "InputStatus",
    "ReaderOutput",
    "Source",
    "SourceReader",
    "SourceReaderContext",
    "SourceSplit",
    "SplitEnumerator",
    "SplitEnumeratorContext",
]

T = TypeVar("T")
"""The type of records a source produces."""
SplitT = TypeVar("SplitT", bound="SourceSplit")
"""The concrete split type of a source."""
EnumStateT = TypeVar("EnumStateT")
"""The enumerator's checkpoint state type."""


class Boundedness(enum.Enum):
    """Whether a source ends (Flink's ``Boundedness``)."""

    BOUNDED = "bounded"
    CONTINUOUS_UNBOUNDED = "continuous_unbounded"


class InputStatus(enum.Enum):
    """What ``SourceReader.poll_next`` reports (Flink's ``InputStatus``)."""

    MORE_AVAILABLE = "more_available"
    """Call ``poll_next`` again soon: more records are ready."""
    NOTHING_AVAILABLE = "nothing_available"
    """Nothing ready now; the task polls again after a short wait (or when ``is_available``)."""
    END_OF_INPUT = "end_of_input"
    """This reader finished all its splits and will receive no more."""


class SourceSplit(abc.ABC):
    """A unit of source work (a file, a file range, a Kafka partition).

    Splits must be picklable; their fields hold the reader's progress so that a snapshotted
    split resumes exactly where the reader stopped.
    """

    @abc.abstractmethod
    def split_id(self) -> str:
        """A unique, stable string id of this split."""


class ReaderOutput(abc.ABC):
    """Where a :class:`SourceReader` hands records (Flink's ``ReaderOutput``).

    Prefer :meth:`collect_batch`: Strom moves records in batches and per-record calls
    cost a Python function call each.
    """

    @abc.abstractmethod
    def collect(self, value: Any, timestamp_ms: int | None = None) -> None:
        """Emit one record with an optional event timestamp (int epoch ms)."""

    @abc.abstractmethod
    def collect_batch(self, values: list[Any], timestamps_ms: list[int] | None = None) -> None:
        """Emit a batch of records.

        Args:
            values: the records; the list is handed downstream and must not be mutated later.
            timestamps_ms: optional parallel list of event timestamps (int epoch ms).
        """

    def create_output_for_split(self, split_id: str) -> ReaderOutput:
        """Return an output whose records belong to one split (per-split watermarks).

        The default returns ``self``; the runtime overrides it to generate watermarks per split.
        """
        return self

    def release_output_for_split(self, split_id: str) -> None:  # noqa: B027 - optional hook
        """Tell the runtime that a split finished: its watermark no longer holds back time."""

    def emit_watermark(self, watermark: Any) -> None:  # noqa: B027 - optional hook
        """Emit an explicit ``Watermark`` (Flink's ``ReaderOutput`` is a ``WatermarkOutput``).

        Readers rarely need this: the source's ``WatermarkStrategy`` generates watermarks.
        """

    def mark_idle(self) -> None:  # noqa: B027 - optional hook
        """Declare this output idle: it no longer holds back the watermark."""

    def mark_active(self) -> None:  # noqa: B027 - optional hook
        """Declare this output active again after ``mark_idle``."""


class SourceReaderContext(abc.ABC):
    """What a :class:`SourceReader` can ask of its task (Flink's ``SourceReaderContext``)."""

    @abc.abstractmethod
    def index_of_subtask(self) -> int:
        """0-based index of this reader's subtask."""

    @abc.abstractmethod
    def current_parallelism(self) -> int:
        """Number of parallel readers of this source."""

    @abc.abstractmethod
    def send_split_request(self) -> None:
        """Ask the enumerator for a split; it answers with ``add_splits`` or no-more-splits."""

    def send_source_event(self, event: Any) -> None:  # noqa: B027 - optional hook
        """Send a custom event to the enumerator's ``handle_source_event``."""


class SourceReader(abc.ABC, Generic[T, SplitT]):
    """Reads records from the splits assigned to one subtask (Flink's ``SourceReader``).

    Call order: ``start`` -> (``add_splits`` | ``poll_next`` | ``snapshot_state`` |
    ``notify_checkpoint_complete``)* -> ``notify_no_more_splits`` -> ``poll_next`` until
    END_OF_INPUT -> ``close``. All calls come from the task thread; a reader must not block
    for long in ``poll_next`` (return NOTHING_AVAILABLE instead).
    """

    def start(self) -> None:
        """Called once before the first poll."""

    @abc.abstractmethod
    def poll_next(self, output: ReaderOutput) -> InputStatus:
        """Emit the next batch of records (ideally about one batch) and report status."""

    @abc.abstractmethod
    def add_splits(self, splits: list[SplitT]) -> None:
        """Receive splits assigned by the enumerator (or restored from a checkpoint)."""

    @abc.abstractmethod
    def notify_no_more_splits(self) -> None:
        """The enumerator will assign no more splits to this reader."""

    @abc.abstractmethod
    def snapshot_state(self, checkpoint_id: int) -> list[SplitT]:
        """Return the current unfinished splits with their progress."""

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """A checkpoint that included this reader's state completed."""

    def handle_source_event(self, event: Any) -> None:
        """A custom event from the enumerator."""

    def close(self) -> None:
        """Release resources; called once, also after failures."""


class SplitEnumeratorContext(abc.ABC, Generic[SplitT]):
    """What a :class:`SplitEnumerator` can ask of the runtime (Flink's context)."""

    @abc.abstractmethod
    def current_parallelism(self) -> int:
        """Number of parallel readers."""

    @abc.abstractmethod
    def registered_readers(self) -> list[int]:
        """Subtask indices of the readers that registered so far."""

    @abc.abstractmethod
    def assign_split(self, split: SplitT, subtask_id: int) -> None:
        """Assign one split to a reader."""

    @abc.abstractmethod
    def signal_no_more_splits(self, subtask_id: int) -> None:
        """Tell a reader that it will get no more splits."""

    @abc.abstractmethod
    def call_async(
        self,
        callable_: Callable[[], Any],
        handler: Callable[[Any, BaseException | None], None],
        initial_delay_ms: int = 0,
        period_ms: int = 0,
    ) -> None:
        """Run ``callable_`` (off the reader threads), then ``handler(result, error)``.

        With ``period_ms > 0`` it repeats every ``period_ms`` milliseconds (periodic
        discovery, e.g. continuous file monitoring).
        """

    def send_event_to_source_reader(self, subtask_id: int, event: Any) -> None:
        """Deliver a custom event to one reader's ``handle_source_event``."""


class SplitEnumerator(abc.ABC, Generic[SplitT, EnumStateT]):
    """Discovers splits and assigns them to readers (Flink's ``SplitEnumerator``).

    Call order: ``start`` -> (``add_reader`` | ``handle_split_request`` |
    ``add_splits_back`` | ``snapshot_state``)* -> ``close``.
    """

    def start(self) -> None:
        """Called once before readers register."""

    @abc.abstractmethod
    def handle_split_request(self, subtask_id: int, requester_hostname: str | None) -> None:
        """A reader asked for a split."""

    @abc.abstractmethod
    def add_splits_back(self, splits: list[SplitT], subtask_id: int) -> None:
        """Splits of a failed reader come back to be reassigned."""

    @abc.abstractmethod
    def add_reader(self, subtask_id: int) -> None:
        """A reader registered."""

    @abc.abstractmethod
    def snapshot_state(self, checkpoint_id: int) -> EnumStateT:
        """Return the enumerator's state (e.g. unassigned splits) for a checkpoint."""

    def handle_source_event(self, subtask_id: int, event: Any) -> None:
        """A custom event from a reader."""

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """A checkpoint completed."""

    def close(self) -> None:
        """Release resources."""


class Source(abc.ABC, Generic[T, SplitT, EnumStateT]):
    """A declarative, picklable source factory (Flink's ``Source``).

    Used with ``StreamExecutionEnvironment.from_source(source, watermark_strategy, name)``.
    """

    @abc.abstractmethod
    def get_boundedness(self) -> Boundedness:
        """BOUNDED if every reader eventually reaches END_OF_INPUT."""

    @abc.abstractmethod
    def create_reader(self, context: SourceReaderContext) -> SourceReader[T, SplitT]:
        """Create the reader of one subtask."""

    @abc.abstractmethod
    def create_enumerator(
        self, context: SplitEnumeratorContext[SplitT]
    ) -> SplitEnumerator[SplitT, EnumStateT]:
        """Create a fresh enumerator."""

    @abc.abstractmethod
    def restore_enumerator(
        self, context: SplitEnumeratorContext[SplitT], checkpoint: EnumStateT
    ) -> SplitEnumerator[SplitT, EnumStateT]:
        """Re-create the enumerator from its checkpointed state."""

    def get_max_parallelism(self) -> int | None:
        """The largest useful parallelism (e.g. 1 for a non-splittable source), or None."""
        return None


def round_robin_assign(context: SplitEnumeratorContext[SplitT], splits: Sequence[SplitT]) -> None:
    """Helper: assign ``splits`` evenly over the registered readers, in order."""
    readers = sorted(context.registered_readers()) or list(range(context.current_parallelism()))
    for i, split in enumerate(splits):
        context.assign_split(split, readers[i % len(readers)])
