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
    FilterFunction,
    FlatMapFunction,
    Function,
    KeyedProcessFunction,
    KeySelector,
    MapFunction,
    ProcessFunction,
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

__all__ = [
    "Accumulator",
    "AggregateFunction",
    "CloseableIterator",
    "DataStream",
    "DataStreamSink",
    "DoubleCounter",
    "FilterFunction",
    "FlatMapFunction",
    "Function",
    "IntCounter",
    "JobClient",
    "JobExecutionResult",
    "JobStatus",
    "KeySelector",
    "KeyedProcessFunction",
    "KeyedStream",
    "ListAccumulator",
    "MapFunction",
    "OutputTag",
    "ProcessFunction",
    "ReduceFunction",
    "RuntimeContext",
    "RuntimeExecutionMode",
    "StreamExecutionEnvironment",
    "TimeDomain",
    "TimerService",
    "TimestampAssigner",
    "ValueState",
    "ValueStateDescriptor",
    "Watermark",
    "WatermarkGenerator",
    "WatermarkOutput",
    "WatermarkStrategy",
]
