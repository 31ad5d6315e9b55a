"""The adversarial SMILES corpus of the tests through the pipeline stages, ``mmsa embed`` and
``mmsa predict``; prints rows in, featurized, rejected by reason, lost rows and tracebacks, then
each wrong input handed to the commands with the exit status and the line it prints:

    python benchmarks/adversarial_corpus.py

The corpus and the runs are those of ``tests/workflow/test_adversarial_corpus.py`` (tests/adversarial.py),
with tiny random-weight models and small feature settings; nothing is downloaded.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from adversarial import command_table, run_command_cases, run_corpus, table  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        print(table(run_corpus(Path(tmp) / "corpus")))
        print("\nWrong things handed to the commands (each run as the real command):\n")
        print(command_table(run_command_cases(Path(tmp) / "commands")))
