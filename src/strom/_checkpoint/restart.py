"""Restart strategies at run time (Flink's ``RestartBackoffTimeStrategy``).

Built from a ``RestartStrategyConfiguration``; the JobMaster asks
``can_restart()`` after each failure and waits ``backoff_ms()`` before restarting.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from strom.datastream.checkpoint_config import RestartStrategyConfiguration

__all__ = ["RestartBackoffTimeStrategy", "create_restart_strategy"]


class RestartBackoffTimeStrategy:
    """Decides whether and when a failed job restarts.

    Args:
        config: the strategy descriptor.
        clock: monotonic time in ms.
        rng: randomness for jitter.
    """

    def __init__(
        self,
        config: RestartStrategyConfiguration,
        clock: Callable[[], int],
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.failures = 0
        self._times: deque[int] = deque()
        self._backoff = 0
        self._last_failure: int | None = None

    def notify_failure(self) -> None:
        """Record a failure (call before ``can_restart``)."""
        now = self.clock()
        c = self.config
        if c.kind == "exponential_delay":
            if self._last_failure is not None and now - self._last_failure >= c.get("reset_ms"):
                self._backoff = 0
                self.failures = 0
            self._backoff = (
                c.get("initial_ms") if self._backoff == 0
                else min(int(self._backoff * c.get("multiplier")), c.get("max_ms"))
            )
        self.failures += 1
        self._last_failure = now
        self._times.append(now)

    def can_restart(self) -> bool:
        """True if the strategy allows another restart."""
        c = self.config
        if c.kind == "no_restart":
            return False
        if c.kind == "fixed_delay":
            return self.failures <= int(c.get("attempts"))
        if c.kind == "exponential_delay":
            attempts = c.get("attempts")
            return attempts is None or self.failures <= int(attempts)
        if c.kind == "failure_rate":
            now = self.clock()
            while self._times and now - self._times[0] > c.get("interval_ms"):
                self._times.popleft()
            return len(self._times) <= int(c.get("max_failures"))
        return False

    def backoff_ms(self) -> int:
        """How long to wait before the restart."""
        c = self.config
        if c.kind in ("fixed_delay", "failure_rate"):
            return int(c.get("delay_ms"))
        if c.kind == "exponential_delay":
            jitter = c.get("jitter") * self._backoff
            return max(0, int(self._backoff + self.rng.uniform(-jitter, jitter)))
        return 0


def create_restart_strategy(
    config: RestartStrategyConfiguration | None, clock: Callable[[], int]
) -> RestartBackoffTimeStrategy:
    """The runtime strategy for ``config`` (None = no restart)."""
    from strom.datastream.checkpoint_config import RestartStrategies

    return RestartBackoffTimeStrategy(config or RestartStrategies.no_restart(), clock)
