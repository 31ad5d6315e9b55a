"""Issue 32's screen rule (benchmarks/screen_choice.py): a variant replaces the stage's first one
only on a resolved validation gain of mmsa over no-pretrain, each paired with its own baseline as
the study declared it; test scores are never read."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import ttest_1samp

# each variant's baseline run: the descriptor-input variant has a baseline of its own settings
REFERENCES = {"default-e5": "baseline", "desc-default-e5": "baseline", "inputs-default-e5": "baseline-inputs"}


@pytest.fixture(scope="module")
def screen(repo):
    spec = importlib.util.spec_from_file_location("screen_choice", repo / "benchmarks" / "screen_choice.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scores(gains: dict[str, np.ndarray]) -> pd.DataFrame:
    """Validation scores where no-pretrain is 0.7 on every split and dataset of every baseline,
    and each variant's mmsa is 0.7 + its gain on that split (the same on both datasets)."""
    rows = []
    for variant, gain in gains.items():
        base = REFERENCES[variant]
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
    frame = scores({"default-e5": first, "desc-default-e5": noisy, "inputs-default-e5": clear})
    chosen, table = screen.choose(frame, ["default-e5", "desc-default-e5", "inputs-default-e5"], REFERENCES)
    assert chosen == "inputs-default-e5"
    assert table["resolved gain"].tolist() == ["—", "no", "yes"]
    chosen, _ = screen.choose(frame, ["default-e5", "desc-default-e5"], REFERENCES)
    assert chosen == "default-e5"  # the cheaper first stays when the gain is not resolved


def test_only_validation_scores_are_read(screen):
    assert "test" not in screen.COLUMNS and "valid" in screen.COLUMNS


def test_a_stage_in_another_folder_is_paired_with_the_earlier_choice(screen, tmp_path, capsys):
    """Stage B's runs live in their own folder; the earlier choice's scores come from stage A's."""
    rng = np.random.default_rng(1)
    first = rng.normal(0.0, 0.01, 10)
    frame = scores({"default-e5": first, "inputs-default-e5": first + 0.03 + rng.normal(0, 0.002, 10)})
    a, b = frame[frame["run"].isin(["default-e5", "baseline"])], frame[~frame["run"].isin(["default-e5"])]
    for name, part in (("a", a), ("b", b)):
        (tmp_path / name / "configs").mkdir(parents=True)
        part.to_csv(tmp_path / name / "scores.csv", index=False)  # b holds the shared baseline too
    write_configs(tmp_path / "a" / "configs", {"baseline": BASELINE, "default-e5": {"models": ["mmsa"]}})
    inputs = {"settings": {"descriptor_inputs": True}}
    write_configs(
        tmp_path / "b" / "configs",
        {"baseline-inputs": {**BASELINE, **inputs}, "inputs-default-e5": {"models": ["mmsa"], **inputs}},
    )
    args = ["--scores", str(tmp_path / "a" / "scores.csv"), str(tmp_path / "b" / "scores.csv")]
    args += ["--study", str(tmp_path / "a" / "configs"), str(tmp_path / "b" / "configs")]
    assert screen.main([*args, "--variants", "default-e5", "inputs-default-e5"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "chosen: inputs-default-e5"


BASELINE = {"models": ["no-pretrain", "ecfp-rf", "rf-physchem"]}


def write_configs(folder, finetune_blocks: dict[str, dict]) -> None:
    """A screen folder's configs/: one overlay per run, each with its finetuning block."""
    for run, block in finetune_blocks.items():
        (folder / f"{run}.yaml").write_text(yaml.safe_dump({"finetune": {"seeds": [0, 1], **block}}))


def test_a_variant_is_paired_with_the_baseline_of_its_own_finetuning(screen, tmp_path):
    """In a screen's configs/, a variant's baseline is the run of the references whose finetuning
    block (models aside) is the variant's; a variant no baseline matches has none."""
    inputs = {"settings": {"descriptor_inputs": True}}
    write_configs(
        tmp_path,
        {
            "baseline": BASELINE,
            "baseline-inputs": {**BASELINE, **inputs},
            "default-e5": {"models": ["mmsa"]},
            "inputs-default-e5": {"models": ["mmsa"], **inputs},
            "frozen": {"models": ["mmsa"], "settings": {"freeze_epochs": 3}},
        },
    )
    assert screen.declared_references(tmp_path) == {
        "default-e5": "baseline",
        "inputs-default-e5": "baseline-inputs",
    }
    with pytest.raises(SystemExit, match="frozen: no baseline run declared"):
        screen.validation_gains(pd.DataFrame(columns=screen.COLUMNS), "frozen", {})


def test_a_study_file_declares_its_references(screen, repo):
    assert screen.declared_references(repo / "config" / "studies" / "tiny.yaml") == {"paper": "references"}


def test_stage_a_of_the_kept_screen_chooses_the_paper_objective(screen, repo, capsys):
    """The kept scores and configs of issue 32's stage A give the choice its plan records."""
    kept = repo / "benchmarks" / "results" / "transfer_study" / "issue32_screen_a"
    args = ["--scores", str(kept / "scores.csv"), "--study", str(kept / "configs")]
    assert screen.main([*args, "--variants", "default-e5", "desc-default-e5", "desconly-default-e5"]) == 0
    out = capsys.readouterr().out
    row = "| desconly-default-e5 | 10 | +0.0017 [-0.0203, +0.0237] | +0.0033 [-0.0139, +0.0205] | no |"
    assert row in out
    assert out.strip().splitlines()[-1] == "chosen: default-e5"


def test_stages_c_and_d_of_the_kept_screen_keep_the_default_mixture_and_length(
    screen, repo, tmp_path, monkeypatch, capsys
):
    """Stage C's study gives its runs weights relative to its working folder, absent here; its
    references are read without them, so the kept files give the plan's choice from anywhere."""
    kept = repo / "benchmarks" / "results" / "transfer_study"
    monkeypatch.chdir(tmp_path)
    args = [
        "--scores",
        str(kept / "issue32_screen_b" / "scores.csv"),
        str(kept / "issue32_screen_cd" / "scores.csv"),
    ]
    args += [
        "--study",
        str(kept / "issue32_screen_b" / "configs"),
        str(kept / "issue32_screen_cd" / "study.yaml"),
    ]
    assert (
        screen.main([*args, "--variants", "inputs-default-e5", "inputs-mix10k-e5", "inputs-mix50k-e5"]) == 0
    )
    out = capsys.readouterr().out
    assert "| inputs-mix10k-e5 | 10 | +0.0101 [-0.0075, +0.0278] | -0.0030 [-0.0124, +0.0063] | no |" in out
    assert "| inputs-mix50k-e5 | 10 | +0.0151 [-0.0048, +0.0349] | +0.0019 [-0.0125, +0.0163] | no |" in out
    assert out.strip().splitlines()[-1] == "chosen: inputs-default-e5"
    assert screen.main([*args, "--variants", "inputs-default-e5", "inputs-default-e20"]) == 0
    out = capsys.readouterr().out
    assert "| inputs-default-e20 | 10 | +0.0139 [-0.0084, +0.0362] | +0.0007 [-0.0113, +0.0128] | no |" in out
    assert out.strip().splitlines()[-1] == "chosen: inputs-default-e5"
