"""What the held-out predictions of a dataset say beyond one metric: how the error grows as a
molecule lies further from the training molecules, where the applicability domain's threshold
falls, how the seed models' ensemble compares with one seed model, and how well calibrated the
probabilities are before and after temperature scaling.

Every number here comes from the finetuning jobs' held-out predictions (validation and test part
of each seed's split) and the split table; nothing is retrained. Per seed, each held-out
molecule's largest ECFP4 Tanimoto similarity to that seed's training molecules is computed the
way ``mmsa predict`` computes it, and the domain threshold is the one the seed's model file
stores (:func:`~mmsa.models.training_reference.coverage_threshold` of the validation part):
validation alone chooses it, test only measures it.

The ensemble under a split per seed (``scaffold_balanced``): the seed models were trained on
different molecules, so a molecule in seed i's test part may be a training molecule of seed j.
Each test molecule's ensemble prediction therefore averages only the seed models that held it
out as test (``members``); under one shared split (``scaffold``) that is every seed model, the
ensemble ``mmsa predict --model <folder>`` computes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmsa.data.labelled_molecules import label_columns
from mmsa.eval.calibration import brier, expected_calibration_error, fit_temperature, scaled
from mmsa.eval.comparisons import paired_statistics
from mmsa.eval.metrics import metric_of, metric_value
from mmsa.eval.splitters import PARTS, split_positions
from mmsa.models.training_reference import DOMAIN_COVERAGE, coverage_threshold, max_training_tanimoto

LABEL_SUFFIX = "_label"  # held-out table: ``<task>`` is the prediction, ``<task>_label`` the label
CURVE_BINS = 5  # similarity bins of the error curve: quantiles of the validation similarities


def seed_similarity(frame: pd.DataFrame, splits: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """Per seed and held-out molecule: ``seed``, ``row``, ``part``, ``max_ecfp_tanimoto`` (to
    the seed's training molecules), ``threshold`` and ``in_domain``."""
    keys = frame["key"].tolist()
    frames = []
    for seed in seeds:
        train, *held = split_positions(splits, frame["row"].to_numpy(), seed)
        training = [keys[i] for i in train]
        parts = []
        for name, index in zip(PARTS[1:], held, strict=True):
            parts.append(
                pd.DataFrame(
                    {
                        "seed": seed,
                        "row": frame["row"].to_numpy()[index],
                        "part": name,
                        "max_ecfp_tanimoto": max_training_tanimoto(training, [keys[i] for i in index]),
                    }
                )
            )
        threshold = coverage_threshold(parts[0]["max_ecfp_tanimoto"].to_numpy(), DOMAIN_COVERAGE)
        mine = pd.concat(parts, ignore_index=True)
        mine["threshold"] = threshold
        mine["in_domain"] = mine["max_ecfp_tanimoto"] >= threshold
        frames.append(mine)
    return pd.concat(frames, ignore_index=True)


def held_out_table(
    frame: pd.DataFrame, similarity: pd.DataFrame, predictions: dict[tuple[str, int], pd.DataFrame]
) -> pd.DataFrame:
    """One row per (model, seed, held-out molecule): ``model``, ``seed``, ``part``, ``row``,
    ``key``, the similarity columns of :func:`seed_similarity`, ``<task>`` (prediction) and
    ``<task>_label``. ``predictions`` maps (model, seed) to that job's predictions file."""
    tasks = label_columns(frame)
    labels = frame.set_index("row")[tasks].add_suffix(LABEL_SUFFIX)
    frames = []
    for (model, seed), held in predictions.items():
        mine = held[["row", "key", "part", *tasks]].merge(
            similarity[similarity["seed"] == seed].drop(columns="seed"), on=["row", "part"], how="left"
        )
        if mine["max_ecfp_tanimoto"].isna().any():
            raise ValueError(
                f"the predictions of {model} seed {seed} hold molecules its split does not hold out"
            )
        mine = mine.join(labels, on="row")
        mine.insert(0, "seed", seed)
        mine.insert(0, "model", model)
        frames.append(mine)
    columns = ["model", "seed", "part", "row", "key", "max_ecfp_tanimoto", "threshold", "in_domain"]
    table = pd.concat(frames, ignore_index=True)
    return table[columns + tasks + [t + LABEL_SUFFIX for t in tasks]]


def task_names(table: pd.DataFrame) -> list[str]:
    """The tasks of a held-out table (from its label columns)."""
    return [c.removesuffix(LABEL_SUFFIX) for c in table.columns if c.endswith(LABEL_SUFFIX)]


def _arrays(part: pd.DataFrame, tasks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    y = part[[t + LABEL_SUFFIX for t in tasks]].to_numpy(dtype=np.float64)
    return y, part[tasks].to_numpy(dtype=np.float64)


def molecule_error(table: pd.DataFrame, task_type: str) -> np.ndarray:
    """Per row: the squared error of the probability (classification; its mean is the Brier
    score) or the absolute error (regression, in the dataset's units), averaged over labelled
    tasks (NaN where none is labelled)."""
    y, p = _arrays(table, task_names(table))
    error = (p - y) ** 2 if task_type == "classification" else np.abs(p - y)
    with np.errstate(invalid="ignore"):
        counts = (~np.isnan(error)).sum(1)
        return np.where(counts > 0, np.nansum(error, axis=1) / np.maximum(counts, 1), np.nan)


def ensemble_predictions(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, test molecule): the mean of the seed models that held it out as test, and
    ``members``, their number."""
    tasks = task_names(table)
    test = table[table["part"] == "test"]
    grouped = test.groupby(["model", "row"], sort=False)
    mean = grouped[tasks].mean()
    mean["members"] = grouped.size()
    return mean.reset_index()


def temperatures(table: pd.DataFrame) -> dict[tuple[str, int], float]:
    """Per (model, seed): the temperature fitted on that seed's validation predictions."""
    tasks = task_names(table)
    valid = table[table["part"] == "valid"]
    return {
        (model, int(seed)): fit_temperature(*_arrays(part, tasks))
        for (model, seed), part in valid.groupby(["model", "seed"], sort=False)
    }


def with_scaled(table: pd.DataFrame) -> pd.DataFrame:
    """The table with each seed model's probabilities divided in logit by its validation temperature."""
    tasks = task_names(table)
    out = table.copy()
    for (model, seed), t in temperatures(table).items():
        rows = (out["model"] == model) & (out["seed"] == seed)
        out.loc[rows, tasks] = scaled(out.loc[rows, tasks].to_numpy(dtype=np.float64), t)
    return out


def seed_scores(table: pd.DataFrame, task_type: str) -> pd.DataFrame:
    """One row per (model, seed) on the test part: ``metric`` (one seed model), ``ensemble``
    (the same molecules, :func:`ensemble_predictions`), ``members`` (their mean number),
    ``out_of_domain`` (share of test molecules), ``inside`` and ``outside`` (the metric on each
    side of the threshold); for classification ``temperature`` and Brier and ECE before and after
    temperature scaling (``brier``, ``brier_scaled``, ``ece``, ``ece_scaled``)."""
    tasks = task_names(table)
    ensemble = ensemble_predictions(table).set_index(["model", "row"])
    fitted = temperatures(table) if task_type == "classification" else {}
    rows = []
    for (model, seed), part in table[table["part"] == "test"].groupby(["model", "seed"], sort=False):
        y, p = _arrays(part, tasks)
        members = ensemble.loc[[(model, r) for r in part["row"]]]
        inside = part["in_domain"].to_numpy(dtype=bool)
        row = {
            "model": model,
            "seed": int(seed),
            "metric": metric_value(y, p, task_type),
            "ensemble": metric_value(y, members[tasks].to_numpy(dtype=np.float64), task_type),
            "members": float(members["members"].mean()),
            "out_of_domain": float((~inside).mean()),
            "inside": metric_value(y[inside], p[inside], task_type),
            "outside": metric_value(y[~inside], p[~inside], task_type),
        }
        if task_type == "classification":
            t = fitted[(model, int(seed))]
            q = scaled(p, t)
            row |= {
                "temperature": t,
                "brier": brier(y, p),
                "brier_scaled": brier(y, q),
                "ece": expected_calibration_error(y, p),
                "ece_scaled": expected_calibration_error(y, q),
            }
        rows.append(row)
    return pd.DataFrame(rows)


SUMMARY_MEANS = ("metric", "ensemble", "members", "out_of_domain", "inside", "outside")
CALIBRATION_MEANS = ("temperature", "brier", "brier_scaled", "ece", "ece_scaled")


def summary(scores: pd.DataFrame, dataset: str, task_type: str) -> pd.DataFrame:
    """Per model: the seed means of :func:`seed_scores` and two paired comparisons over seeds
    (ensemble - one model; inside - outside the domain), each with its 95% interval and paired
    t-test p (:func:`~mmsa.eval.comparisons.paired_statistics`); seeds where either side is
    undefined are dropped."""
    metric = metric_of(task_type).name
    columns = [*SUMMARY_MEANS, *(CALIBRATION_MEANS if task_type == "classification" else ())]
    rows = []
    for model, part in scores.groupby("model", sort=False):
        row = {"dataset": dataset, "model": model, "metric_name": metric, "seeds": len(part)}
        row |= {c: float(part[c].mean()) for c in columns}
        for name, a, b in (("ensemble_gain", "ensemble", "metric"), ("domain_gap", "inside", "outside")):
            d = (part[a] - part[b]).dropna().to_numpy()
            stats = paired_statistics(d)
            row |= {
                f"{name}": stats["mean_difference"],
                f"{name}_low": stats["ci_low"],
                f"{name}_high": stats["ci_high"],
                f"{name}_p": stats["t_test_p"],
                f"{name}_pairs": len(d),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def error_curve(table: pd.DataFrame, task_type: str, bins: int = CURVE_BINS) -> pd.DataFrame:
    """Mean molecule error (:func:`molecule_error`) per similarity bin, model and part: bins are
    quantiles of the pooled validation similarities (validation alone draws them; test molecules
    outside their range fall in the end bins). Columns ``model``, ``part``, ``bin``, ``low``,
    ``high``, ``molecules``, ``similarity`` (bin mean) and ``error``."""
    valid_rows = table[table["part"] == "valid"].drop_duplicates(["seed", "row"])
    valid = valid_rows["max_ecfp_tanimoto"].to_numpy()
    edges = np.unique(np.quantile(valid, np.linspace(0, 1, bins + 1))) if len(valid) else np.array([0.0, 1.0])
    inner = edges[1:-1]
    data = table[["model", "part", "max_ecfp_tanimoto"]].copy()
    data["error"] = molecule_error(table, task_type)
    data["bin"] = np.digitize(data["max_ecfp_tanimoto"].to_numpy(), inner)
    grouped = data.groupby(["model", "part", "bin"], sort=False)
    curve = grouped.agg(
        molecules=("error", "count"), similarity=("max_ecfp_tanimoto", "mean"), error=("error", "mean")
    ).reset_index()
    curve["low"] = edges[curve["bin"]]
    curve["high"] = edges[np.minimum(curve["bin"] + 1, len(edges) - 1)]
    order = {m: i for i, m in enumerate(dict.fromkeys(table["model"]))}
    curve = curve.sort_values(
        ["model", "part", "bin"], key=lambda c: c.map(order) if c.name == "model" else c, kind="stable"
    ).reset_index(drop=True)
    return curve[["model", "part", "bin", "low", "high", "molecules", "similarity", "error"]]
