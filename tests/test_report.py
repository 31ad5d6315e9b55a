"""The results report: mean ± std over seeds, the classification average, last-epoch table."""

import numpy as np
import pandas as pd
import pytest

from mmsa.report import full_report, markdown, summarize


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
    assert "| **average (classification)** | roc_auc ↑ | 0.700 | 0.700 |" in text
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
    import mmsa.report

    saved = []
    monkeypatch.setattr(mmsa.report, "save_figure", lambda fig, path: saved.append(fig))
    mmsa.report.plot_bars(summarize(jobs()), "unused.png")
    labels = [ax.get_ylabel() for ax in saved[0].axes if ax.get_ylabel()]
    assert labels == ["test roc_auc (higher is better)", "test rmse (lower is better)"]


def test_a_saved_figure_is_a_whole_png_and_nothing_else(tmp_path):
    from mmsa.figures import pyplot, save_figure

    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "plots" / "f.png")
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["f.png"]  # no temporary left
    assert (tmp_path / "plots" / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not pyplot().fignum_exists(fig.number)  # closed, so a long report does not pile them up
