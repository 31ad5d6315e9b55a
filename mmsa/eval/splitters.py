"""Train/valid/test splits of a dataset's molecules, returned as sorted row-index arrays.

:func:`scaffold_split` reproduces the deterministic scaffold split of Hu et al. 2019
("Strategies for Pre-training Graph Neural Networks", ``chem/splitters.py`` of
snap-stanford/pretrain-gnns), which is the split that published MoleculeNet finetuning numbers
(MMSA's included) are reported on; matching it line for line is what makes our numbers
comparable. Molecules sharing a Bemis-Murcko scaffold always land in the same part, so the test
set holds chemotypes the model has not seen. That split is one split: its seeds vary only the
initialization. :func:`scaffold_balanced_split` is chemprop's ``scaffold_balanced`` split, which
draws a scaffold split per seed, so seeds also sample which chemotypes are held out and a paired
comparison over seeds covers that variation. :func:`random_split` is the seeded i.i.d. split used
as the easier reference setting.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmsa.data.labelled_molecules import label_columns
from mmsa.plan.split_fractions import check_fractions

SPLIT_KINDS = ("scaffold", "scaffold_balanced", "random")
PARTS = ("train", "valid", "test")


def _scaffold(smiles: str, index: int) -> str:
    """The chirality-aware Murcko scaffold SMILES ('' for acyclic molecules)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold  # here: importing this module loads no RDKit

    from mmsa.data.standardized_molecules import RejectedMolecule, parse_molecule

    try:
        mol = parse_molecule(smiles)
    except RejectedMolecule as err:
        raise ValueError(f"molecule {index} ({smiles!r}) cannot be parsed: {err}") from err
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=True)


def _scaffold_groups(smiles: Sequence[str]) -> list[list[int]]:
    """Row indices grouped by scaffold, groups in order of their first molecule."""
    groups: dict[str, list[int]] = {}
    for i, smi in enumerate(smiles):
        groups.setdefault(_scaffold(smi, i), []).append(i)
    return list(groups.values())


def _fill(
    groups: Sequence[list[int]], train_cutoff: float, valid_cutoff: float, *, cumulative: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place whole groups in order: train while it stays within its cutoff, else valid, else
    test. Hu et al. compare train + valid with a cumulative cutoff, chemprop valid alone."""
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for group in groups:
        if len(train) + len(group) <= train_cutoff:
            train.extend(group)
        elif (len(train) if cumulative else 0) + len(valid) + len(group) <= valid_cutoff:
            valid.extend(group)
        else:
            test.extend(group)
    return tuple(np.array(sorted(part), dtype=np.int64) for part in (train, valid, test))


def scaffold_split(smiles: Sequence[str], frac: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic Bemis-Murcko scaffold split (train, valid, test) exactly as Hu et al. 2019.

    Scaffold groups are visited largest first; equal sizes are ordered as Hu's
    ``sorted(key=(len(group), group[0]), reverse=True)`` does, i.e. the group whose first
    molecule comes *later* goes first. A group goes to train unless that would take train past
    ``frac[0] * n``; then to valid unless train + valid would pass ``(frac[0] + frac[1]) * n``;
    otherwise to test. Smaller groups met later can still fill train or valid up to its cutoff.
    """
    frac_train, frac_valid, _ = check_fractions(frac)
    ordered = sorted(_scaffold_groups(smiles), key=lambda g: (len(g), g[0]), reverse=True)
    n = len(smiles)
    return _fill(ordered, frac_train * n, (frac_train + frac_valid) * n, cumulative=True)


def scaffold_balanced_split(
    smiles: Sequence[str], frac: Sequence[float], seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded scaffold split (train, valid, test) as chemprop's ``scaffold_balanced``.

    Scaffold groups larger than half the validation or half the test size could not fit those
    parts without overfilling them, so they come first, in shuffled order (they fill train);
    the other groups follow in shuffled order. Each group then goes to train if train stays
    within ``frac[0] * n``, else to valid if valid stays within ``frac[1] * n``, else to test.
    The shuffles use Python's ``random.Random(seed)`` on groups in order of first occurrence, as
    chemprop (v1, ``chemprop/data/scaffold.py``) does, so each seed draws its own split and the
    same seed always draws the same one; scaffolds are chirality-aware, as in
    :func:`scaffold_split`.
    """
    frac_train, frac_valid, frac_test = check_fractions(frac)
    n = len(smiles)
    big, small = [], []
    for group in _scaffold_groups(smiles):
        (big if len(group) > frac_valid * n / 2 or len(group) > frac_test * n / 2 else small).append(group)
    rng = random.Random(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    return _fill(big + small, frac_train * n, frac_valid * n, cumulative=False)


def random_split(n: int, frac: Sequence[float], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n)``; the same seed always gives the same parts.

    Part boundaries are ``round(cumulative fraction * n)``, so sizes are as close to ``frac`` as
    whole molecules allow and always add up to ``n``.
    """
    fracs = check_fractions(frac)
    perm = np.random.default_rng(seed).permutation(n)
    cuts = [round(c * n) for c in np.cumsum(fracs)[:2]]
    return tuple(np.sort(part) for part in np.split(perm, cuts))


def make_split(
    smiles: Sequence[str],
    kind: str,
    frac: Sequence[float],
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The split named by a config's ``kind``; ``seed`` does not matter for ``"scaffold"``."""
    if kind == "scaffold":
        return scaffold_split(smiles, frac)
    if kind == "scaffold_balanced":
        return scaffold_balanced_split(smiles, frac, seed)
    if kind == "random":
        return random_split(len(smiles), frac, seed)
    raise ValueError(f"unknown split kind {kind!r}; expected one of {SPLIT_KINDS}")


def split_table(
    rows: Sequence[int],
    keys: Sequence[str],
    kind: str,
    frac: Sequence[float],
    seeds: Sequence[int],
) -> pd.DataFrame:
    """Every seed's split of a dataset's molecules: one row per (seed, molecule) with its part.

    Written once per dataset by the split stage and read by every model, so all models are
    trained and scored on the same molecules (the deterministic scaffold split is the same for
    every seed).
    """
    frames = []
    for seed in seeds:
        part = np.empty(len(keys), dtype=object)
        for name, index in zip(PARTS, make_split(keys, kind, frac, seed), strict=True):
            part[index] = name
        frames.append(pd.DataFrame({"seed": seed, "row": rows, "key": keys, "part": part}))
    table = pd.concat(frames, ignore_index=True)
    return table.astype({"seed": "int64", "row": "int64", "key": "string", "part": "string"})


def split_positions(table: pd.DataFrame, rows: Sequence[int], seed: int) -> tuple[np.ndarray, ...]:
    """Positions in ``rows`` of the train, valid and test molecules of ``seed``'s split.

    Raises ValueError when the split table does not cover exactly these rows (a split written
    for other data must never be applied silently).
    """
    mine = table[table["seed"] == seed]
    if mine.empty:
        raise ValueError(f"the split table has no split for seed {seed}")
    part_of = dict(zip(mine["row"].to_numpy(), mine["part"].to_numpy(), strict=True))
    rows = np.asarray(rows)
    if len(part_of) != len(rows) or not all(r in part_of for r in rows):
        raise ValueError(
            f"the split of seed {seed} lists other molecules than the dataset ({len(rows)} rows)"
        )
    parts = np.array([part_of[r] for r in rows])
    return tuple(np.flatnonzero(parts == name) for name in PARTS)


def split_summary(table: pd.DataFrame, frame: pd.DataFrame, task_type: str) -> dict[str, dict]:
    """Per seed and part: molecules, present labels and, for classification, positive labels and
    the tasks that can be scored (both classes present), so a thin test part is visible."""
    tasks = label_columns(frame)
    labels = frame.set_index("row")[tasks]
    summary: dict[str, dict] = {}
    for seed, mine in table.groupby("seed", sort=True):
        parts = {}
        for name in PARTS:
            y = labels.loc[mine.loc[mine["part"] == name, "row"]].to_numpy(dtype=np.float64)
            entry = {"molecules": len(y), "labels": int((~np.isnan(y)).sum())}
            if task_type == "classification":
                entry["positives"] = int(np.nansum(y))
                both = [(np.nanmin(c), np.nanmax(c)) == (0.0, 1.0) for c in y.T if (~np.isnan(c)).any()]
                entry["scorable_tasks"] = int(sum(both))
            parts[name] = entry
        summary[str(seed)] = parts
    return summary
