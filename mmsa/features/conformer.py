"""3D conformers: RDKit ETKDGv3 embedding, then MMFF94 optimization with a UFF fallback.

A molecule whose embedding fails or times out is not dropped: it gets no coordinates, a
``False`` conformer mask and a reason, and the 3D encoder leaves it out of its terms.
Coordinates are those of the heavy atoms, in the graph's atom order (``AddHs`` appends the
hydrogens after the heavy atoms, so the first ``n`` atoms of the embedded molecule are
exactly the graph's atoms).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

FORCE_FIELDS = ("mmff", "uff", "none")


@dataclass(frozen=True)
class ConformerOptions:
    """Conformer generation settings; part of the feature cache's fingerprint."""

    seed: int = 0
    timeout_s: int = 10  # per embedding attempt; RDKit counts whole seconds
    max_iterations: int = 0  # 0 = RDKit's default
    force_field: str = "mmff"
    optimize_steps: int = 500
    random_coords_fallback: bool = True

    def __post_init__(self) -> None:
        if self.force_field not in FORCE_FIELDS:
            raise ValueError(f"force_field must be one of {FORCE_FIELDS}, got {self.force_field!r}")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any] | None) -> ConformerOptions:
        return cls(**(cfg or {}))

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


def _embed(mol_h: Chem.Mol, options: ConformerOptions, random_coords: bool) -> int:
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = options.seed
    params.timeout = options.timeout_s
    params.maxIterations = options.max_iterations
    params.numThreads = 1
    params.useRandomCoords = random_coords
    return rdDistGeom.EmbedMolecule(mol_h, params)


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
    start = time.perf_counter()
    status = _embed(mol_h, options, random_coords=False)
    if status < 0 and options.random_coords_fallback:
        status = _embed(mol_h, options, random_coords=True)
    elapsed = time.perf_counter() - start
    if status < 0:
        if options.timeout_s and elapsed >= options.timeout_s:
            return ConformerResult(None, f"ETKDG embedding timed out after {elapsed:.1f} s")
        return ConformerResult(None, "ETKDG embedding failed (no valid 3D geometry found)")
    try:
        detail = _optimize(mol_h, options)
    except Exception as err:  # force-field set-up errors are RDKit-internal and varied
        detail = f"etkdg (optimization failed: {err})"
    coords = mol_h.GetConformer().GetPositions()[: mol.GetNumAtoms()].astype(np.float32)
    if not np.isfinite(coords).all():
        return ConformerResult(None, "non-finite coordinates after optimization")
    return ConformerResult(coords, detail)
