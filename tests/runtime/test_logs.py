"""A stage's log: its own records and RDKit's in the job's log file; a failure the user can mend
(an InputError) is one line and exit status 1, a bug keeps its traceback."""

import logging

import pytest
from rdkit import Chem, rdBase

from mmsa.runtime.errors import InputError
from mmsa.runtime.logs import stage_logging


def test_a_mendable_failure_is_one_line_and_status_1(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as exit_status, stage_logging(log):
        logging.getLogger("mmsa.test").info("working")
        raise InputError("conformer of CCO: embedding used 700 s of CPU time")
    assert exit_status.value.code == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and lines[1].endswith(
        "ERROR mmsa: stage failed: conformer of CCO: embedding used 700 s of CPU time"
    )


def test_a_bug_keeps_its_traceback(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(KeyError), stage_logging(log):
        raise KeyError("smiles")
    assert "Traceback" in log.read_text()


def test_rdkit_s_log_reaches_the_job_log_once_routed_to_python(tmp_path):
    log = tmp_path / "job.log"
    rdBase.LogToPythonLogger()
    with stage_logging(log):
        assert Chem.MolFromSmiles("c1cccc1") is None  # RDKit logs why it cannot kekulize
    assert "WARNING rdkit:" in log.read_text() or "ERROR rdkit:" in log.read_text()
    assert "Can't kekulize mol" in log.read_text()
