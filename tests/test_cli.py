"""The data-stage subcommands of the ``mmsa`` command line, run as a user would, in order, on a
local two-task CSV that the test writes."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from rdkit import Chem

from mmsa.features.cache import FeatureCache
from mmsa.features.loader import FeatureStore, read_manifests
from mmsa.plan.config import load_config
from mmsa.stages.inputs import feature_settings

UNEMBEDDABLE = "C1=CC2=CC=C1C=C2"  # parses, but no 3D geometry satisfies this ring system
ROWS = [  # smiles, active, toxic
    ("CCO", "1", "0"),
    ("c1ccccc1O", "0", "1"),
    ("CC(=O)[O-].[Na+]", "1", ""),  # a salt: the largest fragment, neutralized, is acetic acid
    ("C1CC", "0", "0"),  # unclosed ring: rejected by standardize
    ("OCC", "1", "0"),  # ethanol again: rejected by shard as a duplicate of row 0
    ("CC(=O)Oc1ccccc1C(=O)O", "0", "1"),
    ("CN1CCC[C@H]1c1cccnc1", "", "1"),
    ("c1ccncc1", "1", "0"),
    (UNEMBEDDABLE, "0", "0"),  # featurized without a conformer
]


def mmsa(workdir, *args):
    """``python -m mmsa.cli ARGS`` in ``workdir``; its stdout's last line, parsed as JSON if it is."""
    run = subprocess.run(
        [sys.executable, "-m", "mmsa.cli", *map(str, args)], cwd=workdir, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """fetch -> standardize -> shard -> featurize (every shard), each a separate command."""
    work = tmp_path_factory.mktemp("cli")
    lines = [",".join(row) for row in ROWS]
    (work / "mini.csv").write_text("smiles,active,toxic\n" + "\n".join(lines) + "\n")
    config = {
        "cache_dir": str(work / "cache"),
        "data": {
            "local_dir": str(work),
            "custom": {
                "mini": {
                    "source": "local",
                    "smiles_column": "smiles",
                    "task_type": "classification",
                    "tasks": {"active": "active", "toxic": "toxic"},
                    "expected_rows": len(ROWS),
                }
            },
            "shard_size": 5,  # two shards
        },
        "featurize": {"image_size": 32, "conformer": {"optimize_steps": 100}},
        "pretrain": {"dataset": "mini"},
        "finetune": {"datasets": ["mini"]},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cfg = ["--config", "config.yaml"]
    out = {"work": work}
    out["fetch"] = mmsa(work, "fetch", "mini", *cfg, "--out", "raw.parquet")
    out["standardize"] = mmsa(
        work,
        "standardize",
        "mini",
        *cfg,
        "--raw",
        "raw.parquet",
        "--out",
        "std",
        "--rejects",
        "std-rej.parquet",
    )
    out["shard"] = mmsa(
        work,
        "shard",
        "mini",
        *cfg,
        "--standardized",
        "std",
        "--out",
        "shards",
        "--rejects",
        "shard-rej.parquet",
    )
    out["featurize"] = [
        mmsa(
            work,
            "featurize",
            shard,
            *cfg,
            "--manifest",
            f"man-{i}.parquet",
            "--rejects",
            f"feat-rej-{i}.parquet",
        )
        for i, shard in enumerate(sorted((work / "shards").glob("shard-*.parquet")))
    ]
    return out


def test_fetch_writes_every_row_of_the_local_file(stages):
    raw = pd.read_parquet(stages["work"] / "raw.parquet")
    assert list(raw.columns) == ["row", "smiles", "active", "toxic", "fetch_error"]
    assert raw["fetch_error"].isna().all()  # no cell over the field limit
    assert raw["row"].tolist() == list(range(len(ROWS)))
    assert list(raw[["smiles", "active", "toxic"]].itertuples(index=False, name=None)) == ROWS


def test_standardize_keys_molecules_and_rejects_the_unparsable_row(stages):
    work = stages["work"]
    assert stages["standardize"] == {"rows": len(ROWS), "kept": len(ROWS) - 1, "rejected": 1}
    rejects = pd.read_parquet(work / "std-rej.parquet")
    assert rejects["row"].tolist() == [3] and "unclosed ring" in rejects["reason"].iloc[0]
    kept = pd.concat([pd.read_parquet(p) for p in sorted((work / "std").glob("*.parquet"))])
    keys = dict(zip(kept["row"], kept["key"], strict=True))
    assert keys[2] == "CC(=O)O" and keys[0] == keys[4] == "CCO"
    assert all(keys[r] == Chem.CanonSmiles(ROWS[r][0]) for r in (1, 5, 6, 7, 8))
    labels = kept.set_index("row")[["active", "toxic"]]
    assert labels.loc[1].tolist() == [0.0, 1.0] and np.isnan(labels.loc[2, "toxic"])
    assert np.isnan(labels.loc[6, "active"]) and labels.loc[6, "toxic"] == 1.0


def test_shard_splits_the_molecules_once_each_and_rejects_the_duplicate(stages):
    work = stages["work"]
    assert stages["shard"]["kept"] == len(ROWS) - 2 and stages["shard"]["duplicate_rows_rejected"] == 1
    assert pd.read_parquet(work / "shard-rej.parquet")["row"].tolist() == [4]
    shards = [pd.read_parquet(p) for p in sorted((work / "shards").glob("shard-*.parquet"))]
    assert len(shards) == 2
    rows = sorted(r for s in shards for r in s["row"])
    assert rows == [0, 1, 2, 5, 6, 7, 8]


def test_featurize_fills_the_cache_and_lists_every_molecule_in_a_manifest(stages):
    work = stages["work"]
    shards = [pd.read_parquet(p) for p in sorted((work / "shards").glob("shard-*.parquet"))]
    manifests = [work / f"man-{i}.parquet" for i in range(len(shards))]
    for shard, manifest, summary in zip(shards, manifests, stages["featurize"], strict=True):
        listed = pd.read_parquet(manifest)
        assert (
            listed["row"].tolist() == shard["row"].tolist()
            and listed["key"].tolist() == shard["key"].tolist()
        )
        assert summary["featurized"] == summary["computed"] == len(shard) and summary["rejected"] == 0
    listed = pd.concat([pd.read_parquet(m) for m in manifests]).set_index("key")
    assert not listed.loc[Chem.CanonSmiles(UNEMBEDDABLE), "conf_ok"]
    assert listed.drop(Chem.CanonSmiles(UNEMBEDDABLE))["conf_ok"].all() and listed["image_ok"].all()
    config = load_config(work / "config.yaml")
    store = FeatureStore(
        FeatureCache(config["cache_dir"], feature_settings(config)), read_manifests(manifests)
    )
    keys = listed.index.tolist()
    for key, data in zip(keys, store.get(keys), strict=True):
        assert data.num_nodes == Chem.MolFromSmiles(key).GetNumAtoms()
        assert tuple(data.image.shape[-2:]) == (32, 32)


def test_featurizing_a_shard_again_reuses_the_cache(stages):
    work = stages["work"]
    shard = sorted((work / "shards").glob("shard-*.parquet"))[0]
    again = mmsa(
        work,
        "featurize",
        shard,
        "--config",
        "config.yaml",
        "--manifest",
        "m.parquet",
        "--rejects",
        "r.parquet",
    )
    assert again["computed"] == 0 and again["reused"] == again["featurized"] == len(pd.read_parquet(shard))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--neighbours", "-1", "argument --neighbours: -1 is less than 0"),
        ("--threads", "0", "argument --threads: 0 is less than 1"),
        ("--threads", "two", "argument --threads: 'two' is not a whole number"),
    ],
)
def test_counts_that_can_only_mean_nothing_are_refused_by_the_parser(capsys, option, value, message):
    """--neighbours -1 and --threads 0 were accepted (issue 33)."""
    from mmsa.cli import main

    with pytest.raises(SystemExit) as exit_status:
        main(["predict", "in.csv", "--model", "m.pt", "--out", "o.csv", option, value])
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"mmsa predict: error: {message}"
