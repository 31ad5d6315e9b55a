import json
import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import run_chain, toy_config
from mmsa.data.key_shards import run_shard, shard_path
from mmsa.data.registry import DatasetSpec
from mmsa.data.standardize_parts import run_standardize
from mmsa.data.standardized_molecules import StandardizeOptions
from mmsa.runtime.hashing import shard_of
from mmsa.runtime.io import write_parquet

REGRESSION = DatasetSpec(name="toy", source="local", smiles_column="smiles", task_type="regression")
SMILES = ["CCO", "OCC", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "C1CCCCC1", "CCOC", "CC#N", "CCO"]

# smiles, a, b (raw label cells; "" = missing)
LABELLED = [
    ("CCO", "1", ""),  # 0: kept, b filled in from row 5
    ("c1ccccc1", "1", "1"),  # 1: benzene, a conflicts with row 4
    ("CCN", "0", "0"),  # 2: unique
    ("CC(=O)O", "", "1"),  # 3: kept, a filled in from row 6
    ("C1=CC=CC=C1", "0", "1"),  # 4: benzene again
    ("OCC", "", "0"),  # 5: duplicate of row 0
    ("OC(C)=O", "0.5", ""),  # 6: duplicate of row 3
    ("c1ccccc1", "", "1"),  # 7: benzene, nothing against anyone
    ("CCCl", "1", "0"),  # 8: conflicts on both tasks with row 9
    ("ClCC", "0", "1"),  # 9
]


def standardize_rows(folder, rows, tasks=("a", "b")):
    """Standardize (smiles, *labels) tuples into ``folder / "std"``."""
    columns = {"row": list(range(len(rows))), "smiles": [r[0] for r in rows]}
    columns.update({t: [r[1 + i] for r in rows] for i, t in enumerate(tasks)})
    write_parquet(pa.table(columns), folder / "raw.parquet")
    run_standardize(
        folder / "raw.parquet", folder / "std", folder / "rej.parquet", REGRESSION, StandardizeOptions()
    )
    return folder / "std"


def read_shards(folder, n):
    """Every kept row of ``n`` shards, by row number."""
    frames = [pq.read_table(shard_path(folder, s)).to_pandas() for s in range(n)]
    return pd.concat(frames).set_index("row").sort_index()


def reasons(path):
    return dict(pq.read_table(path).to_pandas()[["row", "reason"]].itertuples(index=False))


@pytest.fixture
def standardized(tmp_path):
    return standardize_rows(tmp_path, [(s,) for s in SMILES], tasks=())


@pytest.fixture
def labelled(tmp_path):
    return standardize_rows(tmp_path, LABELLED)


def test_shards_are_deterministic_and_follow_the_key_hash(tmp_path, standardized):
    run_shard(standardized, tmp_path / "a", tmp_path / "ra.parquet", 3, "reject", workers=1)
    run_shard(standardized, tmp_path / "b", tmp_path / "rb.parquet", 3, "reject", workers=2)
    for s in range(3):
        a = pq.read_table(shard_path(tmp_path / "a", s))
        assert a.equals(pq.read_table(shard_path(tmp_path / "b", s)))
        assert all(shard_of(k, 3) == s for k in a.column("key").to_pylist())
        assert a.column("row").to_pylist() == sorted(a.column("row").to_pylist())


def test_duplicates_are_rejected_with_the_row_they_repeat(tmp_path, standardized):
    counts = run_shard(standardized, tmp_path / "s", tmp_path / "r.parquet", 2, "reject")
    assert (counts["kept"], counts["rejected"], counts["duplicate_groups"]) == (8, 2, 1)
    assert reasons(tmp_path / "r.parquet") == {
        1: "duplicate of row 0 (same key CCO)",
        9: "duplicate of row 0 (same key CCO)",
    }


def test_dedupe_can_be_switched_off(tmp_path, labelled):
    counts = run_shard(labelled, tmp_path / "s", tmp_path / "r.parquet", 2, None)
    assert (counts["kept"], counts["rejected"], counts["labels_filled"]) == (10, 0, 0)
    assert read_shards(tmp_path / "s", 2).index.tolist() == list(range(10))


def test_a_group_with_conflicting_labels_is_rejected_whole(tmp_path, labelled):
    run_shard(labelled, tmp_path / "s", tmp_path / "r.parquet", 3, "reject")
    why = reasons(tmp_path / "r.parquet")
    benzene = "conflicting labels among duplicate rows 1, 4, 7 (same key c1ccccc1): a 1 vs 0"
    both = "conflicting labels among duplicate rows 8, 9 (same key CCCl): a 1 vs 0; b 0 vs 1"
    assert [why[r] for r in (1, 4, 7)] == [benzene] * 3
    assert [why[r] for r in (8, 9)] == [both] * 2
    assert not {1, 4, 7, 8, 9} & set(read_shards(tmp_path / "s", 3).index)


def test_an_agreeing_group_keeps_its_first_row_with_the_union_of_labels(tmp_path, labelled):
    counts = run_shard(labelled, tmp_path / "s", tmp_path / "r.parquet", 3, "reject")
    kept = read_shards(tmp_path / "s", 3)
    assert kept.index.tolist() == [0, 2, 3]
    assert kept[["a", "b"]].values.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.5, 1.0]]
    assert kept.loc[0, "input"] == "CCO"  # the first row itself, not a later duplicate
    why = reasons(tmp_path / "r.parquet")
    assert why[5] == "duplicate of row 0 (same key CCO)"
    assert why[6] == "duplicate of row 3 (same key CC(=O)O)"
    assert counts == {
        "kept": 3,
        "rejected": 7,
        "duplicate_groups": 4,
        "duplicate_rows_rejected": 2,
        "conflicting_groups": 2,
        "conflicting_rows_rejected": 5,
        "labels_filled": 2,
    }


def test_missing_labels_never_conflict(tmp_path):
    rows = [("CCO", "", "1"), ("OCC", "1", ""), ("CCO", "", ""), ("C(O)C", "1", "1")]
    std = standardize_rows(tmp_path, rows)
    counts = run_shard(std, tmp_path / "s", tmp_path / "r.parquet", 1, "reject")
    assert counts["conflicting_groups"] == 0
    kept = read_shards(tmp_path / "s", 1)
    assert kept.index.tolist() == [0]
    assert kept[["a", "b"]].values.tolist() == [[1.0, 1.0]]


def test_close_but_different_values_conflict_and_read_apart(tmp_path):
    std = standardize_rows(tmp_path, [("CCO", "0.30000000000000004"), ("OCC", "0.3")], tasks=("y",))
    run_shard(std, tmp_path / "s", tmp_path / "r.parquet", 1, "reject")
    assert reasons(tmp_path / "r.parquet")[0].endswith(": y 0.30000000000000004 vs 0.3")


def test_first_policy_keeps_the_first_row_as_it_is(tmp_path, labelled):
    counts = run_shard(labelled, tmp_path / "s", tmp_path / "r.parquet", 3, "first")
    kept = read_shards(tmp_path / "s", 3)
    assert kept.index.tolist() == [0, 1, 2, 3, 8]
    assert kept.loc[0, "a"] == 1.0 and math.isnan(kept.loc[0, "b"])  # no label merged in
    assert kept.loc[1, ["a", "b"]].tolist() == [1.0, 1.0]
    assert reasons(tmp_path / "r.parquet") == {
        4: "duplicate of row 1 (same key c1ccccc1)",
        5: "duplicate of row 0 (same key CCO)",
        6: "duplicate of row 3 (same key CC(=O)O)",
        7: "duplicate of row 1 (same key c1ccccc1)",
        9: "duplicate of row 8 (same key CCCl)",
    }
    groups = {k: counts[k] for k in ("duplicate_groups", "duplicate_rows_rejected", "conflicting_groups")}
    assert groups == {"duplicate_groups": 4, "duplicate_rows_rejected": 5, "conflicting_groups": 0}


def test_an_unknown_policy_is_an_error(tmp_path, labelled):
    with pytest.raises(ValueError, match="duplicates must be one of"):
        run_shard(labelled, tmp_path / "s", tmp_path / "r.parquet", 1, "last")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("reject", {"duplicate_groups": 2, "duplicate_rows_rejected": 1, "conflicting_groups": 1}),
        ("first", {"duplicate_groups": 2, "duplicate_rows_rejected": 2, "conflicting_groups": 0}),
    ],
)
def test_the_accounting_counts_duplicate_and_conflicting_groups(tmp_path, policy, expected):
    rows = ["smiles,y", "CCO,1", "c1ccccc1,1", "OCC,1", "C1=CC=CC=C1,0", "CCN,"]
    (tmp_path / "dup.csv").write_text("\n".join(rows) + "\n")
    config = toy_config(tmp_path, ["dup"], {"y": "y"}, duplicate_labels=policy)
    summary = run_chain(config, "dup", tmp_path / "out")
    assert summary["rows_in"] == 5 and summary["featurized"] + summary["rejected"] == 5
    conflicting_rows = 2 * expected["conflicting_groups"]
    assert summary["conflicting_rows_rejected"] == conflicting_rows
    assert {k: summary[k] for k in expected} == expected
    assert summary["featurized"] == 5 - expected["duplicate_rows_rejected"] - conflicting_rows
    written = json.loads((tmp_path / "out" / "dup" / "accounting.json").read_text())
    assert {k: written[k] for k in expected} == expected
