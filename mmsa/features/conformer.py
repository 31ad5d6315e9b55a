"""3D conformers: RDKit ETKDGv3 embedding, then MMFF94 optimization with a UFF fallback.

A molecule whose embedding fails is not dropped: it gets no coordinates, a ``False`` conformer
mask and a reason, and the 3D encoder leaves it out of its terms. Coordinates are those of the
heavy atoms, in the graph's atom order (``AddHs`` appends the hydrogens after the heavy atoms,
so the first ``n`` atoms of the embedded molecule are exactly the graph's atoms).

The result is a function of the molecule and the options alone, never of the machine's speed or
load: the work is bounded by counts. Embedding makes at most ``max_iterations`` attempts per mode
(ETKDG, then random starting coordinates), in fixed blocks of :data:`ATTEMPTS_PER_CALL` with a
seed per block; the force field runs at most ``optimize_steps`` steps; a molecule of more than
``max_atoms`` heavy atoms gets no conformer (reason "too large"). RDKit's own ``timeout`` is
wall-clock and discards an attempt that ran too long, so it stays off.

``timeout_s`` is a last resort, not a bound: CPU seconds of one molecule's embedding after which
:class:`ConformerTimeout` stops the featurize job, naming the molecule. It never changes a
feature quietly (an earlier version turned it into a missing conformer, and with it which
molecules had one depended on the host: 9 on one machine, 13 on another), so it is not part of
the feature settings' fingerprint.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

from mmsa.features.interrupts import raise_if_interrupted
from mmsa.plan.config_slices import CONFORMER_GUARDS
from mmsa.runtime.errors import InputError
from mmsa.runtime.from_mapping import from_mapping

FORCE_FIELDS = ("mmff", "uff", "none")


@dataclass(frozen=True)
class ConformerOptions:
    """Conformer generation settings; all but the last-resort guard are part of the feature cache's
    fingerprint."""

    seed: int = 0
    max_iterations: int = 100  # embedding attempts per mode: what bounds the work
    max_atoms: int = 200  # heavy atoms; a larger molecule gets no conformer
    force_field: str = "mmff"
    optimize_steps: int = 500
    random_coords_fallback: bool = True
    timeout_s: int = 600  # last resort: CPU seconds of embedding, then ConformerTimeout (0 = none)

    def __post_init__(self) -> None:
        if self.force_field not in FORCE_FIELDS:
            raise ValueError(f"force_field must be one of {FORCE_FIELDS}, got {self.force_field!r}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be at least 1, got {self.max_iterations}")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> ConformerOptions:
        return from_mapping(cls, cfg)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def feature_dict(self) -> dict[str, Any]:
        """The settings that decide a conformer (for the feature cache's fingerprint): all but the
        last-resort ``timeout_s``, which can stop a job but never change a feature."""
        return {k: v for k, v in self.to_dict().items() if k not in CONFORMER_GUARDS}


@dataclass(frozen=True)
class ConformerResult:
    """Heavy-atom coordinates (or ``None``), and why they are missing or how they were made."""

    coords: np.ndarray | None  # float32 (n_atoms, 3)
    detail: str  # force field used, or the failure reason

    @property
    def ok(self) -> bool:
        return self.coords is not None


class ConformerTimeout(InputError):
    """One molecule's embedding used more CPU time than the last-resort ``timeout_s``: the bounds
    by count did not bound it, and a feature must not depend on the time, so featurization stops.
    The config's bounds are the user's to mend (the message says which), so it is one line."""


ATTEMPTS_PER_CALL = 10
"""Embedding attempts per RDKit call, each call seeded on its own: how often the last-resort
guard is looked at. Part of ``FEATURIZER_VERSION``: it decides the seeds, and so the conformers
of hard molecules."""


def _embed(mol_h: Chem.Mol, options: ConformerOptions, random_coords: bool, started: float) -> bool:
    """Embed ``mol_h`` in place within ``options.max_iterations`` attempts; whether it worked.

    Block ``b`` of attempts is seeded with ``seed + b``, so the outcome depends on the attempts
    made, never on time; ``started`` is the thread's CPU time when the molecule began.
    """
    attempts = options.max_iterations
    for block, first in enumerate(range(0, attempts, ATTEMPTS_PER_CALL)):
        used = time.thread_time() - started
        if options.timeout_s and used > options.timeout_s:
            smiles = Chem.MolToSmiles(Chem.RemoveHs(mol_h))
            raise ConformerTimeout(
                f"conformer of {smiles}: embedding used {used:.0f} s of CPU time after {first} attempts, "
                f"over featurize.conformer.timeout_s ({options.timeout_s}); lower max_iterations or "
                f"max_atoms so that counts bound it, or raise timeout_s"
            )
        params = rdDistGeom.ETKDGv3()
        params.randomSeed = options.seed + block
        params.maxIterations = min(ATTEMPTS_PER_CALL, attempts - first)
        params.timeout = 0  # no wall-clock cut: it would make the outcome depend on the load
        params.numThreads = 1
        params.useRandomCoords = random_coords
        if rdDistGeom.EmbedMolecule(mol_h, params) >= 0:
            return True
        raise_if_interrupted()  # -1 may be RDKit's swallowed Ctrl-C: not a failed attempt
    return False


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
    Only :class:`ConformerTimeout` passes through: it must stop the job.
    """
    try:
        return _generate(mol, options)
    except ConformerTimeout:
        raise
    except Exception as err:  # RDKit's C++ errors arrive as RuntimeError, ValueError, ...
        message = " ".join(str(err).split())[:240]
        return ConformerResult(None, f"RDKit error in conformer generation: {type(err).__name__}: {message}")


def _generate(mol: Chem.Mol, options: ConformerOptions) -> ConformerResult:
    if mol.GetNumAtoms() > options.max_atoms:
        return ConformerResult(
            None, f"too large: {mol.GetNumAtoms()} heavy atoms, over max_atoms ({options.max_atoms})"
        )
    mol_h = Chem.AddHs(mol)
    started = time.thread_time()
    embedded = _embed(mol_h, options, False, started)
    if not embedded and options.random_coords_fallback:
        embedded = _embed(mol_h, options, True, started)
    if not embedded:
        return ConformerResult(
            None, f"ETKDG embedding failed (no valid 3D geometry in {options.max_iterations} attempts)"
        )
    try:
        detail = _optimize(mol_h, options)
    except Exception as err:  # force-field set-up errors are RDKit-internal and varied
        detail = f"etkdg (optimization failed: {err})"
    coords = mol_h.GetConformer().GetPositions()[: mol.GetNumAtoms()].astype(np.float32)
    if not np.isfinite(coords).all():
        return ConformerResult(None, "non-finite coordinates after optimization")
    return ConformerResult(coords, detail)
