"""The pretraining mixture: seeded per-source samples, de-duplicated, without any finetuning
molecule, every row accounted for; and the coverage table. Small local CSVs, no featurization."""

import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmsa.data.coverage import coverage_table, write_coverage
from mmsa.data.key_shards import shard_path
from mmsa.data.raw_table import fetch_dataset
from mmsa.data.row_limit import RowLimit
from mmsa.plan.config import ConfigError, validate_config
from mmsa.plan.config_slices import stage_config
from mmsa.plan.datasets import dataset_spec, fetched_from, holdout_datasets, n_shards
from mmsa.stages.account import account
from mmsa.stages.fetch import fetch
from mmsa.stages.shard import shard
from mmsa.stages.standardize import standardize

BIG = [f"{'C' * k}N" for k in range(1, 21)]  # 20 amines, none in the finetuning set
SMALL = ["CCO", "OCC", "C1CC1", "C1CC1", "xx("]  # a finetuning molecule twice, a duplicate, a bad row
FINETUNE = ["OCC,1", "c1ccccc1,0", "C[N+](C)(C)C,1"]  # the cation cannot be neutralized


def local(task_type="none", **extra):
    return {"source": "local", "smiles_column": "smiles", "task_type": task_type, **extra}


@pytest.fixture
def config(tmp_path):
    (tmp_path / "big.csv").write_text("smiles\n" + "\n".join(BIG) + "\n")
    (tmp_path / "small.csv").write_text("smiles,label\n" + "\n".join(f"{s},1" for s in SMALL) + "\n")
    (tmp_path / "ft.csv").write_text("smiles,y\n" + "\n".join(FINETUNE) + "\n")
    return validate_config(
        {
            "cache_dir": str(tmp_path / "cache"),
            "data": {
                "local_dir": str(tmp_path),
                "custom": {"big": local(), "small": local(), "ft": local("classification", tasks={"y": "y"})},
                "shard_size": 4,
            },
            "pretrain": {"dataset": "corpus", "corpus": {"small": 10, "big": 5}},
            "finetune": {"datasets": ["ft"]},
        }
    )


def prepared(config, tmp_path, name):
    """fetch and standardize ``name`` into ``tmp_path/name``; the folder."""
    d = tmp_path / name
    fetch(config, name, d / "raw.parquet")
    standardize(config, name, d / "raw.parquet", d / "std", d / "rej-std.parquet")
    return d


def test_each_source_is_sampled_as_sample_rows_would_in_sorted_order(config, tmp_path):
    fetch(config, "corpus", tmp_path / "a.parquet")
    fetch(config, "corpus", tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    raw = pq.read_table(tmp_path / "a.parquet").to_pandas()
    assert raw.columns.tolist() == ["row", "source_dataset", "source_row", "smiles", "fetch_error"]
    assert raw["row"].tolist() == list(range(10))
    assert raw["source_dataset"].tolist() == ["big"] * 5 + ["small"] * 5  # sorted, not config order
    fetch_dataset(
        dataset_spec(config, "big"),
        tmp_path / "big.parquet",
        config["cache_dir"],
        tmp_path,
        RowLimit("sample", 5, config["seed"]),
    )
    alone = pq.read_table(tmp_path / "big.parquet").to_pandas()
    assert raw["smiles"][:5].tolist() == alone["smiles"].tolist()
    assert raw["source_row"].tolist() == [*alone["source_row"], 0, 1, 2, 3, 4]
    assert raw["smiles"][5:].tolist() == SMALL  # fewer rows than asked: every one


def test_no_finetuning_molecule_is_left_and_every_row_is_accounted(config, tmp_path):
    assert holdout_datasets(config, "corpus") == ["ft"] and holdout_datasets(config, "ft") == []
    corpus, ft = prepared(config, tmp_path, "corpus"), prepared(config, tmp_path, "ft")
    counts = shard(
        config,
        "corpus",
        corpus / "std",
        corpus / "shards",
        corpus / "rej-shard.parquet",
        holdouts={"ft": ft / "std"},
    )
    assert counts["finetune_molecules_rejected"] == 2  # CCO and OCC: every copy, not only one
    assert counts["finetune_molecules_by_dataset"] == {"ft": 2}
    assert counts["duplicate_rows_rejected"] == 1  # the second C1CC1
    shards = [shard_path(corpus / "shards", s) for s in range(n_shards(config, "corpus"))]
    kept = pd.concat([pq.read_table(s).to_pandas() for s in shards])
    assert "CCO" not in set(kept["key"]) and len(kept) == 6
    reasons = pq.read_table(corpus / "rej-shard.parquet").to_pandas().set_index("row")["reason"]
    assert reasons[5] == "molecule of finetuning dataset ft (key CCO)"
    assert reasons[6] == "molecule of finetuning dataset ft (key CCO)"
    manifests = []
    for i, s in enumerate(shards):  # stand-ins for the featurize manifests: every kept row featurized
        rows = pq.read_table(s, columns=["row"]).to_pandas()
        manifests.append(tmp_path / f"man-{i}.parquet")
        pq.write_table(pa.Table.from_pandas(rows.assign(conf_ok=True, image_ok=True)), manifests[-1])
    summary = account(
        "corpus",
        corpus / "raw.parquet",
        [corpus / "rej-std.parquet", corpus / "rej-shard.parquet"],
        manifests,
        tmp_path / "accounting.json",
        tmp_path / "rejects.csv",
    )
    assert (summary["rows_in"], summary["featurized"], summary["rejected"]) == (10, 6, 4)
    assert summary["finetune_molecules_by_dataset"] == {"ft": 2}
    assert summary["sources"] == {
        "big": {"requested": 5, "taken": 5, "featurized": 5},
        "small": {"requested": 10, "taken": 5, "featurized": 1},
    }


def test_the_coverage_table_names_what_the_corpus_lacks(config, tmp_path):
    corpus, ft = prepared(config, tmp_path, "corpus"), prepared(config, tmp_path, "ft")
    shard(
        config, "corpus", corpus / "std", corpus / "shards", corpus / "r.parquet", holdouts={"ft": ft / "std"}
    )
    shard(config, "ft", ft / "std", ft / "shards", ft / "r.parquet")
    table = write_coverage(
        "corpus", {"ft": ft / "shards", "corpus": corpus / "shards"}, tmp_path / "c.csv", tmp_path / "c.md"
    ).set_index("dataset")
    assert table["role"].tolist() == ["pretraining", "finetuning"]
    assert table.loc["corpus", "elements"] == "C N" and table.loc["ft", "elements"] == "C N O"
    assert table.loc["ft", "elements_not_in_corpus"] == "O"
    assert (table.loc["ft", "molecules"], table.loc["ft", "charged_atoms"]) == (3, 1)
    assert table.loc["ft", "heavy_atoms_p50"] == 5.0  # 3, 5 and 6 heavy atoms
    assert "| ft | finetuning | 3 |" in (tmp_path / "c.md").read_text()
    with pytest.raises(ValueError, match="no shards for the pretraining dataset"):
        coverage_table("zinc", {"ft": ft / "shards"})


def test_the_corpus_slices_and_holdouts_follow_the_config(config):
    fetched = stage_config(config, "fetch", "corpus")
    assert fetched["pretrain"] == {"corpus": {"small": 10, "big": 5}} and "big" in fetched["data"]["custom"]
    assert n_shards(config, "corpus") == 4  # 15 rows at most, 4 per shard
    # every stage that builds the mixture's spec is handed what it is built from
    for stage in ("fetch", "standardize", "shard"):
        part = stage_config(config, stage, "corpus")
        assert dataset_spec(part, "corpus").mixture == {"big": 5, "small": 10}
    # the fetch rule's spec parameter: the sources' specs for the mixture, unchanged for the others
    assert set(fetched_from(config, "corpus")["sources"]) == {"big", "small"}
    assert fetched_from(config, "ft") == dataset_spec(config, "ft").to_dict()


@pytest.mark.parametrize(
    ("pretrain", "finetune", "message"),
    [
        ({"dataset": "corpus"}, ["bbbp"], "set both or neither"),
        ({"corpus": {"zinc": 10}}, ["bbbp"], "set both or neither"),
        (
            {"dataset": "corpus", "corpus": {"zinx": 10}},
            ["bbbp"],
            "at 'pretrain.corpus.zinx': unknown dataset",
        ),
        ({"dataset": "corpus", "corpus": {"zinc": 10}}, ["corpus"], "the unlabelled pretraining mixture"),
    ],
)
def test_a_mixture_that_cannot_be_built_is_a_config_error(pretrain, finetune, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config({"pretrain": pretrain, "finetune": {"datasets": finetune}})
