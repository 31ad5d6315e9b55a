"""The compared-model registry: a model's declaration decides what its jobs read and take."""

import pytest

from mmsa.plan.compared_models import FEATURE_SETS, HEADS, MODELS, READS, ComparedModel


def test_what_each_model_reads_follows_from_its_declaration():
    """Written out by hand from each model's description (compared_models' docstring)."""
    assert {name: m.reads for name, m in MODELS.items()} == {
        "mmsa": ("weights", "anchors", "embeddings", "hypergraph", "graphs"),
        "mmsa-labels": ("weights", "embeddings", "graphs"),
        "mmsa-graph": ("weights", "graphs"),
        "no-pretrain": ("graphs",),
        "ecfp-rf": (),
        "rf-physchem": ("descriptors",),
        "mmsa-probe": ("embeddings",),
        "ecfp-mmsa-rf": ("embeddings",),
        "physchem-mmsa-rf": ("embeddings", "descriptors"),
    }
    # a model that reads anything of the pretraining's model.pt is handed that file (its hash
    # names the model behind the result); the reference models read nothing pretrained
    pretrained = {name for name, m in MODELS.items() if m.reads_pretrained}
    assert pretrained == {
        "mmsa",
        "mmsa-labels",
        "mmsa-graph",
        "mmsa-probe",
        "ecfp-mmsa-rf",
        "physchem-mmsa-rf",
    }


def test_the_settings_a_model_takes_follow_from_its_head_or_its_forest():
    assert {name: m.settings_read for name, m in MODELS.items()} == {
        "mmsa": ("neural", "structure"),
        "mmsa-labels": ("neural", "labels"),
        "mmsa-graph": ("neural",),
        "no-pretrain": ("neural",),
        "ecfp-rf": ("forest",),
        "rf-physchem": (),  # the field's fixed forest: 500 trees, log2 features
        "mmsa-probe": (),
        "ecfp-mmsa-rf": ("forest",),
        "physchem-mmsa-rf": (),
    }
    assert {n for n, m in MODELS.items() if m.neighbours} == {"mmsa", "mmsa-labels"}
    assert MODELS["rf-physchem"].fixed_forest == {"n_estimators": 500, "max_features": "log2"}


def test_every_part_a_head_or_feature_set_reads_is_a_known_read():
    for part in (*HEADS.values(), *FEATURE_SETS.values()):
        assert set(part.reads) <= set(READS), part.name


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (dict(trained="finetuned", head="attention"), "a network has a head of"),
        (dict(trained="finetuned", features=("ecfp",)), "a network has a head of"),
        (dict(trained="forest"), "a classical model has features"),
        (dict(trained="forest", features=("ecfp",), pretrained=True), "a classical model has features"),
        (dict(trained="forest", features=("ecfp",), head="structure"), "a classical model has features"),
        (dict(trained="linear", features=("maccs",)), "features are of"),
        (dict(trained="boosted", features=("ecfp",)), "trained is finetuned, forest or linear"),
    ],
)
def test_a_declaration_the_pipeline_cannot_build_is_refused_where_it_is_written(declaration, message):
    with pytest.raises(ValueError, match=message):
        ComparedModel("toy", "a toy model", **declaration)
