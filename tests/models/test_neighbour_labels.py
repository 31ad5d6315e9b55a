"""The mmsa-labels context: its statistics, and that no training molecule sees its own label."""

import numpy as np
import pytest
import torch

from helpers import TOY_SMILES
from mmsa.models.neighbour_labels import NeighbourLabels


def labels_of(n: int, seed: int) -> np.ndarray:
    """Two tasks of 0/1 labels, a quarter of them missing."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (n, 2)).astype(float)
    y[rng.random((n, 2)) < 0.25] = np.nan
    return y


def test_statistics_are_the_similarity_weighted_labels_of_the_k_nearest_training_molecules():
    # cosine to the query [1, 0]: 1, 0, 0.707, -1; k = 3 takes the first three
    fused = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    labels = np.array([[1.0, 0.0], [0.0, np.nan], [np.nan, 1.0], [1.0, 1.0]])
    context = NeighbourLabels.from_training("fused", list("abcd"), labels, 3, fused)
    c = 2**-0.5
    out = context.for_new(np.array([[2.0, 0.0]]))
    expected = [1.0, c / (1 + c), 1 / 3, (1 + c) / 3, (1 + c) / 3]  # means, supports, similarity
    np.testing.assert_allclose(out.numpy()[0], expected, rtol=1e-6)
    assert context.out_dim == 5


def perturbed_contexts(space, keys, fused, labels, k, target):
    """Contexts before and after flipping every label of the training molecules with key
    ``target`` (the molecule and its duplicates)."""
    before = NeighbourLabels.from_training(space, keys, labels, k, fused)
    flipped = labels.copy()
    mine = np.array([key == target for key in keys])
    flipped[mine] = np.where(np.isnan(labels[mine]), 1.0, 1.0 - labels[mine])
    after = NeighbourLabels.from_training(space, keys, flipped, k, fused)
    return before, after, mine


def check_own_label_never_reaches_own_context(before, after, mine, similarity, k):
    changed = (before.train_context != after.train_context).any(1).numpy()
    assert not changed[mine].any()  # the molecule's and its duplicates' contexts are unchanged
    # ...while the others change exactly when one of them is among their k nearest training
    # molecules (own key left out) with a positive weight; a tie at the k-th place may go either way
    own = np.array([[a == b for b in before.train_keys] for a in before.train_keys])
    sim = np.where(own, -np.inf, similarity)
    ranked = -np.sort(-sim, axis=1)
    to_them = np.where(mine, sim, -np.inf).max(1)
    must = (to_them > 0) & (to_them > ranked[:, k])
    may = (to_them > 0) & (to_them >= ranked[:, k - 1])
    assert must.any() and (changed[must]).all() and not changed[~may].any()


def test_a_training_molecule_never_sees_its_own_or_its_duplicates_labels_in_the_fused_space():
    rng = np.random.default_rng(0)
    fused = rng.normal(size=(12, 4))
    keys = [f"m{i}" for i in range(12)]
    keys[11], fused[11] = "m3", fused[3]  # a duplicate of m3 at distance 0
    fused[10] = fused[3] + 1e-3  # a different molecule next to m3, so m3 is its neighbour
    labels = labels_of(12, 0)
    before, after, mine = perturbed_contexts("fused", keys, fused, labels, 3, "m3")
    unit = fused / np.linalg.norm(fused, axis=1, keepdims=True)
    check_own_label_never_reaches_own_context(before, after, mine, unit @ unit.T, 3)
    assert (before.train_context[10] != after.train_context[10]).any()
    # a new molecule takes its nearest training molecules, whatever they are: m3's label reaches
    # a copy of m3 predicted as new
    assert not torch.equal(before.for_new(fused[3:4]), after.for_new(fused[3:4]))


def test_a_training_molecule_never_sees_its_own_or_its_duplicates_labels_in_ecfp_space():
    from mmsa.eval.baselines import ecfp4

    keys = [*TOY_SMILES[:15], TOY_SMILES[4]]  # nicotine twice
    labels = labels_of(len(keys), 1)
    before, after, mine = perturbed_contexts("ecfp", keys, None, labels, 3, TOY_SMILES[4])
    bits = ecfp4(keys).astype(float)
    shared = bits @ bits.T
    tanimoto = shared / (bits.sum(1)[:, None] + bits.sum(1) - shared)
    check_own_label_never_reaches_own_context(before, after, mine, tanimoto, 3)
    assert not torch.equal(before.for_new(keys=[TOY_SMILES[4]]), after.for_new(keys=[TOY_SMILES[4]]))


def test_the_neighbour_space_and_k_are_checked():
    with pytest.raises(ValueError, match="unknown neighbour space 'tanimoto'"):
        NeighbourLabels.from_training("tanimoto", ["CCO"], np.zeros((1, 1)), 3)
    with pytest.raises(ValueError, match="k >= 1"):
        NeighbourLabels.from_training("fused", ["CCO"], np.zeros((1, 1)), 0, np.ones((1, 2)))
