"""An adversarial corpus of SMILES rows and a run of it through every path that reads SMILES:
the pipeline's data stages and the ``mmsa embed`` and ``mmsa predict`` commands; and the wrong
things a user can hand those commands instead (a broken CSV, a damaged or wrong model file, an
output path that cannot be written, a bad config file), each run as the real command.

Used by ``tests/workflow/test_adversarial_corpus.py``, which asserts that no row is lost, nothing
crashes, and every wrong input ends in one line and exit status 1 with no output left behind, and
prints both tables under ``pytest -s`` (the way to read them; no script outside tests/ imports
this harness).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml

from cli import mmsa_cli, tiny_models
from helpers import SMALL_FEATURES, TINY_MODEL, run_chain, toy_config
from mmsa.features.settings import FeatureSettings
from mmsa.models.pretrained_file import save_pretrained
from mmsa.models.property import load_property_model, save_property_model
from mmsa.runtime.tables import markdown_table
from mmsa.train.pretrain_loop import build_model
from mmsa.train.pretrain_settings import PretrainSettings

DATASET = "adversarial"

# (case, SMILES cell, label cell of the binary task y, or a tuple of every cell after the SMILES
# cell: a record of another width than the header); every case is one CSV record.
# Lone surrogates (\udcXX) are written as the raw, undecodable byte XX.
CORPUS: list[tuple[str, str, str | tuple[str, ...]]] = [
    ("valid: ethanol", "CCO", "1"),
    ("valid: aspirin", "CC(=O)Oc1ccccc1C(=O)O", "0"),
    ("valid: caffeine", "CN1C(=O)N(C)c2ncn(C)c2C1=O", "1"),
    ("valid: benzene", "c1ccccc1", "0"),
    ("valid: stereo", "C[C@H](N)C(=O)O", "1"),
    ("valid: ring closure %10", "C%10CCCCC%10", "0"),
    ("valid: surrounding spaces", "  CCN  ", "1"),
    ("valid: label with spaces", "CCCCO", " 1 "),
    ("valid: missing label", "CCCOC", ""),
    ("valid: label nan (missing)", "CCOCC", "nan"),
    ("empty", "", "0"),
    ("blank", "   ", "1"),
    ("unparsable: unclosed ring", "C1CC", "0"),
    ("unparsable: open branch", "C(C", "1"),
    ("unparsable: open bracket", "[CH3", "0"),
    ("unparsable: unknown element", "[Xx]", "1"),
    ("unparsable: words", "notamolecule", "0"),
    ("unparsable: lone dot", ".", "1"),
    ("valence: pentavalent N", "CN(C)(C)(C)C", "0"),
    ("aromaticity: pyrrole without H", "c1ccnc1", "1"),
    ("aromaticity: five-ring", "c1cccc1", "0"),
    ("salt: NaCl", "[Na+].[Cl-]", "1"),
    ("salt: sodium propanoate", "CCC(=O)[O-].[Na+]", "0"),
    ("mixture", "CCOCCO.CCN(CC)CC", "1"),
    ("metal: FeCl2", "[Fe+2].[Cl-].[Cl-]", "0"),
    ("metal: dimethylmercury", "C[Hg]C", "1"),
    ("metal: bare atom", "[Xe]", "0"),
    ("radical: methyl", "[CH3]", "1"),
    ("radical: ethyl", "C[CH2]", "0"),
    ("isotope: 13C methane", "[13CH4]", "1"),
    ("isotope: deuterated methane", "[2H]C([2H])([2H])[2H]", "0"),
    ("charged: ammonium", "[NH4+]", "1"),
    ("charged: zwitterion", "C[N+](C)(C)CC(=O)[O-]", "0"),
    ("no heavy atom: H2", "[H][H]", "1"),
    ("no heavy atom: proton", "[H+]", "0"),
    ("wildcard: attached", "*C(=O)CC", "1"),
    ("wildcard: alone", "*", "0"),
    ("huge: 200 carbons", "C" * 200, "1"),
    ("huge: 1 MB field", "C" * 1_000_000, "0"),
    ("CXSMILES: atom label", "CCO |$R;;$|", "1"),
    ("CXSMILES: enhanced stereo", "C[C@H](O)CC |&1:1|", "0"),
    ("name after SMILES", "CCOC(C)=O ethyl acetate", "1"),
    ("whitespace: tab", "CC\tO", "0"),
    ("whitespace: newline", "CC\nO", "1"),
    ("whitespace: carriage return", "CC\rO", "0"),
    ("whitespace: no-break space", "CC\u00a0O", "1"),
    ("control: NUL", "CC\x00O", "0"),
    ("control: ESC", "C\x1bC", "1"),
    ("control: backspace", "C\x08C", "0"),
    ("control: DEL", "C\x7fC", "1"),
    ("unicode: accented", "\u00e9CCO", "0"),
    ("unicode: snowman", "C\u2603C", "1"),
    ("unicode: zero-width space", "C\u200bC", "0"),
    ("unicode: fullwidth", "\uff23\uff23\uff2f", "1"),
    ("unicode: byte order mark", "\ufeffCCCl", "0"),
    ("unicode: emoji", "C\U0001f600C", "1"),
    ("encoding: invalid UTF-8 byte", "C\udcffC", "0"),
    ("encoding: Latin-1 byte", "\udce9CCO", "1"),
    ("csv: comma in quoted cell", "C,C", "0"),
    ("csv: quote in cell", 'C"C', "1"),
    ("not a molecule: reaction", "CC>>CO", "0"),
    ("not a molecule: SMARTS", "[#6]~[#7]", "1"),
    ("duplicate, same label", "OCC", "1"),
    ("duplicate, conflicting label", "C1=CC=CC=C1", "1"),
    ("duplicate, the same cell text", "CCO", "1"),
    ("duplicate of a rejected cell", "C1CC", "1"),
    ("extra field: a comma in an unquoted cell", "C", ("1", "CCO")),
    ("short record: no label cell", "CCCCCCCO", ()),
    ("label: not a number", "CCCN", "x"),
    ("label: 2", "CCCCN", "2"),
    ("label: -1", "CCCCCN", "-1"),
    ("label: 0.5", "CCCCCCN", "0.5"),
    ("label: infinite", "CCOC", "inf"),
]


def write_corpus(path: Path) -> None:
    """The corpus as a CSV file (header ``smiles,y``), bad bytes and all."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)  # "\r\n" lines, so a cell holding "\r" or "\n" is quoted
    writer.writerow(["smiles", "y"])
    writer.writerows([smiles, *([cells] if isinstance(cells, str) else cells)] for _, smiles, cells in CORPUS)
    path.write_bytes(text.getvalue().encode("utf-8", "surrogateescape"))


def reason_kind(reason: str) -> str:
    """A reject reason without its particulars (row numbers, values, characters), for counting."""
    kind = re.sub(r"U\+[0-9A-F]+|'[^']*'|\"[^\"]*\"|\d[\d,.]*", "_", reason.split(" (same key")[0])
    return re.sub(r"\s+", " ", kind)[:80]


@dataclass
class PathResult:
    """What one path made of the corpus."""

    rows_in: int
    kept: list[int]
    rejects: pd.DataFrame
    tracebacks: int
    returncode: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def lost(self) -> list[int]:
        return sorted(set(range(self.rows_in)) - set(self.kept) - set(self.rejects["row"]))

    def __post_init__(self) -> None:
        self.reasons = Counter(reason_kind(r) for r in self.rejects["reason"])


def _read_rejects(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"reason": str}, keep_default_na=False)


def run_corpus(folder: Path) -> dict[str, PathResult]:
    """The corpus through the pipeline stages (in this process) and both commands (subprocesses)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{DATASET}.csv"
    write_corpus(csv_path)
    results = {}
    summary = run_chain(toy_config(folder, [DATASET], {"y": "y"}, shard_size=20), DATASET, folder / "out")
    d = folder / "out" / DATASET
    manifests = [pd.read_parquet(p, columns=["row"]) for p in sorted(d.glob("man-*.parquet"))]
    kept = pd.concat(manifests)["row"].tolist()
    results["pipeline stages"] = PathResult(summary["rows_in"], kept, _read_rejects(d / "rejects.csv"), 0)
    config, pretrained, finetuned = tiny_models(folder)
    for command, model, out in (("embed", pretrained, "emb.parquet"), ("predict", finetuned, "pred.csv")):
        run = mmsa_cli(folder, command, csv_path, "--config", config, "--model", model, "--out", out)
        counts = json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else {"rows": 0}
        output = folder / out
        table = pd.read_parquet(output) if out.endswith(".parquet") else pd.read_csv(output)
        results[f"mmsa {command}"] = PathResult(
            counts["rows"],
            table["row"].tolist(),
            _read_rejects(folder / f"{out}.rejects.csv"),
            run.stderr.count("Traceback"),
            run.returncode,
        )
    return results


def table(results: dict[str, PathResult]) -> str:
    """Markdown: rows in, featurized, rejected by reason, lost and tracebacks per path."""
    rows: list[list[object]] = []

    def row(name: str, values: list[object]) -> None:
        rows.append([name, *values])

    row("rows in", [r.rows_in for r in results.values()])
    row("featurized (in the output)", [len(r.kept) for r in results.values()])
    row("rejected", [len(r.rejects) for r in results.values()])
    kinds = sorted(set().union(*(r.reasons for r in results.values())))
    for kind in kinds:
        row(f"&nbsp;&nbsp;{kind}", [r.reasons.get(kind, 0) for r in results.values()])
    row(
        "rejects without a reason",
        [int((r.rejects["reason"].str.strip() == "").sum()) for r in results.values()],
    )
    row("lost", [len(r.lost) for r in results.values()])
    row("tracebacks", [r.tracebacks for r in results.values()])
    row("exit code", [r.returncode for r in results.values()])
    grid = pd.DataFrame(rows, columns=["", *results], dtype=object)
    return f"corpus: {len(CORPUS)} rows\n\n" + markdown_table(grid).rstrip("\n")


# ---------------------------------------------------------------- wrong things handed to a command

VALID = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl"]
UNBALANCED_QUOTE_LINE = 4  # of the file below: the header, two SMILES, then the opening quote
UNBALANCED_QUOTE = "smiles\n" + "\n".join([VALID[0], VALID[1], '"CCO', *VALID[2:]]) + "\n"


@dataclass
class CommandCase:
    """One wrong input: the command's arguments (``{config}``, ``{pretrained}``, ``{finetuned}``,
    ``{csv}`` and ``{folder}`` filled in), how to make the input, and the end of the line the
    command must print."""

    name: str
    args: list[str]
    expected: str
    make: Callable[[Path], None] = lambda folder: None
    mount: str | None = None  # FULL or READ_ONLY: a folder of that name in the case's folder is one


def _truncated(folder: Path) -> None:
    data = (folder / "finetuned.pt").read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])


def _random_bytes(folder: Path) -> None:
    (folder / "random.pt").write_bytes(os.urandom(4096))


def _text(name: str, text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_text(text)


FULL = "full"  # a case's mount: a folder of that name is a full disk
READ_ONLY = "ro"  # ... is a read-only file system


def _another_pretraining(folder: Path) -> None:
    """``mmsa.pt``: the finetuned model as one finetuned from ``pretrained.pt`` (its SHA-256
    recorded); ``other.pt``: a pretrained model of another run (other random weights)."""
    model, meta = load_property_model(folder / "finetuned.pt")
    sha = hashlib.sha256((folder / "pretrained.pt").read_bytes()).hexdigest()
    save_property_model(model, {**_saved(meta), "pretrained_sha256": sha}, folder / "mmsa.pt")
    torch.manual_seed(1)
    other = build_model(PretrainSettings.from_dict({"model": TINY_MODEL}), "hu")
    save_pretrained(other, folder / "other.pt", FeatureSettings.from_dict(SMALL_FEATURES).record())


def _saved(meta: dict) -> dict:
    """A loaded model's meta as save_property_model takes it (without the loaded reference)."""
    return {k: v for k, v in meta.items() if k != "reference"}


def _seed_folder(folder: Path, files: dict[str, str]) -> None:
    """``seeds/``: each name a copy of a model file of the case's folder; ``another-run.pt`` is
    the finetuned model as seed 1 of another finetuning run."""
    model, meta = load_property_model(folder / "finetuned.pt")
    save_property_model(model, {**_saved(meta), "seed": 1, "run": "another"}, folder / "another-run.pt")
    (folder / "seeds").mkdir()
    for name, source in files.items():
        shutil.copy(folder / source, folder / "seeds" / name)


PREDICT = ["predict", "{csv}", "--config", "{config}"]
EMBED = ["embed", "{csv}", "--config", "{config}"]
FINETUNED_KIND = "a finetuned model (results/finetune/<dataset>/<model>/seed-<n>.pt)"
PRETRAINED_KIND = "a pretrained model (the pretrain stage's results/pretrain/model.pt)"
COMMAS = (
    "mmsa reads comma-separated CSV; save it as comma-separated CSV (a spreadsheet's 'CSV (comma delimited)')"
)
COMMAND_CASES = [
    CommandCase(
        "CSV: 5 valid SMILES and an unbalanced quote",
        [*PREDICT, "--model", "{finetuned}", "--out", "out.csv"],
        f"in.csv: line {UNBALANCED_QUOTE_LINE}: a quoted field opens there and is not closed properly "
        "(unexpected end of data); no row was read. Close the quote, or write a quote inside a quoted "
        'field as two ("")',
        _text("in.csv", UNBALANCED_QUOTE),
    ),
    CommandCase(
        "CSV: the SMILES column named in another case",
        [*EMBED, "--model", "{pretrained}", "--out", "out.parquet"],
        "in.csv: no SMILES column 'smiles' in the header ['SMILES', 'y']; pass --smiles-column SMILES",
        _text("in.csv", "SMILES,y\nCCO,1\n"),
    ),
    CommandCase(
        "CSV: delimited by ';'",
        [*EMBED, "--model", "{pretrained}", "--out", "out.parquet"],
        f"in.csv: the header is one field holding ';' (['smiles;y']): a file delimited by ';'? {COMMAS}",
        _text("in.csv", "smiles;y\nCCO;1\n"),
    ),
    CommandCase(
        "CSV: delimited by tabs",
        [*PREDICT, "--model", "{finetuned}", "--out", "out.csv"],
        f"in.csv: the header is one field holding tab (['smiles\\ty']): a file delimited by tab? {COMMAS}",
        _text("in.csv", "smiles\ty\nCCO\t1\n"),
    ),
    CommandCase(
        "CSV: two columns named smiles",
        [*PREDICT, "--model", "{finetuned}", "--out", "out.csv"],
        "in.csv: 2 columns named 'smiles' in the header (columns 1 and 3); which holds the SMILES cannot "
        "be told: rename the others",
        _text("in.csv", "smiles,name,smiles\nCCO,ethanol,OCC\n"),
    ),
    CommandCase(
        "model: a truncated .pt",
        [*PREDICT, "--model", "{folder}/truncated.pt", "--out", "out.csv"],
        f"bytes: it starts as one, but its end is missing); expected {FINETUNED_KIND}",
        _truncated,
    ),
    CommandCase(
        "model: a .pt of random bytes",
        [*PREDICT, "--model", "{folder}/random.pt", "--out", "out.csv"],
        f"random.pt: not a model file (4,096 bytes that do not start as a torch file does); expected "
        f"{FINETUNED_KIND}",
        _random_bytes,
    ),
    CommandCase(
        "model: the pretrained model as predict --model",
        [*PREDICT, "--model", "{pretrained}", "--out", "out.csv"],
        f"pretrained.pt: {PRETRAINED_KIND}, not {FINETUNED_KIND}",
    ),
    CommandCase(
        "model: a finetuned model as embed --model",
        [*EMBED, "--model", "{finetuned}", "--out", "out.parquet"],
        f"finetuned.pt: {FINETUNED_KIND}, not {PRETRAINED_KIND}",
    ),
    CommandCase(
        "model: a finetuned model as --pretrained",
        [*PREDICT, "--model", "{finetuned}", "--pretrained", "{finetuned}", "--out", "out.csv"],
        f"finetuned.pt: {FINETUNED_KIND}, not {PRETRAINED_KIND}",
    ),
    CommandCase(
        "model: a folder without seed models as --model",
        [*PREDICT, "--model", "{folder}/a-folder", "--out", "out.csv"],
        f"a-folder: a folder without finetuned models (seed-*.pt); expected {FINETUNED_KIND} or the "
        "folder of a dataset's model holding them",
        lambda folder: (folder / "a-folder").mkdir(),
    ),
    CommandCase(
        "model: --pretrained of another pretraining run",
        [*PREDICT, "--model", "{folder}/mmsa.pt", "--pretrained", "{folder}/other.pt", "--out", "o.csv"],
        "...); give that model.pt",  # after both SHA-256 (tests/stages/test_finetune.py has the line)
        lambda folder: _another_pretraining(folder),
    ),
    CommandCase(
        "seed folder: the same model copied as seed-0.pt and seed-1.pt",
        [*PREDICT, "--model", "{folder}/seeds", "--out", "o.csv"],
        "seeds: seed-1.pt holds the model of seed 0",
        lambda folder: _seed_folder(folder, {"seed-0.pt": "finetuned.pt", "seed-1.pt": "finetuned.pt"}),
    ),
    CommandCase(
        "seed folder: Seed-3.pt beside seed-0.pt",
        [*PREDICT, "--model", "{folder}/seeds", "--out", "o.csv"],
        "seeds: holds Seed-3.pt, not named seed-<n>.pt like a seed's model; move or rename it, or give "
        "one model file",
        lambda folder: _seed_folder(folder, {"seed-0.pt": "finetuned.pt", "Seed-3.pt": "finetuned.pt"}),
    ),
    CommandCase(
        "seed folder: seed-1-copy.pt beside seed-0.pt",
        [*PREDICT, "--model", "{folder}/seeds", "--out", "o.csv"],
        "seeds: holds seed-1-copy.pt, not named seed-<n>.pt like a seed's model; move or rename it, or "
        "give one model file",
        lambda folder: _seed_folder(folder, {"seed-0.pt": "finetuned.pt", "seed-1-copy.pt": "finetuned.pt"}),
    ),
    CommandCase(
        "seed folder: seed models of two finetuning runs",
        [*PREDICT, "--model", "{folder}/seeds", "--out", "o.csv"],
        "seeds: seed-1.pt and seed-0.pt come from different finetuning runs (run 'another' vs 'tiny')",
        lambda folder: _seed_folder(folder, {"seed-0.pt": "finetuned.pt", "seed-1.pt": "another-run.pt"}),
    ),
    CommandCase(
        "config: a learning rate of .inf",
        [*PREDICT, "--config", "{folder}/inf.yaml", "--model", "{finetuned}", "--out", "o.csv"],
        "invalid configuration: at 'finetune.settings.lr': not a finite number",
        _text("inf.yaml", "finetune:\n  settings:\n    lr: .inf\n"),
    ),
    CommandCase(
        "output: --out an existing folder",
        [*PREDICT, "--model", "{finetuned}", "--out", "a-folder-out"],
        "--out a-folder-out: a folder; give the name of the file to write",
        lambda folder: (folder / "a-folder-out").mkdir(),
    ),
    CommandCase(
        "output: --out on a full disk",
        [*PREDICT, "--model", "{finetuned}", "--out", f"{FULL}/out.csv"],
        "cannot be written (No space left on device)",
        mount=FULL,
    ),
    CommandCase(
        "output: --out the input CSV",
        [*PREDICT, "--model", "{finetuned}", "--out", "in.csv"],
        "in.csv, an input of the command; name a new file",
    ),
    CommandCase(
        "output: --out a link to the input CSV",
        [*PREDICT, "--model", "{finetuned}", "--out", "link.csv"],
        "in.csv, an input of the command; name a new file",
        lambda folder: (folder / "link.csv").symlink_to(folder / "in.csv"),
    ),
    CommandCase(
        "output: --out the model file",
        [*EMBED, "--model", "{folder}/pretrained.pt", "--out", "pretrained.pt"],
        "pretrained.pt, an input of the command; name a new file",
    ),
    CommandCase(
        "output: --out a model file under another name",
        [*EMBED, "--model", "{folder}/pretrained.pt", "--out", "model.parquet"],
        "model.parquet: holds a model (a torch archive); mmsa does not overwrite models",
        lambda folder: shutil.copy(folder / "finetuned.pt", folder / "model.parquet"),
    ),
    CommandCase(
        "output: --out /dev/null",
        [*PREDICT, "--model", "{finetuned}", "--out", "/dev/null"],
        "--out /dev/null: a character device, not a regular file; mmsa writes regular files",
    ),
    CommandCase(
        "output: --out x.csv from embed (which writes Parquet)",
        [*EMBED, "--model", "{folder}/pretrained.pt", "--out", "x.csv"],
        "--out x.csv: the name says CSV, but this command writes Parquet; give a name ending in .parquet",
    ),
    CommandCase(
        "output: --out a new folder's name (trailing slash)",
        [*PREDICT, "--model", "{finetuned}", "--out", "newfolder/"],
        "--out newfolder/: names a folder; give the name of the file to write",
    ),
    CommandCase(
        "output: --out in a read-only folder",
        [*PREDICT, "--model", "{finetuned}", "--out", f"{READ_ONLY}/out.csv"],
        "cannot be written (Read-only file system)",
        mount=READ_ONLY,
    ),
    CommandCase(
        "cache: cache_dir on a full disk",
        [
            "embed",
            "{csv}",
            "--config",
            "{folder}/full-cache.yaml",
            "--model",
            "{folder}/pretrained.pt",
            "--out",
            "e.parquet",
        ],
        "Free space there, or set cache_dir or TMPDIR to another disk",
        lambda folder: (folder / "full-cache.yaml").write_text(
            yaml.safe_dump({"cache_dir": str(folder / FULL / "cache"), "featurize": SMALL_FEATURES})
        ),
        mount=FULL,
    ),
    CommandCase(
        "input: an empty SMILES file",
        ["predict", "{folder}/empty.csv", "--config", "{config}", "--model", "{finetuned}", "--out", "o.csv"],
        "empty.csv: empty file (no header line)",
        _text("empty.csv", ""),
    ),
    CommandCase(
        "input: a SMILES file that is a link loop",
        ["predict", "{folder}/loop.csv", "--config", "{config}", "--model", "{finetuned}", "--out", "o.csv"],
        "loop.csv: too many levels of symbolic links",
        lambda folder: (folder / "loop.csv").symlink_to(folder / "loop.csv"),
    ),
    CommandCase(
        "standardize: --raw a CSV file",
        ["standardize", "bbbp", "--raw", "in.csv", "--out", "std", "--rejects", "r.parquet"],
        "in.csv: not a Parquet table (Parquet magic bytes not found in footer); expected a raw table "
        "from `mmsa fetch`",
    ),
    CommandCase(
        "shard: --standardized a folder without part files",
        ["shard", "bbbp", "--standardized", "a-folder", "--out", "sh", "--rejects", "r.parquet"],
        "a-folder: holds no part-*.parquet files; expected a standardized folder from `mmsa standardize` "
        "(part-*.parquet files)",
        lambda folder: (folder / "a-folder").mkdir(),
    ),
    CommandCase(
        "shard: --holdout a folder that does not exist",
        [
            "shard",
            "bbbp",
            "--standardized",
            "a-folder",
            "--out",
            "sh",
            "--rejects",
            "r.parquet",
            "--holdout",
            "bace=nope",
        ],
        "holdout bace: nope: no such folder; expected a standardized folder from `mmsa standardize` "
        "(part-*.parquet files)",
        lambda folder: (folder / "a-folder").mkdir(),
    ),
    CommandCase(
        "featurize: a Parquet table that is no shard",
        ["featurize", "{folder}/other.parquet", "--manifest", "m.parquet", "--rejects", "r.parquet"],
        "other.parquet: no column row, input, key; expected a shard file from `mmsa shard` (shard-*.parquet)",
        lambda folder: pq.write_table(pa.table({"x": [1, 2]}), folder / "other.parquet"),
    ),
    CommandCase(
        "config: malformed YAML",
        [*PREDICT, "--config", "{folder}/broken.yaml", "--model", "{finetuned}", "--out", "out.csv"],
        "broken.yaml: not a valid YAML config at line 2, column 1: expected ',' or ']', "
        "but got '<stream end>'",
        _text("broken.yaml", "featurize: [1\n"),
    ),
    CommandCase(
        "config: a !!python tag",
        [*PREDICT, "--config", "{folder}/tag.yaml", "--model", "{finetuned}", "--out", "out.csv"],
        "python/object/apply:os.system' (a config file holds plain YAML values, no tags that build objects)",
        _text("tag.yaml", 'seed: !!python/object/apply:os.system ["touch pwned"]\n'),
    ),
    CommandCase(
        "config: a missing --config file",
        [*PREDICT, "--config", "{folder}/missing.yaml", "--model", "{finetuned}", "--out", "out.csv"],
        "missing.yaml: no such config file",
    ),
]


@contextlib.contextmanager
def special_folder(folder: Path, kind: str) -> Iterator[bool]:
    """``folder`` as a file system with no space left (:data:`FULL`: a small tmpfs, filled) or a
    read-only one (:data:`READ_ONLY`), if this process may mount one (root); yields whether it
    could."""
    folder.mkdir()
    options = "size=64k" if kind == FULL else "ro,size=64k"
    command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    if subprocess.run(command, capture_output=True).returncode != 0:
        yield False
        return
    try:
        if kind == FULL:
            fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while os.write(fd, b"\0" * 4096):
                    pass
            except OSError:  # ENOSPC: the disk is full
                pass
            finally:
                os.close(fd)
        yield True
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def needs_root(case: CommandCase) -> bool:
    """Whether a case writes into a mounted folder (:func:`special_folder`)."""
    return case.mount is not None


@dataclass
class CommandResult:
    """What one wrong input made the command do."""

    returncode: int
    stderr: list[str]
    left_behind: list[str]  # files in the case's folder that were not there before
    changed: list[str]  # files in the case's folder whose bytes (SHA-256) the command changed
    target: tuple[str, str] | None = None  # SHA-256 of the file --out names, before and after


def run_command_cases(folder: Path) -> dict[str, CommandResult]:
    """Every :data:`COMMAND_CASES` entry as the real ``mmsa`` command, each in a folder of its own
    holding a valid SMILES file (``in.csv``) and copies of the models. The cases that write into
    a mounted folder are left out where none can be mounted (not root)."""
    models = tiny_models(folder / "models")

    def run(numbered: tuple[int, CommandCase]) -> CommandResult | None:
        return _run_case(folder / f"case-{numbered[0]}", numbered[1], *models)

    # the cases share nothing but the models they copy: as many at once as there are CPUs
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = list(pool.map(run, enumerate(COMMAND_CASES)))
    return {case.name: result for case, result in zip(COMMAND_CASES, outcomes, strict=True) if result}


def _run_case(
    work: Path, case: CommandCase, config: Path, pretrained: Path, finetuned: Path
) -> CommandResult | None:
    """One case in its own folder ``work``; None where its folder cannot be mounted."""
    work.mkdir()
    (work / "in.csv").write_text("smiles\n" + "\n".join(VALID) + "\n")
    shutil.copy(finetuned, work / "finetuned.pt")
    shutil.copy(pretrained, work / "pretrained.pt")
    case.make(work)
    values = {"config": config, "pretrained": pretrained, "finetuned": work / "finetuned.pt"}
    args = [a.format(csv=work / "in.csv", folder=work, **values) for a in case.args]
    disk = special_folder(work / case.mount, case.mount) if case.mount else None
    with disk or contextlib.nullcontext(True) as writable_case:
        if not writable_case:
            return None
        before = _digests(work)
        run = mmsa_cli(work, *args)
        after = _digests(work)
    changed = sorted(name for name, sha in before.items() if after.get(name) != sha)
    left = sorted(set(after) - set(before))
    out = args[args.index("--out") + 1] if "--out" in args else None
    target = (before[out], after.get(out, "")) if out in before else None
    return CommandResult(run.returncode, run.stderr.strip().splitlines(), left, changed, target)


def _digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (through links: a link's target's bytes)."""
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in _files(folder)}


def _files(folder: Path) -> list[str]:
    """The files under ``folder`` (a link that loops or leads nowhere is no file)."""
    found = []
    for p in folder.rglob("*"):
        try:
            if p.is_file() and p.name != "filler":
                found.append(str(p.relative_to(folder)))
        except OSError:  # a link that loops
            pass
    return found


def command_table(results: dict[str, CommandResult]) -> str:
    """Markdown: each wrong input, the command's exit status and the line it printed."""
    rows = []
    for name, r in results.items():
        logged = f" (after {len(r.stderr) - 1} log lines)" if len(r.stderr) > 1 else ""
        printed = r.stderr[-1] if r.stderr else ""
        left = ", ".join(r.left_behind + [f"{c} changed" for c in r.changed]) or "nothing"
        target = f"`{r.target[0][:12]}` / `{r.target[1][:12]}`" if r.target else "(a new path)"
        rows.append([name, r.returncode, f"`{printed}`{logged}", left, target])
    header = ["input", "exit status", "what it prints", "left behind", "--out's file, SHA-256 before / after"]
    return markdown_table(pd.DataFrame(rows, columns=header, dtype=object), ["exit status"]).rstrip("\n")
