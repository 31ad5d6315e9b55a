"""The account stage: every input row is featurized or rejected with a reason, never lost."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from mmsa.data.columns import SOURCE_DATASET
from mmsa.data.corpus import corpus_counts
from mmsa.data.key_shards import duplicate_counts, holdout_counts
from mmsa.data.standardized_molecules import reject_frame
from mmsa.runtime.io import write_csv, write_text

log = logging.getLogger(__name__)


class AccountingError(RuntimeError):
    """Rows went missing between the input table and the outputs: a bug, never ignored."""


def account(
    dataset: str,
    raw: str | os.PathLike,
    rejects: Sequence[str | os.PathLike],
    manifests: Sequence[str | os.PathLike],
    summary: str | os.PathLike,
    rejects_csv: str | os.PathLike,
) -> dict[str, Any]:
    """Check rows in = rows featurized + rows rejected; write the summary and all rejects.

    Every input row number must appear exactly once across the manifests and rejects tables.
    The summary also counts duplicate groups and the rows they cost (see
    :func:`mmsa.data.key_shards.duplicate_counts`), the rows removed as finetuning molecules, and for
    a mixture each source's rows asked for, taken and featurized.
    """
    rows_in = pq.read_metadata(raw).num_rows
    tables = [pq.read_table(p).to_pandas() for p in rejects]
    all_rejects = pd.concat([reject_frame([]), *tables], ignore_index=True).sort_values("row")
    featurized = pd.concat(
        [pq.read_table(p, columns=["row", "conf_ok", "image_ok"]).to_pandas() for p in manifests],
        ignore_index=True,
    )
    seen = pd.concat([featurized["row"], all_rejects["row"]])
    if len(seen) != rows_in or seen.nunique() != rows_in:
        lost = sorted(set(range(rows_in)) - set(seen))[:10]
        raise AccountingError(
            f"{dataset}: {rows_in} rows in, {len(featurized)} featurized + {len(all_rejects)} rejected "
            f"({seen.nunique()} distinct); first missing rows {lost}"
        )
    result = {
        "dataset": dataset,
        "rows_in": rows_in,
        "featurized": len(featurized),
        "rejected": len(all_rejects),
        "rejected_by_stage": {k: int(v) for k, v in all_rejects["stage"].value_counts().items()},
        **duplicate_counts(all_rejects),
        **holdout_counts(all_rejects),
        "conformer_missing": int((~featurized["conf_ok"]).sum()),
        "image_missing": int((~featurized["image_ok"]).sum()),
    }
    sources = corpus_counts(raw)
    if sources is not None:  # a mixture: what each source gave and how much of it is left
        origin = pq.read_table(raw, columns=[SOURCE_DATASET])[SOURCE_DATASET].to_pandas()
        left = origin.iloc[featurized["row"].to_numpy()].value_counts()
        result["sources"] = {name: {**c, "featurized": int(left.get(name, 0))} for name, c in sources.items()}
    write_csv(all_rejects, rejects_csv)
    write_text(json.dumps(result, indent=1) + "\n", summary)
    log.info(
        "%s: %d rows in = %d featurized + %d rejected %s",
        dataset,
        rows_in,
        len(featurized),
        len(all_rejects),
        result["rejected_by_stage"],
    )
    return result
