"""Tests of the assembled MMSA model: outputs, switches, masking of failed views, training, and
the objective's registry of loss terms (mmsa.models.objective)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from helpers import molecule_batch
from mmsa.models import LOSS_TERMS, ComENetEncoder, GINEncoder, MMSAConfig, MMSAModel, SchNetEncoder
from mmsa.models.loss_term import PHASES
from mmsa.models.objective import TERMS

SMALL: dict[str, Any] = {
    "embed_dim": 16,
    "gnn_layers": 2,
    "gnn_dim": 16,
    "image_layers": [1, 1, 1, 1],
    "image_width": 4,
    "geo_hidden": 16,
    "geo_filters": 16,
    "geo_interactions": 2,
    "geo_gaussians": 16,
    "geo_cutoff": 5.0,
    "fusion_heads": 2,
    "fusion_dropout": 0.0,
    "hypergraph_k": 2,
    "num_anchors": 4,
    "memory_momentum": 0.9,
    "graph_mask_rate": 0.3,
    "graph_drop_bond_rate": 0.2,
    "descriptors": True,
}


pytestmark = pytest.mark.usefixtures("single_thread")


def small_model(feature_set: str = "hu", **overrides: Any) -> MMSAModel:
    torch.manual_seed(0)
    return MMSAModel(MMSAConfig.from_dict({**SMALL, "feature_set": feature_set, **overrides}))


def test_forward_outputs_and_config_round_trip() -> None:
    model = small_model("rich")
    batch = molecule_batch(
        ["aspirin", "caffeine", "ethanol", "benzene", "menthol"], "rich", no_conf=(2,), no_image=(3,)
    )
    out = model(batch)
    assert out["embedding"].shape == (5, 16)
    assert out["structure_embedding"].shape == (5, 16)
    assert out["graph_embedding"].shape == (5, 16)
    assert set(out["losses"]) == set(LOSS_TERMS)
    assert set(out["contrastive_pairs"]) == {"graph-image", "graph-geometry", "image-geometry"}
    expected = sum(model.config.weight(k) * v for k, v in out["losses"].items())
    torch.testing.assert_close(out["loss"], expected)
    assert isinstance(model.graph_encoder, GINEncoder)
    assert isinstance(model.geometry_encoder, SchNetEncoder)  # the default, for existing weights
    fused, graph = model.eval().embed(batch)
    assert fused.shape == (5, 16) and graph.shape == (5, 16) and not fused.requires_grad
    assert MMSAConfig.from_dict(model.config.to_dict()) == model.config
    with pytest.raises(ValueError, match=r"unknown MMSAConfig setting\(s\) \['embed_dimension'\]"):
        MMSAConfig.from_dict({"embed_dimension": 8})
    with pytest.raises(ValueError, match="at least one"):
        MMSAConfig(use_graph=False, use_image=False, use_geometry=False)
    with pytest.raises(ValueError, match="unknown geo_encoder 'dimenet'; use one of"):
        MMSAConfig.from_dict({"geo_encoder": "dimenet"})
    with pytest.raises(ValueError, match="the descriptor term reads the GIN's embedding"):
        MMSAConfig(use_graph=False, descriptors=True)


def test_comenet_geometry_encoder_trains_in_the_model() -> None:
    model = small_model(geo_encoder="comenet", geo_middle=8).train()
    encoder = model.geometry_encoder
    assert isinstance(encoder, ComENetEncoder) and encoder.out_dim == 16
    batch = molecule_batch(["aspirin", "caffeine", "ibuprofen", "nicotine", "glycine"], no_conf=(3,))
    out = model(batch)
    assert set(out["losses"]) == set(LOSS_TERMS) and torch.isfinite(out["loss"])
    assert out["projections"]["geometry"].shape == (5, 16)
    out["loss"].backward()
    grads = [p.grad for p in encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize(
    ("overrides", "absent"),
    [
        ({"contrastive": False}, {"contrastive"}),
        ({"fusion_reconstruction": False}, {"reconstruction"}),
        ({"hypergraph": False}, {"hypergraph"}),
        ({"memory": False}, {"memory"}),
        ({"graph_mask_rate": 0.0}, {"masking"}),
        ({"descriptors": False}, {"descriptors"}),
        ({"use_image": False, "use_geometry": False}, {"contrastive"}),  # one view: no pairs
        (
            {
                "contrastive": False,
                "fusion_reconstruction": False,
                "hypergraph": False,
                "memory": False,
                "graph_mask_rate": 0.0,
                "descriptors": False,
            },
            set(LOSS_TERMS),
        ),
    ],
)
def test_switches_remove_their_terms(overrides: dict[str, Any], absent: set[str]) -> None:
    model = small_model(**overrides)
    out = model(molecule_batch(["aspirin", "caffeine", "nicotine", "dopamine"]))
    assert set(out["losses"]) == set(LOSS_TERMS) - absent
    out["loss"].backward()  # a total exists even with every term off
    if not overrides.get("hypergraph", True):
        assert model.hypergraph is None
        assert torch.equal(out["structure_embedding"], out["embedding"])
    if not overrides.get("memory", True):
        assert model.memory is None
    if not overrides.get("descriptors", True):  # off: not one parameter or buffer of it
        assert model.descriptor_term is None
        assert not any("descriptor" in name for name in model.state_dict())


@pytest.mark.parametrize("modality", ["graph", "image", "geometry"])
def test_modality_switches(modality: str) -> None:
    without = {f"use_{modality}": False} | ({"descriptors": False} if modality == "graph" else {})
    model = small_model(**without)
    assert getattr(model, f"{modality}_encoder") is None
    assert modality not in model.projections
    out = model(molecule_batch(["aspirin", "caffeine", "nicotine"]))
    assert all(modality not in pair for pair in out["contrastive_pairs"])
    assert out["embedding"].shape == (3, 16)
    if modality == "graph":
        assert out["graph_embedding"] is None


def test_failed_conformers_do_not_change_anything() -> None:
    names = ["aspirin", "caffeine", "ibuprofen", "nicotine", "glycine", "pyridine"]
    batch = molecule_batch(names, no_conf=(1, 4))
    model = small_model().eval()  # eval: the memory bank must not move between the calls
    out = model(batch)
    moved = batch.clone()
    bad = (moved.batch == 1) | (moved.batch == 4)
    moved.pos = moved.pos.clone()
    moved.pos[bad] = torch.randn(int(bad.sum()), 3) * 3
    out2 = model(moved)
    for key in out["losses"]:
        torch.testing.assert_close(out2["losses"][key], out["losses"][key], rtol=0, atol=0)
    torch.testing.assert_close(out2["embedding"], out["embedding"], rtol=0, atol=0)
    # ... while a valid molecule's coordinates do matter.
    moved.pos[moved.batch == 0] = torch.randn(int((moved.batch == 0).sum()), 3) * 3
    assert not torch.equal(model(moved)["embedding"], out["embedding"])


def test_training_is_deterministic_and_loss_falls() -> None:
    batch = molecule_batch()  # 16 real molecules with ETKDG conformers
    assert batch.num_graphs == 16

    def train(steps: int) -> tuple[list[float], torch.Tensor]:
        model = small_model().train()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        history = []
        for _ in range(steps):
            opt.zero_grad()
            out = model(batch)
            out["loss"].backward()
            opt.step()
            history.append(float(out["loss"].detach()))
        assert model.memory is not None
        return history, model.memory.anchors.clone()

    history, anchors = train(30)
    assert all(torch.isfinite(torch.tensor(history)))
    first, last = history[0], sum(history[-5:]) / 5
    assert last < 0.8 * first, history
    again, anchors_again = train(30)
    assert again == history
    assert torch.equal(anchors_again, anchors)


def test_augmentation_masks_atoms_and_drops_whole_bonds() -> None:
    from mmsa.features.graph import ATOM_TYPE_MASK
    from mmsa.models.augment import augment_graph

    batch = molecule_batch(["aspirin", "caffeine", "menthol", "nicotine"], "rich")
    torch.manual_seed(0)
    view = augment_graph(batch.x, batch.edge_index, batch.edge_attr, mask_rate=0.5, drop_rate=0.5)
    masked = view.masked
    assert 0 < int(masked.sum()) < len(masked)
    assert (view.x[masked, 0] == ATOM_TYPE_MASK).all() and (view.x[masked, 1:] == 0).all()
    assert torch.equal(view.x[~masked], batch.x[~masked]) and batch.x[:, 0].max() < ATOM_TYPE_MASK
    kept = {tuple(e) for e in view.edge_index.t().tolist()}
    assert all((j, i) in kept for i, j in kept)  # a bond is dropped in both directions or neither
    assert 0 < len(kept) < batch.edge_index.size(1)


def test_masking_term_is_the_cross_entropy_of_masked_atom_types_and_only_in_training() -> None:
    model = small_model(fusion_dropout=0.0)
    batch = molecule_batch(["aspirin", "caffeine", "nicotine", "dopamine"])
    torch.manual_seed(3)
    out = model(batch)
    torch.manual_seed(3)  # the same draws reproduce the masked view the model saw
    from mmsa.models.augment import augment_graph

    view = augment_graph(batch.x, batch.edge_index, batch.edge_attr, 0.3, 0.2)
    nodes, _ = model.graph_encoder(view.x, view.edge_index, view.edge_attr, batch.batch, batch.num_graphs)
    logits = model.atom_head(nodes[view.masked])
    expected = torch.nn.functional.cross_entropy(logits, batch.x[view.masked, 0].long())
    torch.testing.assert_close(out["losses"]["masking"], expected)
    model.eval()
    assert "masking" not in model(batch)["losses"]  # evaluation sees the whole graph


def test_every_term_has_a_switch_and_a_weight_in_the_config_and_a_name_of_its_own():
    config_fields = {f.name for f in dataclasses.fields(MMSAConfig)}  # the schema lists the same keys
    assert len(set(LOSS_TERMS)) == len(TERMS)
    for term in TERMS:
        assert {term.switch, f"weight_{term.name}"} <= config_fields, term.name
        assert term.phase in PHASES, term.name
    # the order is part of every result (losses.csv's columns, the total's summation order)
    assert LOSS_TERMS == ("masking", "descriptors", "contrastive", "reconstruction", "hypergraph", "memory")


def test_losses_come_in_the_terms_order_and_each_switch_removes_its_module():
    model = small_model()
    out = model(molecule_batch(["aspirin", "caffeine", "nicotine", "dopamine"]))
    assert tuple(out["losses"]) == LOSS_TERMS
    total = torch.zeros((), dtype=torch.float32)
    for name, value in out["losses"].items():  # summed in that order, as float32
        total = total + model.config.weight(name) * value.float()
    assert torch.equal(out["loss"], total)
    for term in TERMS:
        if term.attribute is None:
            continue
        assert getattr(model, term.attribute) is not None
        off = small_model(**{term.switch: 0.0 if term.switch == "graph_mask_rate" else False})
        assert getattr(off, term.attribute) is None, term.name
        assert not any(name.startswith(f"{term.attribute}.") for name in off.state_dict()), term.name


def test_parameters_are_registered_in_the_order_of_the_pipeline_and_its_terms():
    """Encoders, local terms' modules, projections, fusion, fused terms' modules: the order the
    random initial values are drawn in, so that a saved model keeps its bytes."""
    children = [name for name, _ in small_model().named_children()]
    assert children == [
        "graph_encoder",
        "image_encoder",
        "geometry_encoder",
        "atom_head",
        "descriptor_term",
        "projections",
        "fusion",
        "hypergraph",
        "memory",
    ]
