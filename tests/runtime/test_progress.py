"""Progress lines: one log record at the start, every few percent and at the end, without carriage
returns."""

import logging

from mmsa.runtime.progress import Progress


def test_progress_logs_a_line_every_few_percent_and_at_the_end(caplog):
    log = logging.getLogger("mmsa.test_progress")
    with caplog.at_level(logging.INFO, logger=log.name):
        progress = Progress("work", 10, log, every=50)
        for _ in range(3):
            progress.update(3)
        progress.update(1)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" (")[0] for line in lines] == ["work: 0/10", "work: 6/10", "work: 10/10"], lines
    assert "(100%)" in lines[-1] and all("\r" not in line and "\n" not in line for line in lines)
