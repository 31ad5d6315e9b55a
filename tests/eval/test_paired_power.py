"""The power figure of benchmarks/paired_power.py: the smallest difference n seeds resolve."""

import importlib.util
import json

import numpy as np
import pytest
from scipy.stats import ttest_1samp


@pytest.fixture(scope="module")
def paired_power(repo):
    import sys

    sys.path.insert(0, str(repo / "benchmarks"))  # the script imports its sibling _common
    try:
        spec = importlib.util.spec_from_file_location("paired_power", repo / "benchmarks" / "paired_power.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(repo / "benchmarks"))


def test_the_detectable_difference_matches_published_tables_and_a_simulation(paired_power):
    # Cohen's / G*Power's effect sizes for a two-sided paired t-test at 5% with 80% power
    assert paired_power.detectable_multiple(10) == pytest.approx(0.996, abs=0.002)
    assert paired_power.detectable_multiple(30) == pytest.approx(0.529, abs=0.002)
    # and the rejection rate of the t-test itself at that difference, 5 pairs, sd 1
    k = paired_power.detectable_multiple(5)
    draws = np.random.default_rng(0).normal(k, 1.0, size=(20000, 5))
    assert np.mean(ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05) == pytest.approx(0.8, abs=0.015)


def test_paired_sds_are_taken_over_a_results_folders_seeds(paired_power, tmp_path):
    diffs = [0.02, 0.05, -0.01]
    for seed, d in enumerate(diffs):
        for model, value in (("no-pretrain", 0.7), ("mmsa", 0.7 + d)):
            path = tmp_path / "finetune" / "bace" / model / f"seed-{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            record = {"dataset": "bace", "model": model, "seed": seed, "metric": "roc_auc"}
            record |= {"task_type": "classification", "valid": 0.0, "test": value, "test_last": 0.0}
            path.write_text(json.dumps(record | {"best_epoch": 1, "provenance": {}}))
    sds = paired_power.paired_sds(tmp_path, "no-pretrain")
    assert list(sds) == ["mmsa, bace"]
    assert sds["mmsa, bace"] == (pytest.approx(np.std(diffs, ddof=1)), 3)
    text = paired_power.power_table(sds, [3, 10])
    assert f"{paired_power.detectable_multiple(10) * np.std(diffs, ddof=1):.4f}" in text


def test_a_studys_scores_are_paired_across_its_runs(paired_power, tmp_path):
    """In a study, the chosen model and its references are in different runs of one scores.csv."""
    diffs = [0.03, -0.02, 0.01, 0.04]
    rows = ["run,dataset,model,seed,metric,task_type,valid,test"]
    for seed, d in enumerate(diffs):
        rows.append(f"references,bbbp,rf-physchem,{seed},roc_auc,classification,0.0,0.8")
        rows.append(f"chosen,bbbp,mmsa,{seed},roc_auc,classification,0.0,{0.8 + d}")
    scores = tmp_path / "scores.csv"
    scores.write_text("\n".join(rows) + "\n")
    sds = paired_power.paired_sds(scores, "rf-physchem")
    assert sds == {"mmsa, bbbp": (pytest.approx(np.std(diffs, ddof=1)), 4)}
    scores.write_text("\n".join([*rows, "other,bbbp,mmsa,0,roc_auc,classification,0.0,0.9"]) + "\n")
    with pytest.raises(SystemExit, match=r"runs \['chosen', 'other'\] share a model name"):
        paired_power.paired_sds(scores, "rf-physchem")
