"""The training molecules a finetuned model keeps: merging seeds, Tanimoto on bit rows, and the
neighbour table when a reference is smaller than the neighbours asked for."""

import numpy as np
import torch

from mmsa.models.training_reference import TrainingReference, merged, nearest_training, tanimoto


def test_seed_references_merge_each_molecule_once_in_order_of_first_appearance():
    a = TrainingReference(["CCO", "CCN"], np.array([[1.0], [0.0]]), np.eye(2, 3, dtype=np.float32))
    b = TrainingReference(["CCN", "CCC"], np.array([[0.0], [np.nan]]), np.eye(2, 3, k=1, dtype=np.float32))
    both = merged([a, b])
    assert both.keys == ["CCO", "CCN", "CCC"]
    np.testing.assert_array_equal(both.labels[:, 0], [1.0, 0.0, np.nan])
    np.testing.assert_array_equal(both.fused, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert merged([a, TrainingReference(["CCC"], np.array([[1.0]]))]).fused is None  # one seed lacks them


def test_tanimoto_of_bit_rows():
    rows = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.float32)
    # |a & b| / |a | b|: 1 of 3 bits shared; identical rows 1; two empty rows count as identical
    expected = [[1, 1 / 3, 0], [1 / 3, 1, 0], [0, 0, 1]]
    np.testing.assert_allclose(tanimoto(rows, rows), expected, atol=1e-7)


def test_fewer_training_molecules_than_neighbours_lists_them_all():
    reference = TrainingReference(["CCO", "c1ccccc1"], np.array([[1.0], [0.0]]))
    near, largest = nearest_training(reference, ["y"], ["CCO", "Cc1ccccc1"], None, 5)
    assert near["query"].tolist() == [0, 0, 1, 1] and near["rank"].tolist() == [1, 2, 1, 2]
    assert near["neighbour"].tolist() == ["CCO", "c1ccccc1", "c1ccccc1", "CCO"]
    assert near["y"].tolist() == [1.0, 0.0, 0.0, 1.0] and near["fused_cosine"].isna().all()
    assert largest["max_ecfp_tanimoto"].iloc[0] == 1.0 and 0 < largest["max_ecfp_tanimoto"].iloc[1] < 1
