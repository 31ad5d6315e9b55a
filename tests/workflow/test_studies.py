"""A study (workflow/studies.smk): runs of the real workflow as modules of one Snakemake DAG, each
in its own folder, paired with its references seed by seed on byte-identical splits."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import REPO
from mmsa.plan.config import ConfigError
from mmsa.plan.studies import load_study
from mmsa.runtime.errors import InputError
from mmsa.stages.study_report import paired

pytestmark = pytest.mark.slow


def run_study(repo, folder, study):
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "workflow" / "studies.smk")]
    command += ["--config", f"study={study}", "--directory", str(folder), "--cores", "2"]
    return subprocess.run(command, capture_output=True, text=True, cwd=repo)


@pytest.fixture(scope="module")
def tiny_study(repo, tmp_path_factory, tiny):
    """config/studies/tiny.yaml, run once on the shared tiny run's feature cache and from its
    pretrained model (pretrain.weights), so that no molecule is featurized twice and nothing is
    pretrained again. The weights are given as a study would ship them, relative to the study's
    folder (the run's module must not read them under its own prefix)."""
    folder = tmp_path_factory.mktemp("study")
    work, tiny_config = tiny
    study = yaml.safe_load((repo / "config" / "studies" / "tiny.yaml").read_text())
    study["shared"]["cache_dir"] = yaml.safe_load(tiny_config.read_text())["cache_dir"]
    (folder / "weights").mkdir()
    (folder / "weights" / "tiny.pt").symlink_to(work / "results" / "pretrain" / "model.pt")
    study["runs"]["paper"]["config"]["pretrain"] = {"weights": "weights/tiny.pt"}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(study))
    run = run_study(repo, folder, path)
    assert run.returncode == 0, run.stderr[-4000:]
    return folder, path


def test_each_run_is_a_workflow_of_its_own_and_every_result_is_in_the_scores(tiny_study):
    folder, _ = tiny_study
    scores = pd.read_csv(folder / "study" / "scores.csv")
    assert sorted(set(zip(scores["run"], scores["model"], strict=True))) == [
        ("paper", "mmsa"),
        ("paper", "mmsa-graph"),
        ("references", "ecfp-rf"),
        ("references", "no-pretrain"),
    ]
    assert sorted(scores["seed"].unique()) == [0, 1, 2] and len(scores) == 12
    assert scores["split_sha256"].nunique() == 1  # both runs split bbbp the same way
    assert (folder / "runs" / "paper" / "results" / "pretrain" / "model.pt").exists()
    assert not (folder / "runs" / "references" / "results" / "pretrain").exists()  # nothing it needs


def test_a_run_is_paired_with_its_references_seed_by_seed_on_validation(tiny_study):
    folder, _ = tiny_study
    scores = pd.read_csv(folder / "study" / "scores.csv").set_index(["run", "model", "seed"])["valid"]
    table = pd.read_csv(folder / "study" / "comparisons.csv")
    row = table.query("model == 'mmsa' and reference == 'no-pretrain' and dataset == 'bbbp'").iloc[0]
    differences = [scores["paper", "mmsa", s] - scores["references", "no-pretrain", s] for s in range(3)]
    kept = [d for d in differences if not np.isnan(d)]
    assert row["run"] == "paper" and row["references"] == "references"
    assert row["pairs"] == len(kept) and row["dropped"] == 3 - len(kept)
    assert row["mean_difference"] == pytest.approx(np.mean(kept), abs=1e-12)
    assert set(table["model"]) == {"mmsa", "mmsa-graph"}  # references are not paired with themselves
    text = (folder / "study" / "study.md").read_text()
    assert "Valid scores" in text and "## Model − no-pretrain" in text and "## Model − ecfp-rf" in text


def test_a_finished_study_has_nothing_left_to_do(repo, tiny_study):
    folder, path = tiny_study
    again = run_study(repo, folder, path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def _write(tmp_path, study: dict):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"runs": {"a": {"config": {}, "reference": "b"}}}, r"runs.a: unknown key\(s\) \['reference'\]"),
        ({"runs": {"a": {"references": "nobody"}}}, "runs.a.references: no run named 'nobody'"),
        ({"runs": {"a": {"references": ["a"]}}}, r"runs.a.references: the name of one run, not \['a'\]"),
        ({"score": "train"}, "score 'train': use one of valid, test"),
        ({"base": "config/nope.yaml"}, "no such config file"),
        (
            {"runs": {"a": {"references": "b"}, "b": {"config": {"finetune": {"models": ["mmsa"]}}}}},
            "runs.b runs none of the references",
        ),
        (
            {
                "runs": {
                    "a": {"references": "b", "config": {"finetune": {"settings": {"lr": 0.01}}}},
                    "b": {"config": {"finetune": {"models": ["no-pretrain"]}}},
                }
            },
            "runs.a and its references differ in finetune.settings",
        ),
        ({"runs": {"a": {"config": {"finetune": {"epochs": 3}}}}}, "run 'a'"),
    ],
)
def test_a_study_the_pipeline_cannot_pair_is_refused_naming_the_key(repo, tmp_path, change, message):
    study = {"base": "config/test.yaml", "runs": {"a": {}}, **change}
    with pytest.raises(ConfigError, match=message):
        load_study(_write(tmp_path, study), repo)


def test_runs_split_differently_are_not_paired(repo, tmp_path):
    study = load_study(
        _write(
            tmp_path,
            {
                "base": "config/test.yaml",
                "runs": {
                    "refs": {"config": {"finetune": {"models": ["no-pretrain"]}}},
                    "mine": {"references": "refs", "config": {"finetune": {"models": ["mmsa"]}}},
                },
            },
        ),
        repo,
    )
    rows = [
        {"run": run, "dataset": "bbbp", "model": model, "seed": 0, "split_sha256": sha, "metric": "roc_auc",
         "task_type": "classification", "valid": 0.7, "test": 0.7}
        for run, model, sha in (("refs", "no-pretrain", "a"), ("mine", "mmsa", "b"))
    ]  # fmt: skip
    with pytest.raises(InputError, match="run mine and its references refs split bbbp differently"):
        paired(study, pd.DataFrame(rows))


SHIPPED = sorted(REPO.glob("config/studies/*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_study_file_is_valid(repo, path):
    """A study file in config/studies/ is checked before it runs, and may wait days for its turn
    (issue 32's confirmation): every one must load, each run validated, each pair comparable."""
    study = load_study(path, repo)
    assert study.runs and any(run.references for run in study.runs.values())
