"""Which CPU float kernels torch runs: pinned from the config, so results reproduce across CPUs.

torch picks its vectorized kernels (ATen), its BLAS code path (MKL) and its convolution code
(oneDNN) from the CPU's instruction set. Each choice rounds float sums differently: on one AMD
EPYC with AVX-512 the tiny pretraining gave a different ``model.pt`` for each of ATen's
``default``, ``avx2`` and ``avx512``, and MKL's and oneDNN's paths each changed it again (see
tests/train/test_determinism.py). The ``cpu_kernels`` setting fixes all three to one instruction set,
which every CPU that has it runs the same way:

* ``ATEN_CPU_CAPABILITY``: torch's own kernels;
* ``MKL_CBWR``: MKL's conditional numerical reproducibility (a fixed code branch, ``STRICT``
  so that results do not depend on the alignment of the arrays either);
* ``ONEDNN_MAX_CPU_ISA`` (and its old name ``DNNL_MAX_CPU_ISA``): oneDNN's instruction set.

The libraries read these when they initialize, so they must be in the environment before torch
is imported: :func:`pin_cpu_kernels` sets them in the Snakemake process (inherited by every job
and ``torchrun`` rank) and in the ``mmsa`` command before it imports torch. The pin overrides
values from the outer environment, since those are what differs between machines. ``native``
leaves everything to the machine (faster where it has wider vectors, not reproducible across
CPUs). This module does not import torch, so the Snakefile's process can use it.

A CPU without the pinned instruction set cannot run those kernels: ATen falls back to a narrower
set, and MKL or oneDNN may execute an instruction the CPU lacks and kill the process (``Illegal
instruction``, seen with the avx512 pin on an AMD EPYC without AVX-512). So :func:`pin_cpu_kernels`
first reads the CPU's instruction flags (Linux's ``/proc/cpuinfo``) and refuses a pin the CPU
cannot run with one line (:class:`CpuKernelsError`), before torch is imported; and
:func:`check_cpu_kernels`, called by every torch stage, stops a run whose torch runs other
kernels than the pinned ones (where the flags could not be read, or a variable was changed
after the pin) instead of writing results that another machine would not reproduce.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

from mmsa.runtime.errors import InputError

NATIVE = "native"
# What each setting pins. ``default`` is ATen's non-vectorized build and the oldest branches of
# MKL (COMPATIBLE: SSE2) and oneDNN (SSE4.1), for CPUs without AVX2.
PINS: dict[str, dict[str, str]] = {
    "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {
        "ATEN_CPU_CAPABILITY": "avx512",
        "MKL_CBWR": "AVX512,STRICT",
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
    },
}
CHOICES: tuple[str, ...] = (*PINS, NATIVE)
# The CPU flags (as /proc/cpuinfo names them) each pin's kernels execute: ATen's AVX2 kernels are
# built with AVX2 and FMA, its AVX-512 ones need the F, BW, VL and DQ subsets (torch's own check).
REQUIRED_FLAGS: dict[str, tuple[str, ...]] = {
    "default": (),
    "avx2": ("avx2", "fma"),
    "avx512": ("avx512f", "avx512bw", "avx512vl", "avx512dq"),
}
CPUINFO = Path("/proc/cpuinfo")
VARIABLES: tuple[str, ...] = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
SETTING_VARIABLE = "MMSA_CPU_KERNELS"  # the pinned setting, for the checks and the provenance


def kernel_env(setting: str) -> dict[str, str]:
    """The environment variables ``setting`` pins (for ``native`` only the setting's own)."""
    if setting == NATIVE:
        return {SETTING_VARIABLE: NATIVE}
    if setting not in PINS:
        raise ValueError(f"unknown cpu_kernels {setting!r}; choose one of {', '.join(CHOICES)}")
    pins = PINS[setting]
    return {**pins, "DNNL_MAX_CPU_ISA": pins["ONEDNN_MAX_CPU_ISA"], SETTING_VARIABLE: setting}


class CpuKernelsError(InputError):
    """The configured ``cpu_kernels`` needs instructions this CPU does not have."""


def cpu_flags(cpuinfo: Path | None = None) -> tuple[str, frozenset[str]] | None:
    """This CPU's model name and instruction flags, read from Linux's cpuinfo (:data:`CPUINFO`
    unless given); None where there is no such file or it lists no flags (another system or
    architecture)."""
    try:
        lines = (cpuinfo or CPUINFO).read_text(errors="replace").splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)  # the last CPU's, all alike
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if "flags" not in fields:
        return None
    return fields.get("model name", "unknown model"), frozenset(fields["flags"].split())


def check_cpu_flags(setting: str, cpuinfo: Path | None = None) -> None:
    """Raise :class:`CpuKernelsError` if the CPU lacks an instruction ``setting`` runs (one line,
    naming the CPU and what to choose instead); pass where the flags cannot be read."""
    found = cpu_flags(cpuinfo)
    if found is None:
        return
    model, flags = found
    missing = [flag for flag in REQUIRED_FLAGS.get(setting, ()) if flag not in flags]
    if missing:
        raise CpuKernelsError(
            f"cpu_kernels {setting!r} needs the {', '.join(missing)} instructions, which this CPU "
            f"({model}) does not have: set cpu_kernels to 'default' (runs on every x86-64 CPU) or "
            f"{NATIVE!r}; results then differ from runs under {setting!r}"
        )


def pin_cpu_kernels(setting: str) -> None:
    """Set (overriding) the variables that choose torch's CPU kernels, for this process and its
    children, after checking that the CPU can run them (:func:`check_cpu_flags`). In a process
    that imported torch already (``mmsa.cli.main`` called from Python), its kernels may be
    chosen: it warns and changes nothing, and the provenance then records no setting."""
    env = kernel_env(setting)
    check_cpu_flags(setting)
    if "torch" in sys.modules and any(os.environ.get(k) != v for k, v in env.items()):
        warnings.warn(f"torch is imported already: cpu_kernels {setting!r} not pinned", stacklevel=2)
        return
    os.environ.update(env)


def expected_capability() -> str | None:
    """What ``torch.backends.cpu.get_cpu_capability()`` must report under the pin (None: native)."""
    setting = os.environ.get(SETTING_VARIABLE)
    return PINS[setting]["ATEN_CPU_CAPABILITY"].upper() if setting in PINS else None


def check_cpu_kernels() -> None:
    """Raise if torch runs other kernels than the pinned ones: the CPU lacks the instruction set
    (ATen falls back to a narrower one) or a variable was changed after the pin."""
    import torch

    expected, actual = expected_capability(), torch.backends.cpu.get_cpu_capability()
    if expected is not None and actual != expected:
        raise RuntimeError(
            f"cpu_kernels {os.environ[SETTING_VARIABLE]!r} needs {expected} kernels, but torch runs "
            f"{actual} on this CPU: set cpu_kernels to one this CPU has (results then differ from "
            f"runs with {os.environ[SETTING_VARIABLE]!r}) or to {NATIVE!r}"
        )


def kernel_provenance() -> dict[str, Any]:
    """The setting (None when no pin ran: torch used from Python), the variables' values and the
    kernels torch runs."""
    import torch

    return {
        "setting": os.environ.get(SETTING_VARIABLE),
        "env": {k: os.environ.get(k) for k in VARIABLES},
        "capability": torch.backends.cpu.get_cpu_capability(),
    }
