"""Cache reuse: a second clone sharing one ``cache_dir`` featurizes nothing again.

Two "clones" (two separate output folders, as two checkouts of the project would have) run the
data stages (``mmsa.stages.data_stages.run_data_stages``: fetch, standardize, shard, featurize, account)
for the same datasets with one shared, initially empty ``cache_dir`` (only the raw downloads
are reused from ``--downloads``). The first computes every molecule; the second finds them all
in the cache. The counts are the featurize stage's own (what its log line reports). Prints a
Markdown table:

    python benchmarks/cache_reuse.py [--datasets bbbp]

Goal: the second clone computes 0 molecules.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from _common import fresh_cache, machine, table

from mmsa.plan.config import validate_config
from mmsa.stages.data_stages import run_data_stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["bbbp"])
    parser.add_argument("--threads", type=int, default=2, help="local Dask worker processes (default 2)")
    parser.add_argument(
        "--downloads",
        default="resources/cache/downloads",
        help="an existing cache's downloads folder to reuse (features are never reused)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rows = []
    with tempfile.TemporaryDirectory() as tmp, fresh_cache(tmp, args.downloads) as cache_dir:
        config = validate_config({"cache_dir": cache_dir})
        for clone in ("clone 1", "clone 2"):
            for dataset in args.datasets:
                folder = Path(tmp) / clone.replace(" ", "-") / dataset
                folder.mkdir(parents=True)
                start = time.perf_counter()
                summary = run_data_stages(config, dataset, folder, threads=args.threads)
                seconds = time.perf_counter() - start
                shards = summary["featurize"]
                counts = {k: sum(c[k] for c in shards) for k in ("featurized", "computed", "reused")}
                rows.append(
                    [
                        clone,
                        dataset,
                        f"{summary['rows_in']:,}",
                        f"{counts['featurized']:,}",
                        f"{counts['computed']:,}",
                        f"{counts['reused']:,}",
                        f"{seconds:.0f}",
                    ]
                )
    print("\nTwo output folders, one shared cache_dir (empty at the start), data stages in each")
    print(f"Machine: {machine()}\n")
    header = ["run", "dataset", "rows in", "featurized", "computed", "reused from cache", "data stages s"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
