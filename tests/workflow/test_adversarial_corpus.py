"""The adversarial corpus (tests/adversarial.py) through the pipeline stages, ``mmsa embed`` and
``mmsa predict``: rows in = featurized + rejected, every reject has a reason, no traceback."""

import pytest

from adversarial import CORPUS, run_corpus, table


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    results = run_corpus(tmp_path_factory.mktemp("adversarial"))
    print(table(results))  # shown with pytest -s; benchmarks/adversarial_corpus.py prints it too
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
        if case.split(":")[0] in ("whitespace", "control", "unicode", "encoding", "CXSMILES")
    ]
    for result in results.values():
        assert set(misread) <= set(result.rejects["row"])
