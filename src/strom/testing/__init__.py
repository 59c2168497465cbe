"""Test utilities shipped with Strom (Bytewax's ``testing`` in Flink's vocabulary).

- :class:`TestingSource`: a bounded source over a list whose items may include explicit
  ``Watermark`` s and the markers :attr:`TestingSource.EOF` (end the input here) and
  :attr:`TestingSource.ABORT` (fail the job here once, to test recovery).
- :class:`TestingSink`: collects every record into a list.
- :class:`OneInputOperatorTestHarness`: drives one operator directly (elements,
  watermarks, processing time, snapshot and restore); :class:`ManualClock` moves time.

Example::

    out = TestingSink()
    env.from_source(TestingSource([1, 2, 3]), None, "in").map(lambda x: x * 2).sink_to(out)
    env.execute()
    assert out.results == [2, 4, 6]
"""

from strom.testing.clock import ManualClock
from strom.testing.harness import OneInputOperatorTestHarness
from strom.testing.sources import TestingAbortError, TestingSink, TestingSource

__all__ = [
    "ManualClock",
    "OneInputOperatorTestHarness",
    "TestingAbortError",
    "TestingSink",
    "TestingSource",
]
