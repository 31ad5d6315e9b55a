"""CSV text as the lines :func:`csv.reader` reads, with no field longer than a limit.

The csv module holds a field whole before it can tell that it is too long: a 1 GB SMILES cell
took 6.8 GB of memory before its row was rejected. Here the fields are measured while the text
streams by, and a field over the limit is cut to its first ``limit`` characters; the rest is
counted, not kept, so a line never holds more than ``limit`` characters of any field.

The lines are those ``io.TextIOWrapper(newline="")`` gives (what the csv module asks for), but
for the cut part of a field, line breaks inside a quoted field included. Finding the fields
follows the csv module's grammar for its default dialect: ``,`` between fields, ``"`` around a
field that holds one of ``,"\\r\\n``, ``""`` for a quote inside such a field, a quote anywhere else
plain text. The csv module still parses every line, so it still reports broken quoting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

_FIELD_END = re.compile(r"[,\r\n]")
# Where the text read so far ends: at the start of a field, in an unquoted field, in a quoted
# field, or just after a quote in a quoted field (its end, or the first of a "" pair).
_START, _PLAIN, _QUOTED, _QUOTE = range(4)


class ClippedField(str):
    """A field cut to its first characters; ``length`` is how long it was."""

    length: int

    def __new__(cls, kept: str, length: int) -> ClippedField:
        field = super().__new__(cls, kept)
        field.length = length
        return field


class BoundedLines:
    """The lines of CSV ``text`` for :func:`csv.reader`, no field longer than ``limit``.

    After the reader returns a record, :attr:`clipped` maps the position of each field of that
    record that was cut to the field's length (lines are made one at a time, as the reader asks
    for them, so the last record ended is the one the reader returned). A line of fields that
    are all short enough, with no quote (nearly every line) goes through as it was read.
    """

    def __init__(self, text: IO[str], limit: int, chunk: int = 1 << 20) -> None:
        if chunk <= limit + 2:
            raise ValueError("a chunk must hold a line of fields up to the limit and its line break")
        self.text, self.limit, self.chunk = text, limit, chunk
        self.state = _START
        self.field = 0  # the position of the field being read in its record
        self.length = 0  # its length so far
        self.pending: dict[int, int] = {}  # fields cut in the record being read: position -> length
        self.clipped: dict[int, int] = {}  # those of the last record that ended

    def __iter__(self) -> Iterator[str]:
        kept: list[str] = []
        split_cr = False  # the last piece ended in "\r" where readline stopped: "\r\n" cut in two?
        # readline returns a line of up to ``chunk`` characters (the rest comes next)
        while piece := self.text.readline(self.chunk):
            if split_cr:
                split_cr = False
                if piece == "\n":  # the rest of the line break: no record of its own
                    kept.append("\n" if self._at_record_start() else self._scan(piece))
                    yield "".join(kept)
                    kept = []
                    continue
                yield "".join(kept)  # the "\r" was a line break of its own
                kept = []
            if self._at_record_start() and len(piece) <= self.limit and '"' not in piece:
                self.clipped = {}
                yield piece
                continue
            kept.append(self._scan(piece))
            if piece.endswith("\r") and len(piece) == self.chunk:
                split_cr = True
            elif piece.endswith(("\n", "\r")):
                yield "".join(kept)
                kept = []
        if self.state == _QUOTE:  # the text ends with a quoted field's closing quote
            kept.append('"')
        if kept:
            if not self._at_record_start():
                self._end_record()
            yield "".join(kept)

    def _at_record_start(self) -> bool:
        return self.state == _START and self.field == 0

    def _scan(self, piece: str) -> str:
        """What is kept of ``piece``, the part of a line that follows the text read so far."""
        out: list[str] = []
        at, end = 0, len(piece)
        while at < end:
            if self.state == _START:
                self.state = _PLAIN
                if piece[at] == '"':
                    out.append('"')
                    at += 1
                    self.state = _QUOTED
            elif self.state == _PLAIN:
                stop = _FIELD_END.search(piece, at)
                upto = stop.start() if stop else end
                out.append(self._content(piece[at:upto]))
                if stop is None:
                    at = end
                elif piece[upto] == ",":
                    out.append(",")
                    at = upto + 1
                    self._end_field()
                else:  # the line break (the rest of the piece) ends the record
                    out.append(piece[upto:])
                    at = end
                    self._end_record()
            elif self.state == _QUOTED:
                upto = piece.find('"', at)
                upto = end if upto < 0 else upto
                out.append(self._content(piece[at:upto]))
                at = upto + 1
                self.state = _QUOTE if upto < end else _QUOTED
            elif piece[at] == '"':  # "" inside a quoted field: one quote
                out.append(self._content('"', '""'))
                at += 1
                self.state = _QUOTED
            else:  # the closing quote: what follows ends the field or breaks the quoting
                out.append('"')
                self.state = _PLAIN
                if piece[at] not in ",\r\n":  # kept whatever the limit, for the csv module to report
                    out.append(piece[at])
                    self.length += 1
                    at += 1
        return "".join(out)

    def _content(self, text: str, written: str | None = None) -> str:
        """What is kept of ``text``, the next characters of the field being read (``written``:
        how they are written in the line, when that differs)."""
        written = text if written is None else written
        room = self.limit - self.length
        self.length += len(text)
        if self.length <= self.limit:
            return written
        self.pending[self.field] = self.length
        return written[: max(room, 0)]

    def _end_field(self) -> None:
        self.field += 1
        self.length = 0
        self.state = _START

    def _end_record(self) -> None:
        self.clipped, self.pending = self.pending, {}
        self.field = 0
        self.length = 0
        self.state = _START
