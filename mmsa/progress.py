"""Progress lines for long stages, written through ``logging`` so they land in rule logs.

A terminal progress bar garbles a log file; a line every few percent (and at the end) with
the rate and the time left reads well both live and afterwards.
"""

from __future__ import annotations

import logging
import time


class Progress:
    """Counts work done and logs ``what: done/total (pct) rate, ETA`` every ``every`` percent."""

    def __init__(self, what: str, total: int, logger: logging.Logger, every: float = 10.0) -> None:
        self.what, self.total, self.log, self.every = what, total, logger, every
        self.done = 0
        self.start = time.perf_counter()
        self._next = every

    def update(self, n: int = 1) -> None:
        self.done += n
        percent = 100.0 * self.done / self.total if self.total else 100.0
        if percent + 1e-9 >= self._next or self.done >= self.total:
            elapsed = time.perf_counter() - self.start
            rate = self.done / elapsed if elapsed > 0 else float("inf")
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            self.log.info(
                "%s: %d/%d (%.0f%%) %.1f/s, %.0f s left", self.what, self.done, self.total, percent, rate, eta
            )
            while self._next <= percent:
                self._next += self.every
