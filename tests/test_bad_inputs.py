"""The adversarial input suite: every bad row ends in the rejects table with a reason, every
other row is featurized, and nothing is lost or crashes a stage."""

import json

import pandas as pd
import pytest

from helpers import run_chain, toy_config
from mmsa.stages import AccountingError, account

ROWS = [
    ("CCO", "1", None),
    ("", "0", "empty SMILES"),
    ("C1CC", "1", "unclosed ring"),
    ("CN(C)(C)(C)C", "0", "Explicit valence"),
    ("C1=CC2=CC=C1C=C2", "1", None),  # featurized, but its conformer fails
    ("OCC", "1", "duplicate of row 0"),
    ("c1ccccc1", "x", "label 'x' is not a number"),
    ("   ", "1", "empty SMILES"),
    ("[Na+].[Cl-]", "0", None),
    ("C" * 200, "1", "max_heavy_atoms"),
    ("*C(=O)CC", "1", None),  # dummy atom: no force field parameters, still featurized
    ("C\u2603C", "0", "SMILES parse error"),
    ("c1cccc1", "1", "sanitization failed"),
    ("[H+]", "0", "no heavy atoms"),
    ('"C(C)O,"', "1", "SMILES parse error"),
    ("CC(=O)Oc1ccccc1C(=O)O", "", None),  # missing label is fine
    ("C\udcffC", "1", "SMILES parse error"),  # an invalid UTF-8 byte in the file
    ("CC\x00O", "0", "SMILES parse error"),  # a NUL byte
]


@pytest.fixture
def bad_csv(tmp_path):
    lines = ["smiles,y"] + [f"{s},{y}" for s, y, _ in ROWS]
    (tmp_path / "bad.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    return tmp_path


def test_every_row_is_featurized_or_rejected_with_a_reason(bad_csv):
    config = toy_config(bad_csv, ["bad"], {"y": "y"}, shard_size=4)
    summary = run_chain(config, "bad", bad_csv / "out")
    assert summary["rows_in"] == len(ROWS)
    assert summary["featurized"] + summary["rejected"] == len(ROWS)
    rejects = pd.read_csv(bad_csv / "out" / "bad" / "rejects.csv", keep_default_na=False)
    by_row = dict(zip(rejects["row"], rejects["reason"], strict=True))
    for row, (_, _, reason) in enumerate(ROWS):
        if reason is None:
            assert row not in by_row, f"row {row} rejected: {by_row.get(row)}"
        else:
            assert reason in by_row[row], f"row {row}: {by_row.get(row)!r} lacks {reason!r}"
    assert summary["conformer_missing"] == 1
    assert json.loads((bad_csv / "out" / "bad" / "accounting.json").read_text()) == {
        k: v for k, v in summary.items() if k != "featurize"
    }


def test_a_lost_row_fails_the_accounting(bad_csv):
    config = toy_config(bad_csv, ["bad"], {"y": "y"}, shard_size=100)
    run_chain(config, "bad", bad_csv / "out")
    d = bad_csv / "out" / "bad"
    manifest = pd.read_parquet(d / "man-0.parquet")
    manifest.iloc[1:].to_parquet(d / "man-0.parquet")  # silently drop one featurized row
    with pytest.raises(AccountingError, match="first missing rows \\[0\\]"):
        account(
            "bad",
            d / "raw.parquet",
            [d / "rej-std.parquet", d / "rej-shard.parquet", d / "rej-feat-0.parquet"],
            [d / "man-0.parquet"],
            d / "acc.json",
            d / "rej.csv",
        )
