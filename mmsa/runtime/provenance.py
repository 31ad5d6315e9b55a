"""What produced a result: code version, library versions, threads, CPU kernels and device.

Results are only comparable when they come from the same code and the same numerics; CPU
float results depend on the number of threads (reductions are split by thread), so the thread
count is recorded beside every model and score, and so are the CPU kernels (their instruction
set changes float results too: :mod:`mmsa.runtime.kernels`).
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

from mmsa import __version__
from mmsa.runtime.kernels import kernel_provenance

REPO = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """The checkout's commit, with ``-dirty`` when tracked files differ; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def provenance(device: str | None = None) -> dict[str, Any]:
    """Versions, commit, torch threads, CPU kernels and device of this process."""
    import torch

    return {
        "mmsa": __version__,
        "commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_kernels": kernel_provenance(),
        "device": device or "cpu",
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
