"""Progress lines for long stages: tqdm's counts, rate and time left, written through ``logging``
so that they land in the rule logs.

A terminal progress bar redraws itself with carriage returns, which garble a log file; here each
of tqdm's refreshes becomes one log record instead, at the start, every few percent of the work
and at its end, which reads well both live and afterwards.
"""

from __future__ import annotations

import logging
import math

from tqdm import tqdm

LINE = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) {rate_fmt}, {remaining} left"


class _LogLines:
    """The file tqdm writes to: each refresh becomes one INFO record of ``logger``."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> None:
        line = text.strip()
        if line:
            self.logger.info(line)

    def flush(self) -> None:
        """Nothing to flush: every line is a log record already."""


class Progress(tqdm):
    """Counts work done (``update(n)``) and logs ``what: done/total (pct) rate, time left`` at the
    start, every ``every`` percent and once more when all of it is done."""

    monitor_interval = 0  # no monitor thread: refreshes come from update() alone

    def __init__(self, what: str, total: int, logger: logging.Logger, every: float = 10.0) -> None:
        super().__init__(
            total=total,
            desc=what,
            file=_LogLines(logger),
            bar_format=LINE,
            miniters=max(1, math.ceil(total * every / 100)),
            mininterval=0,
            leave=False,  # close() adds no line: update() shows the last one
        )

    def update(self, n: int = 1) -> bool | None:
        shown = super().update(n)
        if self.n >= self.total:
            if self.last_print_n < self.n:
                self.refresh()
            self.close()
        return shown
