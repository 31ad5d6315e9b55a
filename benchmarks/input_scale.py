"""``mmsa embed`` on inputs whose size is cheap to reject or to shrink: 20,000 copies of one
molecule (time and peak memory), and a file with one 1 GB SMILES cell among a few valid rows
(peak memory; the cell is rejected).

    PYTHONPATH=<checkout> python benchmarks/input_scale.py [--copies 20000] [--cell-mib 1024]

Each case runs the real command (``python -m mmsa.cli embed``) in a fresh process with the tiny
models of the tests (``tests/cli.py``'s ``tiny_models``: random weights, 32 px images; the
numbers are about input handling, not model quality), so the same script measures any checkout
that ``PYTHONPATH`` names. Peak memory is the command's maximum resident set size as the kernel
reports it for a waited-for child (``resource.getrusage(RUSAGE_CHILDREN)``), read in a process
of its own for each case, so one case's peak never stands for another's. The 1 GB cell case
runs last (it is the one that can take gigabytes); its file lives in a temporary folder and is
deleted with it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import MIB, machine, mib, table

import mmsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cli import tiny_models  # noqa: E402  (tests/ is not a package)

HEADER = ["input", "rows", "embedded", "rejected", "exit status", "seconds", "peak memory (MiB)"]
MOLECULE = "CC(=O)Oc1ccccc1C(=O)O"
VALID = ["CCO", "c1ccccc1", "CCN"]
# Runs one command and prints its exit status and peak RSS (KiB on Linux) as JSON: the child's
# rusage is only its own in a process that waited for nothing else.
MEASURE = (
    "import json, resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(json.dumps([rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
)


def copies_file(path: Path, copies: int) -> None:
    path.write_text("smiles\n" + f"{MOLECULE}\n" * copies)


def long_cell_file(path: Path, cell_mib: int) -> None:
    """``VALID`` rows around one SMILES cell of ``cell_mib`` MiB, written a MiB at a time."""
    with open(path, "w") as f:
        f.write(f"smiles,name\n{VALID[0]},a\n")
        for _ in range(cell_mib):
            f.write("C" * MIB)
        f.write(",huge\n" + "".join(f"{s},b\n" for s in VALID[1:]))


def embed(folder: Path, csv_path: Path, models: tuple[Path, Path, Path]) -> list[object]:
    """One ``mmsa embed`` of ``csv_path`` in a fresh process: the table's row for it."""
    config, pretrained, _ = models
    out = folder / f"{csv_path.stem}.parquet"
    command = [sys.executable, "-m", "mmsa.cli", "embed", str(csv_path), "--config", str(config)]
    command += ["--model", str(pretrained), "--out", str(out)]
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        sys.exit(f"the measuring process failed:\n{run.stderr[-3000:]}")
    returncode, peak_kib = json.loads(run.stdout.strip().splitlines()[-1])
    counts = json.loads(run.stdout.strip().splitlines()[-2]) if returncode == 0 else {}
    return [
        csv_path.stem,
        f"{counts.get('rows', '-'):,}" if counts else "-",
        f"{counts['embedded']:,}" if counts else "-",
        f"{counts['rejected']:,}" if counts else "-",
        returncode,
        f"{seconds:.1f}",
        mib(peak_kib * 1024),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=20_000, help="copies of one molecule")
    parser.add_argument("--cell-mib", type=int, default=1024, help="MiB in the long cell; 0: no such case")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = tiny_models(folder / "models")
        copies = folder / f"{args.copies}-copies-of-one-molecule.csv"
        copies_file(copies, args.copies)
        rows.append(embed(folder, copies, models))
        if args.cell_mib:
            long_cell = folder / f"one-{args.cell_mib}-MiB-cell-and-{len(VALID)}-valid-rows.csv"
            long_cell_file(long_cell, args.cell_mib)
            rows.append(embed(folder, long_cell, models))
    print(f"mmsa embed with the tests' tiny models; mmsa from {Path(mmsa.__file__).parent}")
    print(f"Machine: {machine()}\n")
    print(table(HEADER, rows))


if __name__ == "__main__":
    main()
