"""The results report: mean ± std over seeds, the classification average, last-epoch table."""

import numpy as np
import pandas as pd
import pytest

from mmsa.eval.comparisons import comparisons, summarize
from mmsa.stages.report import comparisons_section, full_report, markdown


def jobs() -> pd.DataFrame:
    rows = [
        ("a", "mmsa", 0, 0.8, 0.7),
        ("a", "mmsa", 1, 0.6, 0.5),
        ("b", "mmsa", 0, 0.7, 0.7),
        ("a", "ecfp-rf", 0, 0.5, 0.5),
        ("b", "ecfp-rf", 0, 0.9, 0.9),
    ]
    frame = [
        {"dataset": d, "model": m, "seed": s, "metric": "roc_auc", "task_type": "classification", "test": t}
        | {"test_last": last, "valid": 0.0, "best_epoch": 1, "commit": "abc", "torch_threads": 1}
        for d, m, s, t, last in rows
    ]
    frame.append(
        {"dataset": "r", "model": "mmsa", "seed": 0, "metric": "rmse", "task_type": "regression", "test": 1.5}
        | {"test_last": 1.7, "valid": 0.0, "best_epoch": 2, "commit": "abc", "torch_threads": 1}
    )
    return pd.DataFrame(frame)


def test_report_table_has_mean_std_and_classification_average():
    table = summarize(jobs())
    row = table[(table.dataset == "a") & (table.model == "mmsa")].iloc[0]
    assert row["mean"] == pytest.approx(0.7) and row["std"] == pytest.approx(0.1) and row["seeds"] == 2
    text = markdown(table)
    assert "| a | roc_auc ↑ | 0.700 ± 0.100 | 0.500 ± 0.000 |" in text
    assert "| average (classification) | roc_auc ↑ | 0.700 | 0.700 |" in text
    assert "| r | rmse ↓ | 1.500 ± 0.000 | — |" in text
    undefined = summarize(jobs().assign(test=float("nan")))
    assert "| a | roc_auc ↑ | n/a | n/a |" in markdown(undefined)
    assert np.isclose(table[table.model == "ecfp-rf"]["mean"].mean(), 0.7)


def test_full_report_adds_last_epoch_of_networks_and_provenance():
    text = full_report(jobs())
    assert "Commit abc; torch threads per finetuning job: 1." in text
    last = text.split("## Test metric at the last epoch")[1]
    assert "ecfp-rf" not in last  # forests have no epochs
    assert "| a | roc_auc ↑ | 0.600 ± 0.100 |" in last and "| r | rmse ↓ | 1.700 ± 0.000 |" in last


def test_the_report_says_why_a_seed_has_no_test_metric():
    """lr .inf used to show n/a blamed on "a single-class test part", on a regression dataset."""
    frame = jobs().assign(test_undefined=None)
    diverged = "its predictions are not finite numbers (training diverged; a smaller lr?)"
    frame.loc[frame["dataset"] == "r", ["test", "test_undefined"]] = [float("nan"), diverged]
    frame.loc[(frame["dataset"] == "a") & (frame["model"] == "mmsa"), ["test", "test_undefined"]] = [
        float("nan"),
        "no task has both classes among its labelled rows",
    ]
    text = full_report(frame)
    assert (
        "No test metric for a mmsa (seeds 0, 1): no task has both classes among its labelled rows. "
        f"No test metric for r mmsa (seeds 0): {diverged}."
    ) in text
    assert "No test metric" not in full_report(jobs().assign(test_undefined=None))


def test_split_sizes_show_positives_of_classification_parts():
    stats = {
        "toy": {
            "0": {
                p: {"molecules": n, "labels": n, "positives": k}
                for p, n, k in [("train", 80, 30), ("valid", 10, 2), ("test", 10, 1)]
            }
        },
        "reg": {
            "0": {p: {"molecules": n, "labels": n} for p, n in [("train", 8), ("valid", 1), ("test", 1)]}
        },
    }
    text = full_report(jobs(), splits=stats)
    assert "| toy | 80 (30 positive labels) | 10 (2 positive labels) | 10 (1 positive labels) |" in text
    assert "| reg | 8 | 1 | 1 |" in text


def test_bar_axes_say_which_way_each_metric_is_better(monkeypatch):
    import mmsa.stages.report

    saved = []
    monkeypatch.setattr(mmsa.stages.report, "save_figure", lambda fig, path: saved.append(fig))
    mmsa.stages.report.plot_bars(summarize(jobs()), "unused.png")
    labels = [ax.get_ylabel() for ax in saved[0].axes if ax.get_ylabel()]
    assert labels == ["test roc_auc (higher is better)", "test rmse (lower is better)"]


def test_a_saved_figure_is_a_whole_png_and_nothing_else(tmp_path):
    from mmsa.runtime.figures import pyplot, save_figure

    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "plots" / "f.png")
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["f.png"]  # no temporary left
    assert (tmp_path / "plots" / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not pyplot().fignum_exists(fig.number)  # closed, so a long report does not pile them up


# Four seeds; model = reference + a known difference per seed, so every statistic below is
# computed by hand from these differences, not by the code under test.
SEEDS4 = [0, 1, 2, 3]
UNRESOLVED = [0.02, 0.04, -0.01, 0.03]  # mean 0.02, sd 0.021602: interval contains 0
RESOLVED = [0.05, 0.06, 0.04, 0.05]  # mean 0.05, sd 0.0081650
T_975_3 = 3.182446  # the t distribution's 97.5% quantile at 3 degrees of freedom (tables)


def paired_jobs(nan_seed: int | None = None) -> pd.DataFrame:
    base = {"a": 0.70, "b": 0.60}
    rows = []
    for seed in SEEDS4:
        for dataset, diffs in (("a", UNRESOLVED), ("b", RESOLVED)):
            ref = base[dataset] + 0.01 * seed
            values = {"no-pretrain": ref, "mmsa": ref + diffs[seed], "ecfp-rf": ref + 0.1}
            if dataset == "a" and seed == nan_seed:
                values["mmsa"] = float("nan")  # a single-class test part
            rows += [(dataset, m, seed, "roc_auc", "classification", v) for m, v in values.items()]
        rmse = 1.0 + 0.1 * seed  # lower is better: mmsa is 0.2 below no-pretrain on every seed
        values = {"no-pretrain": rmse, "mmsa": rmse - 0.2 + 0.01 * (seed % 2), "ecfp-rf": rmse}
        rows += [("r", m, seed, "rmse", "regression", v) for m, v in values.items()]
    keys = ("dataset", "model", "seed", "metric", "task_type", "test")
    return pd.DataFrame([dict(zip(keys, r, strict=True)) for r in rows]).assign(
        test_last=0.0, valid=0.0, best_epoch=1, commit="abc", torch_threads=1
    )


def test_paired_comparison_has_the_hand_computed_t_interval_and_p_value():
    from scipy.stats import t

    table = comparisons(paired_jobs())
    row = table.query("model == 'mmsa' and reference == 'no-pretrain' and dataset == 'a'").iloc[0]
    half = T_975_3 * 0.021602 / 2  # t * sd / sqrt(4)
    assert row["mean_difference"] == pytest.approx(0.02)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.02 - half, 0.02 + half), abs=1e-5)
    assert row["t_test_p"] == pytest.approx(2 * t.sf(0.02 / (0.021602 / 2), 3), rel=1e-4)
    assert (row["pairs"], row["dropped"]) == (4, 0) and np.isnan(row["wilcoxon_p"])  # 4 < 6 pairs
    assert not row["resolved"] and row["verdict"] == "not resolved"
    row = table.query("model == 'mmsa' and reference == 'no-pretrain' and dataset == 'b'").iloc[0]
    half = T_975_3 * 0.0081650 / 2
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.05 - half, 0.05 + half), abs=1e-5)
    assert row["resolved"] and row["verdict"] == "mmsa better"


def test_the_classification_average_is_averaged_per_seed_then_differenced_and_nan_seeds_dropped():
    table = comparisons(paired_jobs(nan_seed=2))
    mine = table.query("model == 'mmsa' and reference == 'no-pretrain'").set_index("dataset")
    assert list(mine.index) == ["a", "b", "r", "average (classification)"]  # no RMSE average
    assert mine.loc["a", ["pairs", "dropped"]].tolist() == [3, 1]
    kept = [0, 1, 3]  # seed 2 is undefined on a, so it leaves the average too
    expected = np.mean([(UNRESOLVED[s] + RESOLVED[s]) / 2 for s in kept])
    assert mine.loc["average (classification)", "mean_difference"] == pytest.approx(expected)
    assert mine.loc["average (classification)", ["pairs", "dropped"]].tolist() == [3, 1]
    assert mine.loc["a", "mean_difference"] == pytest.approx(np.mean([UNRESOLVED[s] for s in kept]))


def test_validation_scores_are_compared_when_asked_and_test_scores_stay_out():
    jobs = paired_jobs()
    # validation: mmsa 0.03 below no-pretrain on every seed of "a", while on test it is 0.02 above
    jobs["valid"] = jobs["test"]
    reference = jobs.query("dataset == 'a' and model == 'no-pretrain'").set_index("seed")["test"]
    mine = (jobs["dataset"] == "a") & (jobs["model"] == "mmsa")
    jobs.loc[mine, "valid"] = jobs.loc[mine, "seed"].map(reference) - 0.03
    table = comparisons(jobs, column="valid")
    row = table.query("model == 'mmsa' and reference == 'no-pretrain' and dataset == 'a'").iloc[0]
    assert row["mean_difference"] == pytest.approx(-0.03) and row["verdict"] == "no-pretrain better"
    test = comparisons(jobs).query("model == 'mmsa' and reference == 'no-pretrain' and dataset == 'a'")
    assert test.iloc[0]["mean_difference"] == pytest.approx(0.02)


def test_lower_rmse_is_the_better_side_and_references_are_paired_once():
    table = comparisons(paired_jobs())
    r = table.query("model == 'mmsa' and reference == 'no-pretrain' and dataset == 'r'").iloc[0]
    assert r["mean_difference"] == pytest.approx(-0.195) and r["ci_high"] < 0
    assert r["verdict"] == "mmsa better"
    rf = table.query("model == 'mmsa' and reference == 'ecfp-rf' and dataset == 'r'").iloc[0]
    assert rf["verdict"] == "mmsa better"
    pairs = set(zip(table["model"], table["reference"], strict=True))
    assert pairs == {("mmsa", "no-pretrain"), ("ecfp-rf", "no-pretrain"), ("mmsa", "ecfp-rf")}
    # every seed 0.1 above: no spread, so the interval is the point and the t-test undefined
    rf_a = table.query("model == 'ecfp-rf' and dataset == 'a'").iloc[0]
    assert rf_a["ci_low"] == rf_a["ci_high"] == pytest.approx(0.1) and np.isnan(rf_a["t_test_p"])
    assert rf_a["verdict"] == "ecfp-rf better"


def test_wilcoxon_from_six_pairs_is_the_exact_signed_rank_p():
    from mmsa.eval.comparisons import paired_statistics

    # six positive differences: the exact two-sided p is 2 / 2**6
    stats = paired_statistics(np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]))
    assert stats["wilcoxon_p"] == pytest.approx(2 / 64)
    assert np.isnan(paired_statistics(np.array([0.01, 0.02, 0.03, 0.04, 0.05]))["wilcoxon_p"])
    one = paired_statistics(np.array([0.3]))
    assert np.isnan(one["ci_low"]) and not one["resolved"]


def test_the_report_says_not_resolved_for_an_interval_containing_zero():
    config = {"finetune": {"settings": {"split": "scaffold"}}}
    section = full_report(paired_jobs()).split("## Paired differences")[1].split("\n## ")[0]
    assert "| mmsa − no-pretrain | a | roc_auc ↑ | 4 | +0.020 | [-0.014, +0.054] |" in section
    assert section.count("not resolved |") >= 1 and "| mmsa better |" in section
    assert "gain" not in section.lower()
    dropped = full_report(paired_jobs(nan_seed=2))
    assert "| mmsa − no-pretrain | a | roc_auc ↑ | 3 (1) |" in dropped
    assert "vary the initialization only" in comparisons_section(comparisons(paired_jobs()), config)
