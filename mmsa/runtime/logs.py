"""Logging set-up for stages: one log file per job, and errors written there before exit."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def stage_logging(path: str | os.PathLike | None = None, level: int = logging.INFO) -> Iterator[None]:
    """Send ``mmsa`` log records to ``path`` (and stderr); log any exception before raising it."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    formatter = logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    root = logging.getLogger("mmsa")
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    previous = root.level
    root.setLevel(level)
    try:
        yield
    except Exception:
        root.exception("stage failed")
        raise
    finally:
        root.setLevel(previous)
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
