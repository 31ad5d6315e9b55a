"""Scaffold, balanced scaffold and random splits: complete, disjoint, seeded where they should
be, and Hu et al.'s group order."""

import numpy as np
import pytest

from helpers import DRUG_LIKE, HU_FRACTIONS, scaffold_of
from mmsa.eval.splitters import make_split, random_split, scaffold_balanced_split, scaffold_split, split_table


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
    balanced = make_split(DRUG_LIKE, "scaffold_balanced", HU_FRACTIONS, seed=7)
    assert _same(balanced, scaffold_balanced_split(DRUG_LIKE, HU_FRACTIONS, seed=7))
    with pytest.raises(ValueError, match="unknown split kind 'butina'"):
        make_split(DRUG_LIKE, "butina", HU_FRACTIONS)
    with pytest.raises(ValueError, match="frac"):
        make_split(DRUG_LIKE, "random", frac=(0.8, 0.1))


# DRUG_LIKE (groups of 1 to 4) and twelve alkylbenzenes: one benzene group of 12, more than half
# the validation and test sizes (12.3 / 2), which the balanced split must place in train.
ALKYLBENZENES = ["C" * k + "c1ccccc1" for k in range(1, 13)]
WITH_BIG_GROUP = [*DRUG_LIKE, *ALKYLBENZENES]


def test_scaffold_balanced_split_is_scaffold_disjoint_near_its_fractions_and_big_groups_train() -> None:
    n = len(WITH_BIG_GROUP)
    big = set(range(len(DRUG_LIKE), n))
    for seed in range(5):
        parts = scaffold_balanced_split(WITH_BIG_GROUP, HU_FRACTIONS, seed)
        _assert_partition(parts, n)
        scaffolds = [{scaffold_of(WITH_BIG_GROUP[i]) for i in part} for part in parts]
        assert not scaffolds[0] & scaffolds[1] and not scaffolds[0] & scaffolds[2]
        assert not scaffolds[1] & scaffolds[2]
        assert [len(p) / n for p in parts] == pytest.approx([0.8, 0.1, 0.1], abs=0.03)
        assert big <= set(parts[0].tolist())


def test_scaffold_balanced_split_draws_one_split_per_seed() -> None:
    splits = [scaffold_balanced_split(WITH_BIG_GROUP, HU_FRACTIONS, seed) for seed in range(5)]
    assert _same(splits[3], scaffold_balanced_split(list(WITH_BIG_GROUP), HU_FRACTIONS, seed=3))
    assert len({tuple(test.tolist()) for _, _, test in splits}) == 5  # five seeds, five test sets


def test_split_table_stores_each_seeds_own_balanced_split_and_one_scaffold_split() -> None:
    rows = list(range(100, 100 + len(WITH_BIG_GROUP)))
    keys = list(WITH_BIG_GROUP)
    balanced = split_table(rows, keys, "scaffold_balanced", HU_FRACTIONS, [0, 1])
    fixed = split_table(rows, keys, "scaffold", HU_FRACTIONS, [0, 1])
    parts = {seed: part["part"].tolist() for seed, part in balanced.groupby("seed")}
    assert parts[0] != parts[1]
    expected = scaffold_balanced_split(keys, HU_FRACTIONS, seed=1)[2]
    assert balanced.query("seed == 1 and part == 'test'")["row"].tolist() == [rows[i] for i in expected]
    same = {seed: part["part"].tolist() for seed, part in fixed.groupby("seed")}
    assert same[0] == same[1]
