"""Compare two runs' output folders file by file: which outputs are the same bytes, and why any differ.

A change that should keep every result (a refactoring, a move of files) is checked by running
the same config before and after it and comparing the two ``results/`` folders here. Each file
present in either folder is one of:

* ``same bytes``;
* ``same but provenance``: a JSON file equal once its ``provenance`` entries (commit, host,
  versions: what produced it, not what it holds) are dropped, or a report equal once the commit
  it names is masked;
* ``same but cache location``: a featurize manifest whose molecules, rows and feature status are
  equal, only the feature-cache pack each molecule was found in differs: datasets that share
  molecules share their packs, so the pack holding a molecule is whichever job computed it first;
* ``timing, log or resume state``: files that record when and how long, never a result
  (``logs/``, ``benchmarks/``, ``throughput.json``, Snakemake's own folder), and pretraining
  checkpoints (they record a digest of the code, so that no run resumes under other code);
* ``different`` or ``only in one``: a result that changed.

Prints a count per class, then every file not of the first two, and exits 1 when a result
changed. Run the same config in two clones, e.g. the tiny config::

    snakemake --cores 2 --configfile config/test.yaml    # in each clone
    python benchmarks/output_identity.py before/results after/results
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from mmsa.runtime.tables import markdown_table

TIMING_PARTS = {"logs", "benchmarks", ".snakemake", "checkpoints"}
TIMING_NAMES = {"throughput.json"}
CACHE_LOCATION = ["pack", "pack_row"]  # a manifest's pointer into the feature cache
COMMIT = re.compile(rb"Commit (?:[0-9a-f]{7,40}(?:-dirty)?|None)")  # as the report names it
SAME, PROVENANCE, LOCATION, TIMING, DIFFERENT, ONLY = (
    "same bytes",
    "same but provenance",
    "same but cache location",
    "timing, log or resume state",
    "different",
    "only in one",
)


def _without_provenance(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_provenance(v) for k, v in value.items() if k != "provenance"}
    if isinstance(value, list):
        return [_without_provenance(v) for v in value]
    return value


def _same_molecules(before: Path, after: Path) -> bool:
    """Two featurize manifests list the same molecules with the same status, wherever in the cache."""
    old, new = pd.read_parquet(before), pd.read_parquet(after)
    if list(old.columns) != list(new.columns):
        return False
    return old.drop(columns=CACHE_LOCATION, errors="ignore").equals(
        new.drop(columns=CACHE_LOCATION, errors="ignore")
    )


def compare_file(relative: Path, before: Path, after: Path) -> str:
    """The class of one file (see the module's docstring)."""
    if TIMING_PARTS & set(relative.parts) or relative.name in TIMING_NAMES:
        return TIMING
    if not (before.is_file() and after.is_file()):
        return ONLY
    old, new = before.read_bytes(), after.read_bytes()
    if old == new:
        return SAME
    if relative.parts[0] == "features" and relative.suffix == ".parquet":
        return LOCATION if _same_molecules(before, after) else DIFFERENT
    if relative.suffix == ".json":
        try:
            same = _without_provenance(json.loads(old)) == _without_provenance(json.loads(new))
        except ValueError:
            same = False
    else:
        same = COMMIT.sub(b"Commit", old) == COMMIT.sub(b"Commit", new)
    return PROVENANCE if same else DIFFERENT


def compare_folders(before: Path, after: Path) -> dict[Path, str]:
    """Every file of either folder, by its path relative to the folder, and its class."""
    files = {p.relative_to(root) for root in (before, after) for p in root.rglob("*") if p.is_file()}
    return {rel: compare_file(rel, before / rel, after / rel) for rel in sorted(files)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the first run's output folder (results/)")
    parser.add_argument("after", type=Path, help="the second run's output folder")
    args = parser.parse_args(argv)
    for folder in (args.before, args.after):
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    classes = compare_folders(args.before, args.after)
    counts = Counter(classes.values())
    order = (SAME, PROVENANCE, LOCATION, TIMING, DIFFERENT, ONLY)
    print(
        markdown_table(pd.DataFrame({"files": order, "count": [counts.get(c, 0) for c in order]}), ["count"])
    )
    changed = [(str(rel), c) for rel, c in classes.items() if c in (DIFFERENT, ONLY)]
    if changed:
        print()
        print(markdown_table(pd.DataFrame(changed, columns=["file", "class"])))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
