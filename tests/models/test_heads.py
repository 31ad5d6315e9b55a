"""Every head the plan declares has its network, built, saved and loaded through the registry."""

import numpy as np
import pytest
import torch

from helpers import TOY_SMILES
from mmsa.models.head_inputs import HeadInputs
from mmsa.models.heads import HEAD_TYPES
from mmsa.models.property import PropertyModel, build_gin, load_property_model, save_property_model
from mmsa.plan.compared_models import FEATURE_SETS, HEADS
from mmsa.plan.finetune_settings import FinetuneSettings
from mmsa.train.finetune_seeds import FEATURE_SETS as FEATURE_CODE

ARCH = {"feature_set": "hu", "gnn_layers": 2, "gnn_dim": 8, "gnn_jk": "last", "gnn_pool": "mean"}


def test_each_declared_head_and_feature_set_has_its_code_and_no_code_is_undeclared():
    assert set(HEAD_TYPES) == set(HEADS) - {"linear"}  # the linear layer alone has no module
    assert len({head.meta_key for head in HEAD_TYPES.values()}) == len(HEAD_TYPES)
    assert set(FEATURE_CODE) == set(FEATURE_SETS)


def _inputs(n: int) -> HeadInputs:
    g = torch.Generator().manual_seed(0)
    ring = [[i, (i + 1) % n] for i in range(n)]  # each molecule's hyperedge holds it and the next
    incidence = torch.tensor([[a for pair in ring for a in pair], [i for i, _ in ring for _ in range(2)]])
    return HeadInputs(
        keys=TOY_SMILES[:n],
        labels=np.arange(n, dtype=np.float64).reshape(n, 1) % 2,
        fused=torch.randn(n, 6, generator=g).numpy(),
        incidence=incidence,
        anchors=torch.randn(3, 6, generator=g),
        neighbours=2,
    )


@pytest.mark.parametrize("name", sorted(HEAD_TYPES))
def test_a_head_built_from_training_molecules_predicts_the_same_after_saving_and_loading(name, tmp_path):
    torch.manual_seed(0)
    inputs = _inputs(6)
    settings = FinetuneSettings(structure_dim=4)
    head = HEAD_TYPES[name].build(inputs, settings)
    model = PropertyModel(build_gin(ARCH, 0.0), 1, head)
    meta = {"arch": ARCH, "dropout": 0.0, "tasks": ["y"], "task_type": "classification"}
    save_property_model(model, {**meta, "target_mean": [0.0], "target_std": [1.0]}, tmp_path / "m.pt")
    loaded, saved_meta = load_property_model(tmp_path / "m.pt")
    assert type(loaded.structure) is HEAD_TYPES[name] and head.meta_key in saved_meta
    new = torch.randn(3, 6, generator=torch.Generator().manual_seed(1)).numpy()
    with torch.no_grad():
        before = head.eval().new_context(new, TOY_SMILES[6:9], "cpu")
        after = loaded.structure.new_context(new, TOY_SMILES[6:9], "cpu")
    assert before.shape == (3, head.out_dim)
    assert torch.equal(before, after)


def test_a_head_missing_what_it_is_built_from_says_so():
    bare = HeadInputs(keys=TOY_SMILES[:4], labels=np.zeros((4, 1)))
    with pytest.raises(ValueError, match="needs the embeddings, hypergraph and neighbour count"):
        HEAD_TYPES["structure"].build(bare, FinetuneSettings())
    with pytest.raises(ValueError, match="needs its neighbour count"):
        HEAD_TYPES["labels"].build(bare, FinetuneSettings())
