"""Strom: a stateful stream processor for Python with Apache Flink's model.

Start with :class:`StreamExecutionEnvironment`::

    from strom import StreamExecutionEnvironment
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection(range(10)).map(lambda x: x * 2).print()
    env.execute("doubles")
"""

from strom.datastream import (
    DataStream,
    KeyedStream,
    OutputTag,
    RuntimeExecutionMode,
    StreamExecutionEnvironment,
    WatermarkStrategy,
)

__version__ = "0.1.0"

__all__ = [
    "DataStream",
    "KeyedStream",
    "OutputTag",
    "RuntimeExecutionMode",
    "StreamExecutionEnvironment",
    "WatermarkStrategy",
    "__version__",
]
