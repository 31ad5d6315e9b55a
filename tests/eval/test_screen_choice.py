"""Issue 32's screen rule (benchmarks/screen_choice.py): a variant replaces the stage's first one
only on a resolved validation gain of mmsa over no-pretrain, each paired with its own baseline;
test scores are never read."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_1samp


@pytest.fixture(scope="module")
def screen(repo):
    import sys

    sys.path.insert(0, str(repo / "benchmarks"))  # the script imports its sibling transfer_study
    try:
        spec = importlib.util.spec_from_file_location(
            "screen_choice", repo / "benchmarks" / "screen_choice.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(repo / "benchmarks"))


def scores(screen, gains: dict[str, np.ndarray]) -> pd.DataFrame:
    """Validation scores where no-pretrain is 0.7 on every split and dataset of every baseline,
    and each variant's mmsa is 0.7 + its gain on that split (the same on both datasets)."""
    rows = []
    for variant, gain in gains.items():
        base = screen.baseline_of(screen.VARIANTS[variant])
        for seed, g in enumerate(gain):
            for dataset in ("bace", "bbbp"):
                common = {
                    "dataset": dataset,
                    "seed": seed,
                    "metric": "roc_auc",
                    "task_type": "classification",
                }
                rows.append({**common, "run": variant, "model": "mmsa", "valid": 0.7 + g, "test": 0.0})
                rows.append({**common, "run": base, "model": "no-pretrain", "valid": 0.7, "test": 1.0})
    return pd.DataFrame(rows).drop_duplicates(["run", "dataset", "model", "seed"])


def test_a_variant_replaces_the_first_only_on_a_resolved_gain(screen):
    rng = np.random.default_rng(0)
    first = rng.normal(0.0, 0.01, 10)
    clear = first + 0.02 + rng.normal(0, 0.002, 10)  # a resolved gain over the first
    noisy = first + rng.normal(0.005, 0.03, 10)  # inside the noise
    assert ttest_1samp(noisy - first, 0).confidence_interval().low < 0
    frame = scores(screen, {"default-e5": first, "desc-default-e5": noisy, "inputs-default-e5": clear})
    chosen, table = screen.choose(frame, ["default-e5", "desc-default-e5", "inputs-default-e5"])
    assert chosen == "inputs-default-e5"
    assert table["resolved gain"].tolist() == ["—", "no", "yes"]
    chosen, _ = screen.choose(frame, ["default-e5", "desc-default-e5"])
    assert chosen == "default-e5"  # the cheaper first stays when the gain is not resolved


def test_only_validation_scores_are_read(screen):
    assert "test" not in screen.COLUMNS and "valid" in screen.COLUMNS


def test_a_stage_in_another_folder_is_paired_with_the_earlier_choice(screen, tmp_path, capsys):
    """Stage B's runs live in their own folder; the earlier choice's scores come from stage A's."""
    rng = np.random.default_rng(1)
    first = rng.normal(0.0, 0.01, 10)
    frame = scores(
        screen, {"default-e5": first, "inputs-default-e5": first + 0.03 + rng.normal(0, 0.002, 10)}
    )
    a, b = frame[frame["run"].isin(["default-e5", "baseline"])], frame[~frame["run"].isin(["default-e5"])]
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)  # holds the shared baseline too
    args = ["--scores", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert screen.main([*args, "--variants", "default-e5", "inputs-default-e5"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "chosen: inputs-default-e5"
