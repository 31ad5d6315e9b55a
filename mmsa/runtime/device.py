"""Where torch runs: the configured device, ``auto`` picking a CUDA GPU when there is one.

Every torch stage takes its device from here, so GPU code runs unchanged on a CPU-only machine.
"""

from __future__ import annotations

import torch


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` = the first CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
