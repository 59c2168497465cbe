"""StatusWatermarkValve: a task's watermark is the min over its active input channels.

Mirrors Flink's ``StatusWatermarkValve``: each channel's watermark is tracked; idle
channels (``WatermarkStatus.IDLE``) and ended channels do not hold back the combined
watermark; the combined watermark only ever advances. When every channel is idle the
valve reports the task idle.
"""

from __future__ import annotations

__all__ = ["StatusWatermarkValve"]

_MIN = -(2**63)


class StatusWatermarkValve:
    """Combines the watermarks of ``num_channels`` input channels.

    Args:
        num_channels: number of input channels.
    """

    def __init__(self, num_channels: int) -> None:
        self.watermarks = [_MIN] * num_channels
        self.idle = [False] * num_channels
        self.ended = [False] * num_channels
        self.last_output = _MIN
        self.output_idle = False

    def input_watermark(self, channel: int, timestamp_ms: int) -> int | None:
        """A watermark arrived on ``channel``; return the new combined watermark or None."""
        if timestamp_ms > self.watermarks[channel]:
            self.watermarks[channel] = timestamp_ms
        if self.idle[channel]:
            self.idle[channel] = False
        return self._combined()

    def input_status(self, channel: int, idle: bool) -> tuple[bool | None, int | None]:
        """A status change on ``channel``.

        Returns:
            (new task idleness or None if unchanged, new combined watermark or None).
        """
        self.idle[channel] = idle
        wm = self._combined()
        all_idle = all(i or e for i, e in zip(self.idle, self.ended))
        change: bool | None = None
        if all_idle != self.output_idle:
            self.output_idle = all_idle
            change = all_idle
        return change, wm

    def channel_ended(self, channel: int) -> int | None:
        """``channel`` finished; return the new combined watermark or None."""
        self.ended[channel] = True
        return self._combined()

    def _combined(self) -> int | None:
        low: int | None = None
        for wm, idle, ended in zip(self.watermarks, self.idle, self.ended):
            if idle or ended:
                continue
            if low is None or wm < low:
                low = wm
        if low is not None and low > self.last_output:
            self.last_output = low
            return low
        return None
