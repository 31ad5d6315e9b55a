"""Ctrl-C ends a command with status 130 and one line, and leaves nothing half-written: no
output, no feature pack in the shared cache. RDKit catches SIGINT itself while it embeds a
conformer and says so only in its log (mmsa.features.interrupts); before, a Ctrl-C during
featurization was swallowed, the molecule got a conformer from a later attempt, and the command
ended with status 0."""

import signal
import subprocess
import sys
import time

from cli import tiny_models

# a peptide takes 0.3 s (a 2026 Xeon) to seconds to embed: 20 outlast the 2 s wait below, and the
# signal lands in RDKit's embedding most of the time, in its descriptors or drawing otherwise
PEPTIDE = (
    "CC(C)C[C@H](NC(=O)[C@@H](Cc1ccccc1)NC(=O)[C@H](CCCCN)NC(=O)[C@@H](CC(C)C)NC(=O)C)"
    "C(=O)N[C@@H](CCCCN)C(=O)O"
)


def test_ctrl_c_during_featurization_stops_the_command_and_writes_nothing(tmp_path):
    config, pretrained, _ = tiny_models(tmp_path / "models")
    rows = [PEPTIDE.replace("CCCCN", "C" * n + "N", 1) for n in range(2, 22)]
    (tmp_path / "peptides.csv").write_text("smiles\n" + "\n".join(rows) + "\n")
    log = tmp_path / "stderr.txt"
    args = ["embed", "peptides.csv", "--config", config, "--model", pretrained, "--out", "e.parquet"]
    with open(log, "w") as err:
        command = subprocess.Popen(
            [sys.executable, "-m", "mmsa.cli", *map(str, args)], cwd=tmp_path, stderr=err
        )
        deadline = time.monotonic() + 120
        while "featurize: 0/20" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # inside the first molecules' embedding
        command.send_signal(signal.SIGINT)
        status = command.wait(timeout=120)
    lines = log.read_text().strip().splitlines()
    assert status == 130, lines[-5:]
    assert lines[-1] == "mmsa embed: interrupted (Ctrl-C); no output of this run was written"
    assert "Traceback" not in log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "peptides.csv", "stderr.txt"]
    packs = [
        p for p in (tmp_path / "models" / "cache").rglob("*") if p.is_file() and p.name != "settings.json"
    ]
    assert packs == []
