"""Numerics set-up shared by every torch stage, so that a config gives the same bytes.

On the CPU, a float reduction is split between threads, so results depend on the thread count:
it is part of the config (``torch_threads``), not of the machine or of Snakemake's ``--cores``.
Across CPUs, results depend on the instruction set of the float kernels: the ``cpu_kernels``
setting pins it (:mod:`mmsa.runtime.kernels`). Deterministic algorithms are switched on wherever torch
has them (``warn_only``: an operation without one, as some CUDA scatter kernels, warns instead
of failing the run); see the README for what is and is not bitwise reproducible on a GPU.
"""

from __future__ import annotations

import os

import torch

from mmsa.runtime.kernels import check_cpu_kernels


def configure_torch(threads: int) -> None:
    """``threads`` intra-op threads, subnormals flushed and deterministic algorithms; stops if
    torch does not run the pinned CPU kernels (:mod:`mmsa.runtime.kernels`)."""
    if threads < 1:
        raise ValueError(f"torch needs at least one thread, got {threads}")
    check_cpu_kernels()
    # cuBLAS reads this when CUDA initializes; without it deterministic GEMMs are not guaranteed.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    # Subnormal floats (SchNet's far Gaussian distance features) slow CPU matrix products ~4x;
    # flushing them to zero changes results by less than float32 resolution of the rest.
    torch.set_flush_denormal(True)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
