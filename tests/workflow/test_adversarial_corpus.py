"""The adversarial corpus (tests/adversarial.py) through the pipeline stages, ``mmsa embed`` and
``mmsa predict``: rows in = featurized + rejected, every reject has a reason, no traceback; and
every wrong input handed to the commands: one line, exit status 1, nothing left behind."""

import os
import re

import pytest

from adversarial import COMMAND_CASES, CORPUS, command_table, needs_root, run_command_cases, run_corpus, table


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    results = run_corpus(tmp_path_factory.mktemp("adversarial"))
    print(table(results))  # shown with pytest -s: the documented way to read it
    return results


def test_the_corpus_is_adversarial_enough():
    assert len(CORPUS) >= 50 and len({case for case, _, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("path", ["pipeline stages", "mmsa embed", "mmsa predict"])
def test_no_row_is_lost_and_nothing_crashes(results, path):
    result = results[path]
    assert result.returncode == 0 and result.tracebacks == 0
    assert result.rows_in == len(CORPUS)
    assert len(result.kept) + len(result.rejects) == len(CORPUS) and result.lost == []
    assert result.rejects["reason"].str.strip().ne("").all()


def test_every_path_rejects_what_cannot_be_trusted(results):
    """The cases RDKit reads silently as something else end in every path's rejects."""
    misread = [
        i
        for i, (case, _, _) in enumerate(CORPUS)
        if case.split(":")[0] in ("whitespace", "control", "unicode", "encoding", "CXSMILES", "extra field")
    ]
    for result in results.values():
        assert set(misread) <= set(result.rejects["row"])


@pytest.mark.parametrize("path", ["mmsa embed", "mmsa predict"])
def test_a_repeated_cell_gets_what_its_first_row_got(results, path):
    """The commands take each distinct cell through the stages once: its later rows must still
    be there, each on its own, kept or rejected as the first one was."""
    result = results[path]
    reasons = dict(zip(result.rejects["row"], result.rejects["reason"], strict=True))
    first: dict[str, int] = {}
    repeats = 0
    for row, (_, smiles, cells) in enumerate(CORPUS):
        if isinstance(cells, str) and first.setdefault(smiles, row) != row:
            original = first[smiles]
            assert (row in result.kept) == (original in result.kept), (path, smiles)
            assert reasons.get(row) == reasons.get(original), (path, smiles)
            repeats += 1
    assert repeats >= 2


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING) ")


@pytest.fixture(scope="module")
def command_results(tmp_path_factory):
    results = run_command_cases(tmp_path_factory.mktemp("commands"))
    print(command_table(results))
    return results


def test_every_wrong_input_ends_in_one_line_and_status_1(command_results):
    mounted = {c.name for c in COMMAND_CASES if needs_root(c)}
    expected = {c.name for c in COMMAND_CASES} - (set() if os.geteuid() == 0 else mounted)
    assert set(command_results) == expected
    for case in COMMAND_CASES:
        if case.name not in command_results:
            continue
        result = command_results[case.name]
        assert result.returncode == 1, (case.name, result.stderr)
        # the command's log lines (INFO, for work done before a late failure) aside, one line
        errors = [line for line in result.stderr if not LOG_LINE.match(line)]
        assert len(errors) == 1 and errors[0] == result.stderr[-1], (case.name, result.stderr)
        assert errors[0].startswith("mmsa ") and errors[0].endswith(case.expected), (case.name, errors)
        assert result.left_behind == [], (case.name, result.left_behind)
        assert result.changed == [], (case.name, result.changed)  # no file's bytes changed


def test_a_wrong_path_is_refused_before_any_work(command_results):
    """Paths are checked before torch is imported or a molecule read: the refusal is the only
    line (a read-only folder used to be found out after every molecule was featurized)."""
    early = [c.name for c in COMMAND_CASES if c.name.split(":")[0] in ("output", "input")]
    assert len(early) >= 10
    for name in early:
        if name in command_results:
            assert len(command_results[name].stderr) == 1, (name, command_results[name].stderr)
