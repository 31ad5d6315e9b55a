"""Finetuning models and the report on real featurized molecules (tiny settings)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_pretrain import SMILES, TINY_MODEL

from chain import run_chain, toy_config
from mmsa.embed import build_hypergraph
from mmsa.features.cache import FeatureCache
from mmsa.features.loader import FeatureStore, read_manifests
from mmsa.plan import feature_settings
from mmsa.report import markdown, summarize
from mmsa.train.finetune import (
    FinetuneSettings,
    StructureContext,
    is_better,
    load_finetuned,
    run_finetune,
    save_finetuned,
)
from mmsa.train.pretrain import PretrainSettings, build_model


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labelled")
    rows = [f"{s},{int('N' in s)},{len(s) / 10}" for s in SMILES]
    (tmp / "toy.csv").write_text("smiles,has_n,size\n" + "\n".join(rows) + "\n")
    config = toy_config(tmp, ["toy"], {"has_n": "has_n"}, shard_size=100)
    run_chain(config, "toy", tmp / "out")
    manifest = read_manifests([tmp / "out" / "toy" / "man-0.parquet"])
    store = FeatureStore(FeatureCache(config["cache_dir"], feature_settings(config)), manifest)
    frame = pd.read_parquet(tmp / "out" / "toy" / "shards" / "shard-00000.parquet").sort_values("row")
    return frame.reset_index(drop=True), store, config


SETTINGS = FinetuneSettings(epochs=3, batch_size=8, split="random", rf_trees=10, structure_dim=8)


def pretrained_model():
    torch.manual_seed(0)
    return build_model(PretrainSettings.from_dict({"model": TINY_MODEL}), "hu").eval()


@pytest.mark.parametrize("model_name", ["no-pretrain", "mmsa-graph", "ecfp-rf"])
def test_models_train_and_report_their_metric(labelled, model_name):
    frame, store, _ = labelled
    pretrained = pretrained_model() if model_name == "mmsa-graph" else None
    arch = {**pretrained_model().config.to_dict()}
    result, model = run_finetune(
        model_name, frame, "classification", store, SETTINGS, 0, pretrained, arch=arch
    )
    assert result["metric"] == "roc_auc" and result["sizes"] == [26, 3, 3]
    assert math.isnan(result["test"]) or 0.0 <= result["test"] <= 1.0
    assert (model is None) == (model_name == "ecfp-rf")
    if model is not None:
        assert len(result["curve"]) == 3 and result["best_epoch"] in (1, 2, 3)


def test_pretrained_weights_are_the_starting_point(labelled):
    frame, store, _ = labelled
    pretrained = pretrained_model()
    one = FinetuneSettings(epochs=1, batch_size=8, split="random", lr=1e-12)
    _, model = run_finetune("mmsa-graph", frame, "classification", store, one, 0, pretrained)
    for name, value in pretrained.graph_encoder.state_dict().items():
        if value.is_floating_point() and "running" not in name:
            assert torch.allclose(model.gin.state_dict()[name], value, atol=1e-6), name


def test_mmsa_model_round_trips_and_places_new_molecules(labelled, tmp_path):
    frame, store, config = labelled
    pretrained = pretrained_model()
    from torch_geometric.data import Batch

    fused = torch.cat(
        [
            pretrained.embed(Batch.from_data_list(store.get(frame["key"][i : i + 8].tolist())))[0]
            for i in range(0, len(frame), 8)
        ]
    ).numpy()
    incidence, stats = build_hypergraph(fused, 3)
    assert stats["hyperedges"] == len(frame) and stats["incidences"] == 4 * len(frame)
    result, model = run_finetune(
        "mmsa", frame, "classification", store, SETTINGS, 0, pretrained, incidence, fused
    )
    result["dataset"] = "toy"
    save_finetuned(model, result, pretrained.config.to_dict(), SETTINGS, ["has_n"], config, tmp_path / "m.pt")
    loaded, meta = load_finetuned(tmp_path / "m.pt")
    assert meta["tasks"] == ["has_n"] and meta["uses_anchors"]
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)
    index = torch.arange(len(frame))
    with torch.no_grad():
        before = loaded.structure(index)
        context = loaded.structure.for_new(torch.as_tensor(fused[:2]), 3)
        assert torch.equal(loaded.structure(index), before)  # dataset context is untouched
    assert context.shape == (2, loaded.structure.out_dim) and torch.isfinite(context).all()


def test_structure_context_ignores_labels_and_changes_with_neighbours():
    fused = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    edges_a = torch.tensor([[0, 1, 1, 2], [0, 0, 1, 1]])
    edges_b = torch.tensor([[0, 2, 1, 2], [0, 0, 1, 1]])
    torch.manual_seed(0)
    a = StructureContext(fused, edges_a, None, 3, 0.1)
    torch.manual_seed(0)
    b = StructureContext(fused, edges_b, None, 3, 0.1)
    index = torch.tensor([0, 1])
    assert not torch.allclose(a(index), b(index))


def test_validation_selection_rules():
    assert is_better(0.8, 0.7, "classification") and not is_better(0.6, 0.7, "classification")
    assert is_better(0.5, 0.7, "regression") and not is_better(float("nan"), 0.7, "regression")
    assert is_better(float("nan"), None, "regression") and is_better(0.9, float("nan"), "classification")


def test_report_table_has_mean_std_and_classification_average():
    jobs = pd.DataFrame(
        [
            {
                "dataset": d,
                "model": m,
                "seed": s,
                "metric": "roc_auc",
                "task_type": "classification",
                "valid": 0.0,
                "test": t,
                "best_epoch": 1,
            }
            for d, m, s, t in [
                ("a", "mmsa", 0, 0.8),
                ("a", "mmsa", 1, 0.6),
                ("b", "mmsa", 0, 0.7),
                ("a", "ecfp-rf", 0, 0.5),
                ("b", "ecfp-rf", 0, 0.9),
            ]
        ]
        + [
            {
                "dataset": "r",
                "model": "mmsa",
                "seed": 0,
                "metric": "rmse",
                "task_type": "regression",
                "valid": 0.0,
                "test": 1.5,
                "best_epoch": 2,
            }
        ]
    )
    table = summarize(jobs)
    row = table[(table.dataset == "a") & (table.model == "mmsa")].iloc[0]
    assert row["mean"] == pytest.approx(0.7) and row["std"] == pytest.approx(0.1) and row["seeds"] == 2
    text = markdown(table)
    assert "| a | roc_auc ↑ | 0.700 ± 0.100 | 0.500 ± 0.000 |" in text
    assert "| **average (classification)** | roc_auc ↑ | 0.700 | 0.700 |" in text
    assert "| r | rmse ↓ | 1.500 ± 0.000 | — |" in text
    undefined = summarize(jobs.assign(test=float("nan")))
    assert "| a | roc_auc ↑ | n/a | n/a |" in markdown(undefined)
    assert np.isclose(table[table.model == "ecfp-rf"]["mean"].mean(), 0.7)
