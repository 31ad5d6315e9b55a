"""Which rows of a table to keep: the first n, or a seeded uniform sample of n, as one value.

Light (no numpy), because the planning layer builds it from the config; the rows themselves are
chosen by :mod:`mmsa.data.sampling`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class RowLimit:
    """The first ``n`` rows (``how="first"``), or a uniform random sample of ``n`` rows chosen by
    ``seed`` and kept in source order (``how="sample"``; all rows if there are fewer)."""

    how: Literal["first", "sample"]
    n: int
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.how not in ("first", "sample"):
            raise ValueError(f"a row limit keeps the 'first' rows or a 'sample', not {self.how!r}")
        if self.n < 1:
            raise ValueError(f"a row limit keeps at least 1 row, not {self.n}")
        if (self.how == "sample") != (self.seed is not None):
            raise ValueError("a sample of rows needs a seed, and only a sample takes one")

    @property
    def first(self) -> int | None:
        """How many rows are read from the top (None: to the end)."""
        return self.n if self.how == "first" else None


def limit_provenance(limit: RowLimit | None) -> dict[str, Any]:
    """A row limit (None: every row) as the fetched table's metadata records it."""
    sampled = limit is not None and limit.how == "sample"
    return {
        "max_rows": limit.first if limit else None,
        "sample_rows": limit.n if sampled else None,
        "seed": limit.seed if limit else None,
    }
