"""A Ctrl-C that RDKit swallows, made to stop the job.

RDKit (2026.09) catches SIGINT itself while ETKDG embeds a molecule: it cancels the call, logs
"Interrupted, cancelling conformer generation", and ``EmbedMolecule`` returns -1 as for a failed
attempt, raising nothing, in the main thread or any other. Unwatched, a Ctrl-C during
featurization was lost: the attempt loop went on with the next seed, the molecule got a conformer
that depended on when the key was pressed, it went into the shared feature cache, and the command
ended with status 0. That log line is the only trace, so while molecules are featurized RDKit's
log goes to Python's logging (logger ``rdkit``, printed as every other log line), where a handler
watches for it; the featurizer then raises :class:`KeyboardInterrupt`, which stops the job before
its features reach the cache (a pack is published only when every chunk is done).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rdkit import rdBase

RDKIT_INTERRUPTED = "Interrupted, cancelling"  # the start of RDKit's line for a caught SIGINT
_interrupted = threading.Event()  # a process that saw Ctrl-C is ending: never cleared


class _Watch(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if RDKIT_INTERRUPTED in record.getMessage():
            _interrupted.set()


@contextmanager
def watched_rdkit() -> Iterator[None]:
    """RDKit's log routed to Python's logging and watched for a swallowed Ctrl-C in the block."""
    rdBase.LogToPythonLogger()
    logger = logging.getLogger("rdkit")
    watch = _Watch()
    logger.addHandler(watch)
    try:
        yield
    finally:
        logger.removeHandler(watch)


def raise_if_interrupted() -> None:
    """:class:`KeyboardInterrupt` if RDKit swallowed a Ctrl-C in this process."""
    if _interrupted.is_set():
        raise KeyboardInterrupt("Ctrl-C during RDKit's conformer embedding")
