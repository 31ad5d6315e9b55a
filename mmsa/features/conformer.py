"""3D conformers: RDKit ETKDGv3 embedding, then MMFF94 optimization with a UFF fallback.

A molecule whose embedding fails or times out is not dropped: it gets no coordinates, a
``False`` conformer mask and a reason, and the 3D encoder leaves it out of its terms.
Coordinates are those of the heavy atoms, in the graph's atom order (``AddHs`` appends the
hydrogens after the heavy atoms, so the first ``n`` atoms of the embedded molecule are
exactly the graph's atoms).

The result depends on the molecule and the options only, never on how busy the machine is:
embedding is bounded by a number of attempts (``max_iterations``), run in fixed blocks of
:data:`ATTEMPTS_PER_CALL` with a seed per block. RDKit's own ``timeout`` is wall-clock and
discards an attempt that ran too long, so with it a loaded machine would get a random-coordinates
conformer, or none, where an idle one got the ETKDG conformer. The guard against pathological
molecules, ``timeout_s``, is counted in CPU seconds of the embedding thread (checked between
blocks) and only ever ends in a failure with reason "timeout", never in a different conformer.
CPU rather than wall-clock seconds, so that the guard itself does not depend on the load.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

from mmsa.runtime.from_mapping import from_mapping

FORCE_FIELDS = ("mmff", "uff", "none")


@dataclass(frozen=True)
class ConformerOptions:
    """Conformer generation settings; part of the feature cache's fingerprint."""

    seed: int = 0
    timeout_s: int = 10  # guard: CPU seconds of embedding per molecule (0 = none); exceeded -> failure
    max_iterations: int = 0  # embedding attempts per mode; 0 = 10 per atom (hydrogens included)
    force_field: str = "mmff"
    optimize_steps: int = 500
    random_coords_fallback: bool = True

    def __post_init__(self) -> None:
        if self.force_field not in FORCE_FIELDS:
            raise ValueError(f"force_field must be one of {FORCE_FIELDS}, got {self.force_field!r}")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> ConformerOptions:
        return from_mapping(cls, cfg)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConformerResult:
    """Heavy-atom coordinates (or ``None``), and why they are missing or how they were made."""

    coords: np.ndarray | None  # float32 (n_atoms, 3)
    detail: str  # force field used, or the failure reason

    @property
    def ok(self) -> bool:
        return self.coords is not None


ATTEMPTS_PER_CALL = 10
"""Embedding attempts per RDKit call: how often the CPU-time guard is looked at. Part of
``FEATURIZER_VERSION``: it decides the seeds, and so the conformers of hard molecules."""
EMBEDDED, FAILED, TIMED_OUT = "embedded", "failed", "timeout"


def _embed(mol_h: Chem.Mol, options: ConformerOptions, random_coords: bool, started: float) -> str:
    """Embed ``mol_h`` in place within ``options.max_iterations`` attempts.

    Block ``b`` of attempts is seeded with ``seed + b``, so the outcome depends on the attempts
    made, never on time; ``started`` is the thread's CPU time when the molecule began.
    """
    attempts = options.max_iterations or 10 * mol_h.GetNumAtoms()
    for block, first in enumerate(range(0, attempts, ATTEMPTS_PER_CALL)):
        if options.timeout_s and time.thread_time() - started > options.timeout_s:
            return TIMED_OUT
        params = rdDistGeom.ETKDGv3()
        params.randomSeed = options.seed + block
        params.maxIterations = min(ATTEMPTS_PER_CALL, attempts - first)
        params.timeout = 0  # no wall-clock cut: it would make the outcome depend on the load
        params.numThreads = 1
        params.useRandomCoords = random_coords
        if rdDistGeom.EmbedMolecule(mol_h, params) >= 0:
            return EMBEDDED
    return FAILED


def _optimize(mol_h: Chem.Mol, options: ConformerOptions) -> str:
    """Optimize in place with MMFF94 if it has parameters, else UFF; return what was used."""
    if options.force_field == "none":
        return "etkdg"
    if options.force_field == "mmff" and rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol_h):
        rdForceFieldHelpers.MMFFOptimizeMolecule(mol_h, maxIters=options.optimize_steps)
        return "mmff"
    if rdForceFieldHelpers.UFFHasAllMoleculeParams(mol_h):
        rdForceFieldHelpers.UFFOptimizeMolecule(mol_h, maxIters=options.optimize_steps)
        return "uff"
    return "etkdg (no force field parameters)"


def generate_conformer(mol: Chem.Mol, options: ConformerOptions) -> ConformerResult:
    """Embed and optimize one conformer of ``mol``; never raises.

    RDKit raises on some inputs that it accepts as molecules (a ring of dummy atoms ``*1**1``
    fails an invariant inside ETKDG, an empty molecule has no atoms to embed); such an error
    costs this molecule its conformer, with the error as the reason, and not the whole shard.
    """
    try:
        return _generate(mol, options)
    except Exception as err:  # RDKit's C++ errors arrive as RuntimeError, ValueError, ...
        message = " ".join(str(err).split())[:240]
        return ConformerResult(None, f"RDKit error in conformer generation: {type(err).__name__}: {message}")


def _generate(mol: Chem.Mol, options: ConformerOptions) -> ConformerResult:
    mol_h = Chem.AddHs(mol)
    started = time.thread_time()
    outcome = _embed(mol_h, options, False, started)
    if outcome == FAILED and options.random_coords_fallback:
        outcome = _embed(mol_h, options, True, started)
    if outcome == TIMED_OUT:
        return ConformerResult(None, f"timeout: embedding used over {options.timeout_s} s of CPU time")
    if outcome == FAILED:
        return ConformerResult(None, "ETKDG embedding failed (no valid 3D geometry found)")
    try:
        detail = _optimize(mol_h, options)
    except Exception as err:  # force-field set-up errors are RDKit-internal and varied
        detail = f"etkdg (optimization failed: {err})"
    coords = mol_h.GetConformer().GetPositions()[: mol.GetNumAtoms()].astype(np.float32)
    if not np.isfinite(coords).all():
        return ConformerResult(None, "non-finite coordinates after optimization")
    return ConformerResult(coords, detail)
