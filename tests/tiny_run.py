"""The tiny workflow run that the end-to-end tests share (the ``tiny`` fixture of conftest): one
real Snakemake run that several test modules read, instead of one run each."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from rdkit import Chem

from helpers import run_snakemake, tiny_workflow_config

TWO_TASKS = {"p_np": "p_np", "rings3": "rings3"}


def write_two_task_csv(path: Path, download_cache: Path) -> None:
    """A local two-task classification dataset: 60 BBBP molecules (rows 200-259, none of those
    the tiny run fetches) with BBBP's label and "three or more rings"; every 7th label of each
    task is left blank, as in multi-task MoleculeNet sets."""
    from mmsa.data.raw_table import fetch_dataset
    from mmsa.data.registry import get_spec
    from mmsa.data.row_limit import RowLimit

    raw = path.parent / "bbbp-rows.parquet"
    fetch_dataset(get_spec("bbbp"), raw, download_cache, limit=RowLimit("first", 260))
    rows = pd.read_parquet(raw).iloc[200:260].reset_index(drop=True)
    mols = [Chem.MolFromSmiles(s) for s in rows["smiles"]]
    rings = [int(m is not None and m.GetRingInfo().NumRings() >= 3) for m in mols]
    frame = pd.DataFrame({"smiles": rows["smiles"], "p_np": rows["p_np"], "rings3": rings}).astype(str)
    frame.loc[frame.index % 7 == 3, "p_np"] = ""
    frame.loc[frame.index % 7 == 5, "rings3"] = ""
    frame.to_csv(path, index=False)


def run_tiny(work: Path, download_cache: Path) -> tuple[Path, Path]:
    """A tiny config over real data: ZINC and BBBP (PyPI archives), and a two-task
    classification set the test writes into a local folder (the local-folder source)."""
    local = work / "local"
    local.mkdir()
    write_two_task_csv(local / "twotask.csv", download_cache)
    config = tiny_workflow_config(work, download_cache)
    config["data"]["local_dir"] = str(local)
    config["data"]["custom"] = {
        "twotask": {
            "source": "local",
            "smiles_column": "smiles",
            "task_type": "classification",
            "tasks": TWO_TASKS,
            "expected_rows": 60,  # two shards of 30
        }
    }
    config["data"]["max_rows"] = {"zinc": 48, "bbbp": 60}
    config["data"]["shard_size"] = 30
    config["finetune"]["datasets"] = ["bbbp", "twotask"]
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run = run_snakemake(work, path)
    assert run.returncode == 0, run.stderr[-4000:]
    return work, path
