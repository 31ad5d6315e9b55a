import pyarrow.parquet as pq
import pytest

from mmsa.data.prepare import run_standardize
from mmsa.data.shard import run_shard, shard_path
from mmsa.data.standardize import StandardizeOptions
from mmsa.hashing import shard_of
from mmsa.io import write_parquet

SMILES = ["CCO", "OCC", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "C1CCCCC1", "CCOC", "CC#N", "CCO"]


@pytest.fixture
def standardized(tmp_path):
    import pyarrow as pa

    raw = tmp_path / "raw.parquet"
    write_parquet(pa.table({"row": list(range(len(SMILES))), "smiles": SMILES}), raw)
    run_standardize(raw, tmp_path / "std", tmp_path / "rej.parquet", "float", StandardizeOptions())
    return tmp_path / "std"


def test_shards_are_deterministic_and_follow_the_key_hash(tmp_path, standardized):
    run_shard(standardized, tmp_path / "a", tmp_path / "ra.parquet", 3, workers=1)
    run_shard(standardized, tmp_path / "b", tmp_path / "rb.parquet", 3, workers=2)
    for s in range(3):
        a = pq.read_table(shard_path(tmp_path / "a", s))
        assert a.equals(pq.read_table(shard_path(tmp_path / "b", s)))
        assert all(shard_of(k, 3) == s for k in a.column("key").to_pylist())
        assert a.column("row").to_pylist() == sorted(a.column("row").to_pylist())


def test_duplicates_are_rejected_with_the_row_they_repeat(tmp_path, standardized):
    counts = run_shard(standardized, tmp_path / "s", tmp_path / "r.parquet", 2)
    rejects = pq.read_table(tmp_path / "r.parquet").to_pandas()
    assert counts == {"kept": 8, "rejected": 2}
    assert rejects["row"].tolist() == [1, 9]
    assert rejects["reason"].tolist() == ["duplicate of row 0 (same key CCO)"] * 2


def test_dedupe_can_be_switched_off(tmp_path, standardized):
    counts = run_shard(standardized, tmp_path / "s", tmp_path / "r.parquet", 2, dedupe=False)
    assert counts == {"kept": 10, "rejected": 0}
