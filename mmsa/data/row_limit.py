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

    def provenance(self) -> dict[str, Any]:
        """The limit as the fetched table's metadata records it."""
        return {
            "max_rows": self.first,
            "sample_rows": self.n if self.how == "sample" else None,
            "seed": self.seed,
        }


NO_LIMIT_PROVENANCE: dict[str, Any] = {"max_rows": None, "sample_rows": None, "seed": None}
