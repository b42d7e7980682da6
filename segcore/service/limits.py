"""Limits of the membership service: request rate per token, request size, batch sizes,
ad-hoc evaluation time and size (docs/service.md, "Limits")."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for.

    Attributes
    ----------
    rate, burst
        Requests per second per token (sustained) and how many may come at once.
    limit_loopback
        Also rate-limit clients on this computer (loopback addresses). Off by default: a
        bot or sync job next to the server is load, not abuse. Behind a proxy on the same
        computer that does not send ``X-Forwarded-For``, turn it on.
    max_body
        Largest request body, in bytes.
    max_batch
        Most user ids in one batch lookup.
    max_page
        Most members in one page.
    max_rule
        Longest ad-hoc rule text, in characters.
    eval_seconds
        An ad-hoc evaluation answers within this time or is refused.
    eval_members
        Most member ids an ad-hoc evaluation returns (the count is always exact).
    eval_workers
        Ad-hoc evaluations running at once (more wait; twice as many are refused).
    """

    rate: float = 200.0
    burst: int = 400
    limit_loopback: bool = False
    max_body: int = 1 << 20
    max_batch: int = 1000
    max_page: int = 10_000
    max_rule: int = 10_000
    eval_seconds: float = 10.0
    eval_members: int = 100_000
    eval_workers: int = 2


class RateLimiter:
    """A token bucket per key: ``rate`` per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = float(rate)
        self.burst = float(max(burst, 1))
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait(self, key: str) -> float:
        """0 if a request of ``key`` may go now (and take one unit), else seconds to wait."""
        now = self.clock()
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate
