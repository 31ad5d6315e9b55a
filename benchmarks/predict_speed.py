"""``mmsa predict``'s molecules per second on new SMILES, featurization included, with an empty
feature cache and then again with the cache the first run filled.

    python benchmarks/predict_speed.py --model results/finetune/bbbp/mmsa/ \
        --pretrained results/pretrain/model.pt [--molecules 10000] [--threads 2]

The molecules are the first ``--molecules`` of the ZINC/MOSES corpus (the pipeline's fetch of
it, read from ``--downloads``), written as a SMILES CSV. Both runs call ``predict_file`` as the
command does, in one process, with the default config's features and a new ``cache_dir`` that
shares only the downloads; the second run must compute no molecule (the table says how many each
computed and reused). The neighbour search and the applicability flag are part of the timing.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import fresh_cache, machine, table

from mmsa.plan.config import deep_merge, load_config, validate_config
from mmsa.stages.fetch import fetch
from mmsa.stages.predict import predict_file

HEADER = ["run", "molecules", "predicted", "computed", "reused", "seconds", "molecules/s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a finetuned seed-<n>.pt or a dataset's model folder")
    parser.add_argument("--pretrained", help="the pretrained model.pt (mmsa models need it)")
    parser.add_argument("--config", default="config/default.yaml")
    parser.add_argument("--molecules", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2, help="featurization worker processes")
    parser.add_argument("--neighbours", type=int, default=5)
    parser.add_argument("--downloads", default="resources/cache/downloads", help="a cache's downloads folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, fresh_cache(tmp, args.downloads) as cache_dir:
        config = {**load_config(args.config), "cache_dir": cache_dir}
        smiles = Path(tmp) / "zinc.csv"
        first = validate_config(deep_merge(config, {"data": {"max_rows": {"zinc": args.molecules}}}))
        fetch(first, "zinc", Path(tmp) / "raw.parquet")
        pd.read_parquet(Path(tmp) / "raw.parquet", columns=["smiles"]).to_csv(smiles, index=False)
        for run in ("empty cache", "warm cache"):
            started = time.perf_counter()
            counts = predict_file(
                config,
                args.model,
                smiles,
                "smiles",
                Path(tmp) / f"{run.split()[0]}.csv",
                args.pretrained,
                threads=args.threads,
                neighbours=args.neighbours,
            )
            seconds = time.perf_counter() - started
            rows.append(
                [
                    run,
                    f"{counts['rows']:,}",
                    f"{counts['predicted']:,}",
                    f"{counts['computed']:,}",
                    f"{counts['reused']:,}",
                    f"{seconds:.1f}",
                    f"{counts['predicted'] / seconds:,.0f}",
                ]
            )
    print(f"mmsa predict --model {args.model} ({counts['models']} models), --threads {args.threads}")
    print(f"Machine: {machine()}\n")
    print(table(HEADER, rows))


if __name__ == "__main__":
    main()
