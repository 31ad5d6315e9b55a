"""The files one command writes for the user: an output file and the tables beside it (its
rejects, its neighbours), checked before any work and published together.

``--out`` is the one path a user hands ``mmsa embed`` or ``mmsa predict`` to be written, and a
slip there (the input's name, the model's, ``/dev/null``, a folder) must not cost them a file.
So every path of the set is checked before torch is imported or a molecule is read: it is new or
a regular file that is none of the command's inputs (through links too) and holds no model, its
name does not claim another format than the one written, and its folder takes a write. Then the
set is published as one: every member is written under a temporary name first and renamed into
place only when all were written, and a member this invocation does not write (no neighbours
asked for, no output because no row was usable) is removed, so no file of an earlier invocation
is left beside the new ones to be read as theirs.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from mmsa.runtime.errors import InputError
from mmsa.runtime.io import atomic_path, existing_folder

TORCH_ARCHIVE_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
# Name endings that say what a file holds; an output may not claim another format than its own.
FORMATS = {
    ".csv": "CSV",
    ".tsv": "TSV",
    ".txt": "text",
    ".json": "JSON",
    ".parquet": "Parquet",
    ".pt": "a torch model",
    ".pth": "a torch model",
    ".gz": "gzip",
    ".zip": "a zip archive",
    ".sdf": "SDF",
    ".smi": "SMILES",
    ".xlsx": "a spreadsheet",
    ".yaml": "YAML",
}
PROBE_BYTES = 65_536  # written and removed beside the output: a full or read-only disk says so now
Writer = Callable[[Path], None]


class OutputError(InputError):
    """An output path that would destroy a file or cannot be written."""


@dataclass(frozen=True)
class OutputSet:
    """The output file (``out``, in ``format`` such as ``.parquet``) and the side files of the
    same invocation, each named ``<out><suffix>``."""

    out: Path
    format: str
    suffixes: tuple[str, ...]

    def side(self, suffix: str) -> Path:
        """A side file: the output's whole name with ``suffix`` added, so distinct outputs
        (``p.v1.csv``, ``p.v2.csv``) never share one."""
        return self.out.with_name(self.out.name + suffix)

    @property
    def members(self) -> list[Path]:
        return [self.out, *(self.side(s) for s in self.suffixes)]

    def publish(self, writers: Mapping[Path, Writer]) -> None:
        """Write the members in ``writers`` (``writer(temporary path)``), rename them into place
        once all were written, and remove the members not in ``writers``. A member that cannot
        be written (a full disk) is an :class:`OutputError` naming it; then nothing of this
        invocation is left, and the set of an earlier one is untouched."""
        unknown = set(writers) - set(self.members)
        if unknown:
            raise ValueError(f"not members of the output set of {self.out}: {sorted(map(str, unknown))}")
        with ExitStack() as stack:  # each temporary is renamed as the stack closes without error
            for path, write in writers.items():
                tmp = stack.enter_context(atomic_path(path))
                try:
                    write(tmp)
                except OSError as err:
                    raise OutputError(f"--out {path}: cannot be written ({err.strerror or err})") from None
        for path in self.members:
            if path not in writers:
                path.unlink(missing_ok=True)


def output_set(
    out: str | os.PathLike,
    format: str,
    suffixes: Sequence[str],
    inputs: Mapping[str, str | os.PathLike | None],
) -> OutputSet:
    """The checked output set of ``--out out`` (see the module's docstring), or an
    :class:`OutputError` naming what is wrong. ``inputs`` names the command's input paths by
    their option (``{"the SMILES file": ..., "--model": ...}``; ``None`` for one not given)."""
    text = os.fspath(out)
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise OutputError(f"--out {text}: names a folder; give the name of the file to write")
    path = Path(text)
    outputs = OutputSet(path, format, tuple(suffixes))
    for member in outputs.members:
        _check_member(member, inputs)
    claimed = FORMATS.get(path.suffix.lower())
    if claimed and path.suffix.lower() != format:
        raise OutputError(
            f"--out {text}: the name says {claimed}, but this command writes {FORMATS[format]}; "
            f"give a name ending in {format}"
        )
    _probe_folder(path)
    return outputs


def _check_member(member: Path, inputs: Mapping[str, str | os.PathLike | None]) -> None:
    for option, given in inputs.items():
        if given is not None and _same_file(member, Path(given)):
            what = f"{option} {given}, an input of the command"
            raise OutputError(f"--out {member}: is {what}; name a new file")
    if not os.path.lexists(member):
        return
    try:
        mode = os.stat(member).st_mode
    except OSError as err:  # a dangling or looping link: nothing to lose, but say so
        reason = f"a link that leads nowhere ({err.strerror})"
        raise OutputError(f"--out {member}: {reason}; name another file") from None
    if stat.S_ISDIR(mode):
        raise OutputError(f"--out {member}: a folder; give the name of the file to write")
    if not stat.S_ISREG(mode):
        raise OutputError(f"--out {member}: {_kind(mode)}, not a regular file; mmsa writes regular files")
    if _starts_with(member, TORCH_ARCHIVE_MAGIC):
        raise OutputError(f"--out {member}: holds a model (a torch archive); mmsa does not overwrite models")


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode, or the same path through links."""
    try:
        if os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISFIFO: "a named pipe",
        stat.S_ISSOCK: "a socket",
    }
    return next((name for test, name in kinds.items() if test(mode)), "a special file")


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


def _probe_folder(out: Path) -> None:
    """Write :data:`PROBE_BYTES` beside ``out`` (in its nearest existing folder) and remove them:
    a folder that takes no write fails here, before any work, not at the end."""
    folder = existing_folder(out.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=".tmp-probe-", dir=folder)
    except OSError as err:
        raise OutputError(f"--out {out}: cannot be written ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "wb") as fh:  # a buffered file writes on where os.write stops short
            fh.write(b"\0" * PROBE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise OutputError(f"--out {out}: cannot be written ({err.strerror or err})") from None
    finally:
        os.unlink(name)
