"""Scaffold and random splits: deterministic, complete, disjoint, and Hu et al.'s group order."""

import numpy as np
import pytest

from helpers import DRUG_LIKE, HU_FRACTIONS, scaffold_of
from mmsa.eval.split import make_split, random_split, scaffold_split


def _same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _assert_partition(parts: tuple[np.ndarray, ...], n: int) -> None:
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(n))
    assert all(np.array_equal(part, np.sort(part)) for part in parts)


def test_scaffold_split_is_deterministic_complete_and_scaffold_disjoint() -> None:
    parts = scaffold_split(DRUG_LIKE, HU_FRACTIONS)
    again = scaffold_split(list(DRUG_LIKE), HU_FRACTIONS)
    assert _same(parts, again)
    _assert_partition(parts, len(DRUG_LIKE))

    scaffolds = [{scaffold_of(DRUG_LIKE[i]) for i in part} for part in parts]
    assert not scaffolds[0] & scaffolds[1]
    assert not scaffolds[0] & scaffolds[2]
    assert not scaffolds[1] & scaffolds[2]
    fractions = [len(part) / len(DRUG_LIKE) for part in parts]
    assert fractions == pytest.approx([0.8, 0.1, 0.1], abs=0.03)


def test_scaffold_split_places_big_groups_first_with_hu_cutoffs() -> None:
    # Benzene x4, pyridine x3, cyclohexane x2, thiophene x1, interleaved.
    smiles = [
        "Cc1ccncc1",  # 0 pyridine
        "Cc1ccccc1",  # 1 benzene
        "CC1CCCCC1",  # 2 cyclohexane
        "Clc1ccccc1",  # 3 benzene
        "Cc1cccs1",  # 4 thiophene
        "Oc1ccncc1",  # 5 pyridine
        "Oc1ccccc1",  # 6 benzene
        "OC1CCCCC1",  # 7 cyclohexane
        "COc1ccccc1",  # 8 benzene
        "Clc1ccncc1",  # 9 pyridine
    ]
    # Cutoffs 5 and 8: benzene(4) -> train; pyridine(3) would make train 7 -> valid (7 <= 8);
    # cyclohexane(2) fits neither -> test; thiophene(1) still fits train exactly (5 <= 5).
    train, valid, test = scaffold_split(smiles, frac=(0.5, 0.3, 0.2))
    assert train.tolist() == [1, 3, 4, 6, 8]
    assert valid.tolist() == [0, 5, 9]
    assert test.tolist() == [2, 7]


def test_scaffold_split_breaks_size_ties_like_hu() -> None:
    # Two groups of two: Hu sorts (size, first index) in reverse, so the group first seen later
    # (pyridine, first at index 1) is placed first and takes the whole train quota.
    smiles = ["Cc1ccccc1", "Cc1ccncc1", "Oc1ccccc1", "Oc1ccncc1"]
    train, valid, test = scaffold_split(smiles, frac=(0.5, 0.5, 0.0))
    assert train.tolist() == [1, 3]
    assert valid.tolist() == [0, 2]
    assert test.size == 0


def test_scaffold_split_names_the_unparsable_molecule() -> None:
    with pytest.raises(ValueError, match=r"molecule 1 \('C1CC'\)"):
        scaffold_split(["CCO", "C1CC", "c1ccccc1"], HU_FRACTIONS)


def test_random_split_is_seeded() -> None:
    first = random_split(200, (0.8, 0.1, 0.1), seed=3)
    again = random_split(200, (0.8, 0.1, 0.1), seed=3)
    other = random_split(200, (0.8, 0.1, 0.1), seed=4)
    assert _same(first, again)
    assert not np.array_equal(first[0], other[0])
    _assert_partition(first, 200)
    assert [len(part) for part in first] == [160, 20, 20]


def test_make_split_dispatches_and_rejects_unknown_kinds() -> None:
    scaffold = make_split(DRUG_LIKE, "scaffold", HU_FRACTIONS, seed=7)
    assert _same(scaffold, scaffold_split(DRUG_LIKE, HU_FRACTIONS))
    random = make_split(DRUG_LIKE, "random", HU_FRACTIONS, seed=7)
    assert _same(random, random_split(len(DRUG_LIKE), HU_FRACTIONS, seed=7))
    with pytest.raises(ValueError, match="unknown split kind 'butina'"):
        make_split(DRUG_LIKE, "butina", HU_FRACTIONS)
    with pytest.raises(ValueError, match="frac"):
        make_split(DRUG_LIKE, "random", frac=(0.8, 0.1))
