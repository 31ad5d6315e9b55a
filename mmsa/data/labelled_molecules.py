"""A dataset's labelled molecules as finetuning reads them: featurized rows, keys and labels.

Only rows that made it through featurization are labelled molecules (the rest are in the
rejects table), and they are kept in source row order so every model, split and prediction
file lists molecules the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd
import pyarrow.parquet as pq

ID_COLUMNS = ("row", "input", "key")  # every other column of a shard is a task


def label_columns(frame: pd.DataFrame) -> list[str]:
    """The task columns of a shard table (or of :func:`load_labelled`'s frame)."""
    return [c for c in frame.columns if c not in ID_COLUMNS]


def load_labelled(
    shards: Sequence[str | os.PathLike], manifests: Sequence[str | os.PathLike]
) -> pd.DataFrame:
    """The featurized rows of a dataset (``row``, ``input``, ``key``, tasks), in source row order."""
    labels = pd.concat([pq.read_table(s).to_pandas() for s in shards], ignore_index=True)
    featurized = pd.concat([pq.read_table(m, columns=["row"]).to_pandas() for m in manifests])
    frame = labels[labels["row"].isin(set(featurized["row"]))]
    return frame.sort_values("row").reset_index(drop=True)
