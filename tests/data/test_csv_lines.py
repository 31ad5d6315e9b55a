"""BoundedLines: the csv module reads the same records through it, but no field longer than the
limit, however long the field in the text, and the records still end where they should."""

import csv
import io
import random
import tracemalloc

import pytest

from helpers import Repeated
from mmsa.data.csv_lines import BoundedLines


def plain(text: str) -> list:
    """The records (and line numbers) of ``text`` as the csv module reads a file, or its error."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return [(record, reader.line_num) for record in reader]
    except csv.Error as err:
        return [("error", str(err))]


def bounded(text: str, limit: int = 1000, chunk: int = 1010) -> list:
    """The records of ``text`` read through :class:`BoundedLines`, with the fields cut in each."""
    lines = BoundedLines(io.StringIO(text, newline=""), limit, chunk)
    reader = csv.reader(lines, strict=True)
    try:
        return [(record, reader.line_num, dict(lines.clipped)) for record in reader]
    except csv.Error as err:
        return [("error", str(err))]


@pytest.mark.parametrize(
    "text",
    [
        "smiles,y\nCCO,1\nCCN,0\n",
        "smiles,y\r\nCCO,1\r\n\r\nCCN,0",  # CRLF, a blank line, no final line break
        "smiles,y\rCCO,1\rCCN,0\r",  # old Mac line ends
        'smiles,y\n"CC\nO",1\n"C""C",",0"\nCCl,\n',  # a quoted line break, a quote, a comma
        'smiles,y\n"CC\r\nO",1\n"",0\n"a""\n""b",1\n',
        'smiles,y\nCCO,1\n"CCN,0\nCO,1\n',  # a quote that never closes
        'smiles,y\n"CCO"x,1\nCO,1\n',  # a quote that closes inside a field
        'smiles,y\nC"C,1\n',  # a quote inside an unquoted field is plain text
    ],
)
def test_records_and_line_numbers_are_the_csv_modules(text):
    records = bounded(text)
    assert [r[:2] for r in records] == plain(text)
    assert all(r[2] == {} for r in records if r[0] != "error")


def test_a_field_over_the_limit_is_cut_and_its_length_kept():
    long = "C" * 30
    text = f'smiles,note\n{long},x\nCCO,"{long}"\n"C\n{long}\n",1\nC"{long},"C""{long}"\nCCN,{"N" * 10}\n'
    assert bounded(text, limit=10, chunk=13) == [
        (["smiles", "note"], 1, {}),
        (["C" * 10, "x"], 2, {0: 30}),
        (["CCO", "C" * 10], 3, {1: 30}),
        (["C\n" + "C" * 8, "1"], 6, {0: 33}),  # its line breaks still counted
        (['C"' + "C" * 8, 'C"' + "C" * 8], 7, {0: 32, 1: 32}),
        (["CCN", "N" * 10], 8, {}),  # at the limit: not cut
    ]


def test_quoting_broken_after_a_cut_field_is_still_reported():
    text = 'smiles,y\n"' + "C" * 50 + '"x,1\nCCO,1\n'
    assert bounded(text, limit=10, chunk=13) == plain(text) == [("error", "',' expected after '\"'")]


def test_random_texts_read_alike_cut_or_not():
    """Random CSV text (and random noise) cut into small chunks: every record, every line number
    and every error as the csv module has them, the fields over the limit cut to it."""
    rng = random.Random(7)
    alphabet = ["a", "b", ",", '"', "\n", "\r", "\r\n", "yy"]
    for _ in range(3000):
        if rng.random() < 0.7:
            out = io.StringIO(newline="")
            writer = csv.writer(out, lineterminator=rng.choice(["\n", "\r\n", "\r"]))
            for _ in range(rng.randint(0, 4)):
                width = rng.randint(1, 3)
                writer.writerow(["".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(width)])
            text = out.getvalue()
        else:
            text = "".join(rng.choices(alphabet, k=rng.randint(0, 30)))
        limit = rng.randint(1, 6)
        expected = plain(text)
        assert [r[:2] for r in bounded(text)] == expected, text
        got = bounded(text, limit, chunk=limit + 3 + rng.randint(0, 5))
        if expected and expected[-1][0] == "error":
            assert got[-1][0] == "error", (text, limit)
            expected, got = expected[:-1], got[:-1]
        cut = [
            ([f[:limit] for f in r], {i: len(f) for i, f in enumerate(r) if len(f) > limit})
            for r, _ in expected
        ]
        assert [(r, c) for r, _, c in got] == cut, (text, limit)


@pytest.mark.parametrize("quoted", [False, True], ids=["unquoted", "quoted with line breaks"])
def test_a_huge_field_is_never_held_whole(quoted):
    """64 MiB in one field: no line, and no allocation, comes near it."""
    size, limit = 64 << 20, 131_072
    line = b"C" * 1023 + b"\n"
    head, fill, tail = (
        (b'smiles,y\nCCO,1\n"', line, b'",0\nCCN,1\n')
        if quoted
        else (b"smiles,y\nCCO,1\n", b"C", b",0\nCCN,1\n")
    )
    text = io.TextIOWrapper(io.BufferedReader(Repeated(head, fill, size, tail)), newline="")
    lines = BoundedLines(text, limit)
    tracemalloc.start()
    try:
        records = []
        reader = csv.reader(lines, strict=True)
        for record in reader:
            records.append(([len(f) for f in record], dict(lines.clipped)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert records == [([6, 1], {}), ([3, 1], {}), ([limit, 1], {0: size}), ([3, 1], {})]
    assert peak < 16 << 20, f"{peak / (1 << 20):.0f} MiB"
    assert reader.line_num == 4 + (size // len(line) if quoted else 0)  # the field's line breaks count
