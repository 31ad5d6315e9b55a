"""Plots written the way every other output is: whole under their final name, or not at all.

The report's bar chart and learning curves and pretraining's loss curve all go through here, so
the backend, resolution and atomic publication are one decision.
"""

from __future__ import annotations

import os
from typing import Any

from mmsa.runtime.io import atomic_path

DPI = 110


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (jobs have no display). Imported when a
    plot is made: matplotlib is slow to import and only the plotting steps need it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Lay out ``fig``, write it as a PNG under a temporary name renamed onto ``path`` (a job
    killed while saving leaves no half-written plot), and close it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    pyplot().close(fig)
