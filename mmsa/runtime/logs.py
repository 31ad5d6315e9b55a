"""Logging set-up for stages: one log file per job, and errors written there before exit.

A stage's own log records (logger ``mmsa``) and RDKit's (logger ``rdkit``, where featurization
routes them: :mod:`mmsa.features.interrupts`) go to the job's log file and stderr. A failure the
user can mend (:class:`~mmsa.runtime.errors.InputError`: a config whose bounds let a conformer
run too long, a given model for other features) is one ERROR line and exit status 1; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from mmsa.runtime.errors import InputError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOGGERS = ("mmsa", "rdkit")  # the stages' own, and RDKit's when featurization routes it to Python


@contextmanager
def stage_logging(path: str | os.PathLike | None = None, level: int = logging.INFO) -> Iterator[None]:
    """Send ``mmsa`` log records to ``path`` (and stderr); log any exception before raising it."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    formatter = logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for handler in handlers:
        handler.setFormatter(formatter)
        for logger in loggers:
            logger.addHandler(handler)
    root = loggers[0]
    previous = root.level
    root.setLevel(level)
    try:
        yield
    except InputError as err:
        root.error("stage failed: %s", err)
        raise SystemExit(1) from None
    except Exception:
        root.exception("stage failed")
        raise
    finally:
        root.setLevel(previous)
        for handler in handlers:
            for logger in loggers:
                logger.removeHandler(handler)
            handler.close()
