"""StreamExecutionEnvironment: the entry point of every Strom job.

Mirrors Flink's ``StreamExecutionEnvironment``: configure parallelism, runtime mode and
buffering, create sources, then ``execute()`` (the only door into a runtime; building a
pipeline never starts a thread or opens a file).
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from strom._graph.transformation import SourceTransformation, Transformation
from strom.config import Configuration
from strom.datastream.checkpoint_config import (
    CheckpointConfig,
    CheckpointingMode,
    RestartStrategyConfiguration,
)
from strom.datastream.data_stream import DataStream
from strom.datastream.execution import JobClient, JobExecutionResult, RuntimeExecutionMode
from strom.errors import ConfigurationError, InvalidProgramError

if TYPE_CHECKING:
    from strom._graph.job_graph import JobGraph
    from strom.connectors.source import Source
    from strom.datastream.watermark import WatermarkStrategy

__all__ = ["StreamExecutionEnvironment"]

DEFAULT_JOB_NAME = "Strom Streaming Job"


class StreamExecutionEnvironment:
    """The context in which a streaming (or batch) program is built and executed.

    Args:
        configuration: optional initial configuration (``strom.config.Configuration`` or a
            mapping of option keys to values).
    """

    def __init__(self, configuration: Configuration | dict[str, Any] | None = None) -> None:
        if isinstance(configuration, Configuration):
            self._config = configuration.copy()
        else:
            self._config = Configuration(configuration)
        self._transformations: list[Transformation] = []
        self._job_parameters: dict[str, str] = {}
        self._checkpoint_config = CheckpointConfig()
        self._restart_strategy: RestartStrategyConfiguration | None = None
        self._savepoint_restore: tuple[str, bool] | None = None
        # `strom run --from-savepoint PATH [--allow-non-restored-state]` (see strom.cli)
        if path := os.environ.get("STROM_SAVEPOINT_RESTORE"):
            allow = os.environ.get("STROM_ALLOW_NON_RESTORED_STATE", "") in ("1", "true")
            self._savepoint_restore = (path, allow)

    @staticmethod
    def get_execution_environment(
        configuration: Configuration | dict[str, Any] | None = None,
    ) -> StreamExecutionEnvironment:
        """Create an environment that runs jobs on the embedded local runtime."""
        return StreamExecutionEnvironment(configuration)

    # -- configuration --------------------------------------------------------------------
    def get_config(self) -> Configuration:
        """The job configuration (mutable through its ``set``)."""
        return self._config

    def configure(self, key: str, value: Any) -> StreamExecutionEnvironment:
        """Set any configuration option by key (see ``strom.config.DEFAULTS``)."""
        self._config.set(key, value)
        return self

    def set_parallelism(self, parallelism: int) -> StreamExecutionEnvironment:
        """Default parallelism of operators that do not set their own.

        Raises:
            ConfigurationError: not an int >= 1.
        """
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            msg = f"parallelism must be an int >= 1, got {parallelism!r}"
            raise ConfigurationError(msg)
        self._config.set("parallelism.default", parallelism)
        return self

    def get_parallelism(self) -> int:
        """The default parallelism."""
        return self._config.get_int("parallelism.default")

    def set_max_parallelism(self, max_parallelism: int) -> StreamExecutionEnvironment:
        """Number of key groups (upper bound of parallelism for keyed state), 1..32768.

        Raises:
            ConfigurationError: out of range.
        """
        if (
            isinstance(max_parallelism, bool)
            or not isinstance(max_parallelism, int)
            or not 1 <= max_parallelism <= 32768
        ):
            msg = f"max parallelism must be an int in [1, 32768], got {max_parallelism!r}"
            raise ConfigurationError(msg)
        self._config.set("pipeline.max-parallelism", max_parallelism)
        return self

    def get_max_parallelism(self) -> int:
        """The number of key groups."""
        return self._config.get_int("pipeline.max-parallelism")

    def set_runtime_mode(self, mode: RuntimeExecutionMode) -> StreamExecutionEnvironment:
        """STREAMING, BATCH (bounded sources only) or AUTOMATIC.

        Raises:
            ConfigurationError: not a RuntimeExecutionMode.
        """
        if not isinstance(mode, RuntimeExecutionMode):
            msg = f"set_runtime_mode() needs a RuntimeExecutionMode, got {mode!r}"
            raise ConfigurationError(msg)
        self._config.set("execution.runtime-mode", mode.value)
        return self

    def set_buffer_timeout(self, timeout_millis: int | timedelta) -> StreamExecutionEnvironment:
        """Max time (ms) a partly filled output buffer waits before it is sent.

        0 sends after every emitted batch (lowest latency); -1 only sends full buffers.

        Raises:
            ConfigurationError: below -1.
        """
        if isinstance(timeout_millis, timedelta):
            timeout_millis = int(timeout_millis.total_seconds() * 1000)
        if (
            isinstance(timeout_millis, bool)
            or not isinstance(timeout_millis, int)
            or (timeout_millis < -1)
        ):
            msg = f"buffer timeout must be an int >= -1 (ms), got {timeout_millis!r}"
            raise ConfigurationError(msg)
        self._config.set("execution.buffer-timeout", timeout_millis)
        return self

    def get_buffer_timeout(self) -> int:
        """The buffer timeout in ms."""
        return self._config.get_int("execution.buffer-timeout")

    def set_state_backend(self, state_backend: Any) -> StreamExecutionEnvironment:
        """Choose where keyed state lives: ``HashMapStateBackend()`` (default) or
        ``EmbeddedRocksDBStateBackend(...)`` from ``strom.datastream.state_backend``.

        Raises:
            ConfigurationError: not a state backend descriptor.
        """
        to_config = getattr(state_backend, "to_config", None)
        if to_config is None:
            msg = (
                f"set_state_backend() needs a state backend descriptor such as "
                f"HashMapStateBackend(), got {state_backend!r}"
            )
            raise ConfigurationError(msg)
        for key, value in to_config().items():
            self._config.set(key, value)
        return self

    def enable_checkpointing(
        self,
        interval: timedelta | int,
        mode: CheckpointingMode = CheckpointingMode.EXACTLY_ONCE,
    ) -> StreamExecutionEnvironment:
        """Take a checkpoint every ``interval`` (timedelta or ms) in ``mode``.

        Raises:
            ConfigurationError: a non-positive interval or an unknown mode.
        """
        self._checkpoint_config.set_checkpoint_interval(interval)
        self._checkpoint_config.set_checkpointing_mode(mode)
        return self

    def get_checkpoint_config(self) -> CheckpointConfig:
        """The checkpoint settings (mutable, Flink style)."""
        return self._checkpoint_config

    def get_checkpoint_interval(self) -> int:
        """The checkpoint interval in ms (-1 when disabled)."""
        return self._checkpoint_config.get_checkpoint_interval()

    def set_restart_strategy(
        self, restart_strategy_configuration: RestartStrategyConfiguration
    ) -> StreamExecutionEnvironment:
        """How the job restarts after failures (``RestartStrategies.fixed_delay_restart``,
        ...). Default: no restart.

        Raises:
            ConfigurationError: not a restart strategy descriptor.
        """
        if not isinstance(restart_strategy_configuration, RestartStrategyConfiguration):
            msg = (
                "set_restart_strategy() needs a RestartStrategies.* descriptor, got "
                f"{restart_strategy_configuration!r}"
            )
            raise ConfigurationError(msg)
        self._restart_strategy = restart_strategy_configuration
        return self

    def get_restart_strategy(self) -> RestartStrategyConfiguration | None:
        """The configured restart strategy (None = no restart)."""
        return self._restart_strategy

    def set_savepoint_restore(
        self, path: str, allow_non_restored_state: bool = False
    ) -> StreamExecutionEnvironment:
        """Start the next job from a savepoint or retained checkpoint at ``path`` (Flink's
        ``execution.savepoint.path``); state is matched to operators by uid.

        Args:
            path: the savepoint/checkpoint directory or its ``_metadata`` file.
            allow_non_restored_state: tolerate state of uids missing from the job.
        """
        self._savepoint_restore = (str(path), bool(allow_non_restored_state))
        return self

    def disable_operator_chaining(self) -> StreamExecutionEnvironment:
        """Run every operator as its own task (for debugging)."""
        self._config.set("pipeline.operator-chaining", False)
        return self

    def set_global_job_parameters(self, parameters: dict[str, str]) -> StreamExecutionEnvironment:
        """Parameters readable via ``RuntimeContext.get_job_parameter``."""
        self._job_parameters.update({str(k): str(v) for k, v in parameters.items()})
        return self

    # -- sources --------------------------------------------------------------------------
    def _add(self, t: Transformation) -> None:
        self._transformations.append(t)

    def from_source(
        self,
        source: Source[Any, Any, Any],
        watermark_strategy: WatermarkStrategy[Any] | None = None,
        source_name: str = "Source",
    ) -> DataStream:
        """Create a stream from a FLIP-27 ``Source``.

        Args:
            source: the source.
            watermark_strategy: timestamps and watermarks; None or
                ``WatermarkStrategy.no_watermarks()`` for none.
            source_name: display name.

        Raises:
            InvalidProgramError: ``source`` is not a ``Source``.
        """
        from strom.connectors.source import Source

        if not isinstance(source, Source):
            msg = (
                f"from_source() needs a strom.connectors.source.Source, got "
                f"{type(source).__name__}; for a Python iterable use from_collection()"
            )
            raise InvalidProgramError(msg)
        t = SourceTransformation(
            name=source_name, source=source, watermark_strategy=watermark_strategy
        )
        self._add(t)
        return DataStream(self, t)

    def from_collection(self, collection: Iterable[Any], type_info: Any = None) -> DataStream:
        """Create a bounded, non-parallel stream from an iterable (materialised once).

        Raises:
            InvalidProgramError: ``collection`` is not iterable.
        """
        from strom.connectors.collection import CollectionSource

        try:
            data = list(collection)
        except TypeError as e:
            msg = f"from_collection() needs an iterable, got {type(collection).__name__}"
            raise InvalidProgramError(msg) from e
        return self.from_source(CollectionSource(data), None, "Collection Source")

    def from_sequence(self, start: int, end: int) -> DataStream:
        """A parallel, bounded stream of the ints ``start..end`` inclusive."""
        from strom.connectors.collection import NumberSequenceSource

        return self.from_source(NumberSequenceSource(start, end), None, "Sequence Source")

    # -- execution ------------------------------------------------------------------------
    def get_job_graph(self, job_name: str = DEFAULT_JOB_NAME) -> JobGraph:
        """Translate the current program to a JobGraph (chained plan).

        Raises:
            InvalidProgramError: the program is invalid (no sink, duplicate uid, ...).
        """
        from strom._graph.job_graph import JobGraph
        from strom._graph.stream_graph import StreamGraph

        sg = StreamGraph.generate(self._transformations, job_name, dict(self._config))
        jg = JobGraph.from_stream_graph(sg)
        jg.checkpoint_config = self._checkpoint_config.to_dict()
        # operators (2PC sinks) must know whether commits wait for checkpoints
        jg.config["execution.checkpointing.interval"] = jg.checkpoint_config["interval_ms"]
        jg.restart_strategy = self._restart_strategy
        jg.savepoint_restore = self._savepoint_restore
        return jg

    def get_execution_plan(self) -> str:
        """The chained plan as JSON, in the format of Flink's plan (``/jobs/{id}/plan``):
        ``{"jid", "name", "type", "nodes": [{"id", "parallelism", "description",
        "operators": [...], "inputs": [{"id", "ship_strategy", ...}]}]}``; each node is one
        task (an operator chain)."""
        return self.get_job_graph().to_plan_json()

    def execute(self, job_name: str | None = None) -> JobExecutionResult:
        """Run the job on the embedded runtime and wait for it to finish.

        Raises:
            InvalidProgramError: the program is invalid.
            JobExecutionError: the job failed (the task failure is chained as __cause__).
        """
        client = self._start(job_name, background=False)
        return client.get_job_execution_result()

    def execute_async(self, job_name: str | None = None) -> JobClient:
        """Start the job on a background thread and return its ``JobClient``.

        Raises:
            InvalidProgramError: the program is invalid.
        """
        return self._start(job_name, background=True)

    def _start(self, job_name: str | None, background: bool) -> JobClient:
        jg = self.get_job_graph(job_name or DEFAULT_JOB_NAME)
        self._transformations = []
        # The runtime is loaded here, at execute() time, by name: the public API has no
        # static dependency on the runtime packages (import-linter contract). Parallelism
        # 1 everywhere runs in this process; otherwise on TaskManager processes.
        executors = importlib.import_module("strom._executors.cluster")
        client: JobClient = executors.start_job(
            jg, uuid.uuid4().hex, self._job_parameters, background
        )
        return client
