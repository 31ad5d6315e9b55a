"""One line for a write the file system refused without naming the file.

Zarr and pyarrow raise a bare ``OSError: [Errno 28] No space left on device`` when the feature
cache or a temporary folder fills up, naming no path; the command used to end in their traceback.
The line instead names every place the command writes (the feature cache, the temporary folder,
the outputs' folder) with the space left on each, so the user sees which one is full.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping

from mmsa.runtime.io import existing_folder

WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}  # the disk, a quota, a read-only mount


def _free(path: str | os.PathLike) -> str:
    """The space left on the file system holding ``path`` (its nearest existing folder)."""
    stats = os.statvfs(existing_folder(path))
    left = float(stats.f_bavail * stats.f_frsize)
    unit = "bytes"
    for bigger in ("KiB", "MiB", "GiB"):
        if left < 1024:
            break
        left, unit = left / 1024, bigger
    return f"{left:.0f} {unit}" if unit == "bytes" else f"{left:.1f} {unit}"


def write_failure(err: OSError, places: Mapping[str, str | os.PathLike]) -> str | None:
    """The line for ``err`` if it is a refused write (:data:`WRITE_ERRORS`), naming each of
    ``places`` (what -> path) with its free space; ``None`` for any other error."""
    if err.errno not in WRITE_ERRORS:
        return None
    where = "; ".join(f"{name} {path}: {_free(path)} free" for name, path in places.items())
    return (
        f"a write failed ({err.strerror}); this command writes to {where}. Free space there, or set "
        "cache_dir or TMPDIR to another disk"
    )
