"""``mmsa predict`` on the test molecules of finetuned datasets: the share each seed's model flags
out of its applicability domain, and the test metric inside and outside it.

    python benchmarks/applicability_domain.py --results results [--datasets bbbp bace] [--model mmsa]

Reads a finished run's results folder (the default job's, or any other): for every seed of
``results/finetune/<dataset>/<model>/``, the seed's test molecules (its held-out predictions file)
are written to a CSV and handed to ``predict_file`` with that seed's model, as a user would run
``mmsa predict``; the labels come from the dataset's shards. The domain threshold was calibrated on
the seed's validation molecules when it was finetuned (:data:`DOMAIN_COVERAGE` of them inside);
nothing here looks at test labels to set it. Prints a Markdown table per seed and the mean over seeds.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine, table

from mmsa.eval.metrics import metric_value
from mmsa.models.property import load_property_model
from mmsa.models.training_reference import DOMAIN_COVERAGE
from mmsa.plan.config import load_config
from mmsa.plan.model_paths import seed_weight_files
from mmsa.stages.predict import predict_file

HEADER = [
    "dataset",
    "seed",
    "test molecules",
    "threshold (max ECFP4 Tanimoto)",
    "out of domain",
    "metric inside",
    "metric outside",
    "inside − outside",
]


def seed_rows(config: dict, results: Path, dataset: str, model: str, pretrained: Path | None) -> list[dict]:
    """One record per seed model of ``dataset``/``model``."""
    folder = results / "finetune" / dataset / model
    shards = sorted((results / "datasets" / dataset / "shards").glob("shard-*.parquet"))
    labels = pd.concat([pd.read_parquet(s) for s in shards]).drop_duplicates("key").set_index("key")
    records = []
    for weights in seed_weight_files(folder):
        _, meta = load_property_model(weights)
        held_out = pd.read_parquet(weights.with_suffix(".predictions.parquet"))
        test = held_out[held_out["part"] == "test"]
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "test.csv"
            pd.DataFrame({"smiles": test["key"]}).to_csv(csv, index=False)
            predict_file(config, weights, csv, "smiles", Path(tmp) / "p.csv", pretrained, neighbours=1)
            predicted = pd.read_csv(Path(tmp) / "p.csv")
        y = labels.loc[predicted["key"], meta["tasks"]].to_numpy(dtype=float)
        p = predicted[meta["tasks"]].to_numpy(dtype=float)
        inside = predicted["in_domain"].to_numpy(dtype=bool)
        records.append(
            {
                "dataset": dataset,
                "seed": int(weights.stem.removeprefix("seed-")),
                "molecules": len(predicted),
                "threshold": meta["domain"]["max_ecfp_tanimoto"],
                "outside_share": float((~inside).mean()),
                "inside": metric_value(y[inside], p[inside], meta["task_type"]),
                "outside": metric_value(y[~inside], p[~inside], meta["task_type"]),
                "metric": "ROC-AUC" if meta["task_type"] == "classification" else "RMSE",
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="a finished run's results folder")
    parser.add_argument("--config", default="config/default.yaml", help="the run's config")
    parser.add_argument("--datasets", nargs="+", default=["bbbp", "bace"])
    parser.add_argument("--model", default="mmsa", help="a finetuned model of the run (default mmsa)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = Path(args.results)
    config = load_config(args.config)
    pretrained = results / "pretrain" / "model.pt" if args.model.startswith("mmsa") else None
    records = [r for d in args.datasets for r in seed_rows(config, results, d, args.model, pretrained)]
    rows = [
        [
            r["dataset"],
            r["seed"],
            r["molecules"],
            f"{r['threshold']:.3f}",
            f"{r['outside_share']:.0%}",
            f"{r['inside']:.3f}",
            f"{r['outside']:.3f}",
            f"{r['inside'] - r['outside']:+.3f}",
        ]
        for r in records
    ]
    for dataset in args.datasets:
        mine = [r for r in records if r["dataset"] == dataset]
        rows.append(
            [
                f"**{dataset} mean**",
                f"{len(mine)} seeds",
                f"{np.mean([r['molecules'] for r in mine]):.0f}",
                f"{np.mean([r['threshold'] for r in mine]):.3f}",
                f"{np.mean([r['outside_share'] for r in mine]):.0%}",
                f"{np.nanmean([r['inside'] for r in mine]):.3f}",
                f"{np.nanmean([r['outside'] for r in mine]):.3f}",
                f"{np.nanmean([r['inside'] - r['outside'] for r in mine]):+.3f}",
            ]
        )
    print(
        f"`{args.model}` models of {results}; domain calibrated on validation ({DOMAIN_COVERAGE:.0%} inside)"
    )
    print(f"Machine: {machine()}\n")
    print(table(HEADER, rows))


if __name__ == "__main__":
    main()
