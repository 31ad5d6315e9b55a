"""Train/valid/test splits of a dataset's molecules, returned as sorted row-index arrays.

:func:`scaffold_split` reproduces the deterministic scaffold split of Hu et al. 2019
("Strategies for Pre-training Graph Neural Networks", ``chem/splitters.py`` of
snap-stanford/pretrain-gnns), which is the split that published MoleculeNet finetuning numbers
(MMSA's included) are reported on; matching it line for line is what makes our numbers
comparable. Molecules sharing a Bemis-Murcko scaffold always land in the same part, so the test
set holds chemotypes the model has not seen. :func:`random_split` is the seeded i.i.d. split used
as the easier reference setting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rdkit.Chem.Scaffolds import MurckoScaffold

from mmsa.data.standardize import RejectedMolecule, parse_molecule

Fractions = tuple[float, float, float]
SPLIT_KINDS = ("scaffold", "random")


def _check_frac(frac: Sequence[float]) -> Fractions:
    """Three non-negative fractions (train, valid, test) summing to 1, as Hu et al. require."""
    if len(frac) != 3 or any(f < 0 for f in frac) or not math.isclose(sum(frac), 1.0):
        raise ValueError(f"frac must be three non-negative fractions summing to 1, got {frac!r}")
    return (float(frac[0]), float(frac[1]), float(frac[2]))


def _scaffold(smiles: str, index: int) -> str:
    """The chirality-aware Murcko scaffold SMILES ('' for acyclic molecules)."""
    try:
        mol = parse_molecule(smiles)
    except RejectedMolecule as err:
        raise ValueError(f"molecule {index} ({smiles!r}) cannot be parsed: {err}") from err
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=True)


def scaffold_split(
    smiles: Sequence[str], frac: Sequence[float] = (0.8, 0.1, 0.1)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic Bemis-Murcko scaffold split (train, valid, test) exactly as Hu et al. 2019.

    Scaffold groups are visited largest first; equal sizes are ordered as Hu's
    ``sorted(key=(len(group), group[0]), reverse=True)`` does, i.e. the group whose first
    molecule comes *later* goes first. A group goes to train unless that would take train past
    ``frac[0] * n``; then to valid unless train + valid would pass ``(frac[0] + frac[1]) * n``;
    otherwise to test. Smaller groups met later can still fill train or valid up to its cutoff.
    """
    frac_train, frac_valid, _ = _check_frac(frac)
    groups: dict[str, list[int]] = {}
    for i, smi in enumerate(smiles):
        groups.setdefault(_scaffold(smi, i), []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (len(g), g[0]), reverse=True)

    n = len(smiles)
    train_cutoff = frac_train * n
    valid_cutoff = (frac_train + frac_valid) * n
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for group in ordered:
        if len(train) + len(group) > train_cutoff:
            if len(train) + len(valid) + len(group) > valid_cutoff:
                test.extend(group)
            else:
                valid.extend(group)
        else:
            train.extend(group)
    return tuple(np.array(sorted(part), dtype=np.int64) for part in (train, valid, test))


def random_split(
    n: int, frac: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n)``; the same seed always gives the same parts.

    Part boundaries are ``round(cumulative fraction * n)``, so sizes are as close to ``frac`` as
    whole molecules allow and always add up to ``n``.
    """
    fracs = _check_frac(frac)
    perm = np.random.default_rng(seed).permutation(n)
    cuts = [round(c * n) for c in np.cumsum(fracs)[:2]]
    return tuple(np.sort(part) for part in np.split(perm, cuts))


def make_split(
    smiles: Sequence[str],
    kind: str,
    frac: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The split named by a config's ``kind``; ``seed`` only matters for ``"random"``."""
    if kind == "scaffold":
        return scaffold_split(smiles, frac)
    if kind == "random":
        return random_split(len(smiles), frac, seed)
    raise ValueError(f"unknown split kind {kind!r}; expected one of {SPLIT_KINDS}")
