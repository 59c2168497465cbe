"""Strom's DataStream API (Flink's ``pyflink.datastream`` in Python).

Key classes:

- :class:`StreamExecutionEnvironment`: entry point; sources, configuration, ``execute``.
- :class:`DataStream` / :class:`KeyedStream`: the fluent transformation API.
- Functions: :class:`MapFunction`, :class:`FlatMapFunction`, :class:`FilterFunction`,
  :class:`KeySelector`, :class:`ReduceFunction`, :class:`ProcessFunction`,
  :class:`KeyedProcessFunction`, :class:`RuntimeContext` (plain callables work too).
- Time: :class:`WatermarkStrategy`, :class:`Watermark`, :class:`TimestampAssigner`.
- :class:`OutputTag` for side outputs; :class:`RuntimeExecutionMode`, :class:`JobClient`,
  :class:`JobExecutionResult`, :class:`JobStatus`.
"""

from strom.datastream.accumulators import Accumulator, DoubleCounter, IntCounter, ListAccumulator
from strom.datastream.checkpoint_config import (
    CheckpointConfig,
    CheckpointingMode,
    ExternalizedCheckpointRetention,
    RestartStrategies,
)
from strom.datastream.connected_streams import (
    BroadcastConnectedStream,
    BroadcastStream,
    CoGroupedStreams,
    ConnectedStreams,
    IntervalJoin,
    JoinedStreams,
)
from strom.datastream.data_stream import CloseableIterator, DataStream, DataStreamSink, KeyedStream
from strom.datastream.environment import StreamExecutionEnvironment
from strom.datastream.execution import (
    JobClient,
    JobExecutionResult,
    JobStatus,
    RuntimeExecutionMode,
)
from strom.datastream.functions import (
    AggregateFunction,
    BroadcastProcessFunction,
    CoFlatMapFunction,
    CoGroupFunction,
    CoMapFunction,
    CoProcessFunction,
    FilterFunction,
    FlatMapFunction,
    Function,
    JoinFunction,
    KeyedBroadcastProcessFunction,
    KeyedCoProcessFunction,
    KeyedProcessFunction,
    KeySelector,
    MapFunction,
    ProcessFunction,
    ProcessJoinFunction,
    ReduceFunction,
    RuntimeContext,
    TimerService,
)
from strom.datastream.output_tag import OutputTag
from strom.datastream.state import ValueState, ValueStateDescriptor
from strom.datastream.watermark import (
    TimeDomain,
    TimestampAssigner,
    Watermark,
    WatermarkGenerator,
    WatermarkOutput,
    WatermarkStrategy,
)
from strom.datastream.window import (
    CountTrigger,
    EventTimeSessionWindows,
    EventTimeTrigger,
    GlobalWindows,
    ProcessAllWindowFunction,
    ProcessWindowFunction,
    SlidingEventTimeWindows,
    TimeWindow,
    Trigger,
    TriggerResult,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
    WindowAssigner,
)
from strom.datastream.windowed_stream import AllWindowedStream, WindowedStream

__all__ = [
    "Accumulator",
    "AggregateFunction",
    "AllWindowedStream",
    "BroadcastConnectedStream",
    "BroadcastProcessFunction",
    "BroadcastStream",
    "CheckpointConfig",
    "CheckpointingMode",
    "CloseableIterator",
    "CoFlatMapFunction",
    "CoGroupFunction",
    "CoGroupedStreams",
    "CoMapFunction",
    "CoProcessFunction",
    "ConnectedStreams",
    "CountTrigger",
    "DataStream",
    "DataStreamSink",
    "DoubleCounter",
    "EventTimeSessionWindows",
    "EventTimeTrigger",
    "ExternalizedCheckpointRetention",
    "FilterFunction",
    "FlatMapFunction",
    "Function",
    "GlobalWindows",
    "IntCounter",
    "IntervalJoin",
    "JobClient",
    "JobExecutionResult",
    "JobStatus",
    "JoinFunction",
    "JoinedStreams",
    "KeySelector",
    "KeyedBroadcastProcessFunction",
    "KeyedCoProcessFunction",
    "KeyedProcessFunction",
    "KeyedStream",
    "ListAccumulator",
    "MapFunction",
    "OutputTag",
    "ProcessAllWindowFunction",
    "ProcessFunction",
    "ProcessJoinFunction",
    "ProcessWindowFunction",
    "ReduceFunction",
    "RestartStrategies",
    "RuntimeContext",
    "RuntimeExecutionMode",
    "SlidingEventTimeWindows",
    "StreamExecutionEnvironment",
    "TimeDomain",
    "TimeWindow",
    "TimerService",
    "TimestampAssigner",
    "Trigger",
    "TriggerResult",
    "TumblingEventTimeWindows",
    "TumblingProcessingTimeWindows",
    "ValueState",
    "ValueStateDescriptor",
    "Watermark",
    "WatermarkGenerator",
    "WatermarkOutput",
    "WatermarkStrategy",
    "WindowAssigner",
    "WindowedStream",
]
