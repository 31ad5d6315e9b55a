"""Finetuning, the split and hypergraph stages and prediction, on real featurized molecules."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator
from sklearn.metrics import roc_auc_score

from helpers import TINY_MODEL, run_chain, toy_config
from helpers import TOY_SMILES as SMILES
from mmsa.data.labelled_molecules import load_labelled
from mmsa.eval.metrics import METRICS
from mmsa.features.loader import read_manifests
from mmsa.models.pretrained_file import save_pretrained
from mmsa.models.property import load_property_model
from mmsa.plan.compared_models import MODEL_NAMES
from mmsa.plan.config import deep_merge, validate_config
from mmsa.plan.config_slices import stage_config
from mmsa.plan.finetune_settings import FinetuneSettings
from mmsa.runtime.errors import InputError
from mmsa.runtime.hashing import sha256_file
from mmsa.stages.embed import embed
from mmsa.stages.finetune import finetune
from mmsa.stages.finished_seeds import FinishedSeeds, job_digest, seeds_folder
from mmsa.stages.hypergraph import hypergraph
from mmsa.stages.inputs import feature_settings
from mmsa.stages.predict import predict_file
from mmsa.stages.split import split
from mmsa.train.finetune_seeds import DatasetInputs, run_seed
from mmsa.train.pretrain_loop import build_model
from mmsa.train.pretrain_settings import PretrainSettings

pytestmark = pytest.mark.usefixtures("single_thread")
SEEDS = [0, 1]
FINETUNE = {
    "seeds": SEEDS,
    "neighbours": 3,
    "settings": {"epochs": 3, "batch_size": 8, "split": "random", "rf_trees": 10, "structure_dim": 8},
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A labelled toy dataset through every stage up to finetuning, with a tiny pretrained model."""
    tmp = tmp_path_factory.mktemp("finetune")
    rows = [f"{s},{int('N' in s)},{len(s) / 10}" for s in SMILES]
    (tmp / "toy.csv").write_text("smiles,has_n,size\n" + "\n".join(rows) + "\n")
    base = toy_config(tmp, ["toy"], {"has_n": "has_n"}, shard_size=100)
    config = validate_config(
        deep_merge(base, {"finetune": FINETUNE, "pretrain": {"settings": {"model": TINY_MODEL}}})
    )
    run_chain(config, "toy", tmp / "out")
    d = tmp / "out" / "toy"
    manifests = [d / "man-0.parquet"]
    torch.manual_seed(0)
    model = build_model(PretrainSettings.from_dict({"model": TINY_MODEL}), "hu")
    save_pretrained(model, tmp / "model.pt", feature_settings(config).record())
    # each stage is handed the part of the config its rule declares, as in the workflow
    embed(stage_config(config, "embed"), tmp / "model.pt", manifests, tmp / "emb.parquet")
    part = stage_config(config, "split", "toy")
    split(part, "toy", d / "shards", manifests, tmp / "split.parquet", tmp / "split.json")
    part = stage_config(config, "hypergraph")
    hypergraph(part, tmp / "emb.parquet", tmp / "split.parquet", tmp / "hg.parquet", tmp / "hg.json")
    return config, tmp, d, manifests


def finetune_seeds(config, dataset, model, data_dir, manifests, splits, out, **inputs):
    """Run the finetune stage on its declared config, as the Snakemake rule does; one output of
    each kind per seed under ``out``."""
    results = [out / f"seed-{s}.json" for s in SEEDS]
    predictions = [out / f"seed-{s}.predictions.parquet" for s in SEEDS]
    weights = [out / f"seed-{s}.pt" for s in SEEDS]  # written by neural models only
    finetune(
        stage_config(config, "finetune", dataset, model),
        dataset,
        model,
        data_dir / "shards",
        manifests,
        splits,
        results,
        predictions,
        weights,
        **inputs,
    )
    return results, predictions, weights


def run_model(prepared, model, folder, settings=None):
    """Finetune ``model`` on the toy set, with ``settings`` merged into finetune.settings."""
    config, tmp, d, manifests = prepared
    if settings:
        config = validate_config(deep_merge(config, {"finetune": {"settings": settings}}))
    return finetune_seeds(
        config,
        "toy",
        model,
        d,
        manifests,
        tmp / "split.parquet",
        tmp / folder / model,
        model_path=tmp / "model.pt",
        embeddings=tmp / "emb.parquet",
        hypergraph_path=tmp / "hg.parquet",
    )


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_reported_metric_is_the_metric_of_the_saved_predictions(prepared, model):
    config, tmp, d, _ = prepared
    results, predictions, weights = run_model(prepared, model, "runs")
    splits = pd.read_parquet(tmp / "split.parquet")
    labels = pd.read_parquet(d / "shards" / "shard-00000.parquet").set_index("key")["has_n"]
    scored = 0
    for seed, result_path, prediction_path in zip(SEEDS, results, predictions, strict=True):
        result = json.loads(result_path.read_text())
        held_out = pd.read_parquet(prediction_path)
        mine = splits[splits["seed"] == seed].set_index("key")["part"]
        assert held_out["part"].tolist() == [mine[k] for k in held_out["key"]]
        assert sorted(held_out["key"]) == sorted(mine.index[mine != "train"])
        assert result["sizes"] == [int((mine == p).sum()) for p in ("train", "valid", "test")]
        test = held_out[held_out["part"] == "test"]
        y = labels[test["key"]].to_numpy()
        if len(set(y)) == 2:  # ROC-AUC computed here with scikit-learn, independently of mmsa
            assert result["test"] == pytest.approx(roc_auc_score(y, test["has_n"]), abs=1e-12)
            scored += 1
        else:
            assert np.isnan(result["test"])
        assert result["provenance"]["torch_threads"] == 1 and result["metric"] == "roc_auc"
    assert scored > 0  # some seed's test part holds both classes, so a value was checked
    neural = ("mmsa", "mmsa-labels", "mmsa-graph", "no-pretrain")
    assert all(p.exists() for p in weights) == (model in neural)


@pytest.mark.parametrize("model", ["rf-physchem", "physchem-mmsa-rf"])
def test_the_physchem_forest_is_count_morgan_and_rdkit_descriptors_in_500_log2_trees(prepared, model):
    """rf-physchem's saved predictions equal a forest built here from RDKit and scikit-learn alone
    on the same split: the definition the field uses (Burns et al. 2025), not mmsa's code; and
    physchem-mmsa-rf's equal the same forest with the embed stage's frozen embedding beside."""
    from rdkit.Chem import Descriptors
    from sklearn.ensemble import RandomForestClassifier

    config, tmp, d, _ = prepared
    _, predictions, _ = run_model(prepared, model, "physchem")
    embedded = pd.read_parquet(tmp / "emb.parquet").set_index("key")["fused"]
    labels = pd.read_parquet(d / "shards" / "shard-00000.parquet").set_index("key")["has_n"]
    morgan = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)

    def features(keys):
        rows = []
        for key in keys:
            mol = Chem.MolFromSmiles(key)
            values = np.array(list(Descriptors.CalcMolDescriptors(mol).values()), dtype=np.float64)
            values = np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), -1e6, 1e6)
            fused = np.asarray(embedded[key]) if model == "physchem-mmsa-rf" else []
            rows.append(
                np.concatenate([morgan.GetCountFingerprintAsNumPy(mol), values.astype(np.float32), fused])
            )
        return np.asarray(rows, dtype=np.float32)

    splits = pd.read_parquet(tmp / "split.parquet")
    for seed, path in zip(SEEDS, predictions, strict=True):
        parts = splits[splits["seed"] == seed]
        train = parts.loc[parts["part"] == "train", "key"].tolist()
        held_out = pd.read_parquet(path)
        forest = RandomForestClassifier(n_estimators=500, max_features="log2", random_state=seed)
        forest.fit(features(train), labels[train].to_numpy())
        expected = forest.predict_proba(features(held_out["key"].tolist()))[:, 1]
        np.testing.assert_allclose(held_out["has_n"].to_numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "model, space",
    [("mmsa", None), ("mmsa-labels", "fused"), ("mmsa-labels", "ecfp")],
    ids=["mmsa", "mmsa-labels-fused", "mmsa-labels-ecfp"],
)
def test_reported_mmsa_test_predictions_equal_mmsa_predict(prepared, tmp_path, model, space):
    """The test predictions finetuning reports are ``mmsa predict``'s for the saved model; a
    label context holds its seed's training molecules, and in ECFP space needs no pretrained
    model to place a new molecule."""
    config, tmp, _, _ = prepared
    settings = {"label_space": space} if space else None
    _, predictions, weights = run_model(prepared, model, f"predict-{space}", settings)
    splits = pd.read_parquet(tmp / "split.parquet")
    for seed, prediction_path, weight_path in zip(SEEDS, predictions, weights, strict=True):
        test = pd.read_parquet(prediction_path).query("part == 'test'")
        csv = tmp_path / "test.csv"
        pd.DataFrame({"smiles": test["key"]}).to_csv(csv, index=False)
        pretrained = None if space == "ecfp" else tmp / "model.pt"
        counts = predict_file(config, weight_path, csv, "smiles", tmp_path / "p.csv", pretrained)
        predicted = pd.read_csv(tmp_path / "p.csv")
        if space:
            train = splits.query(f"seed == {seed} and part == 'train'")["key"]
            meta = load_property_model(weight_path)[1]["neighbour_labels"]
            assert meta["space"] == space and meta["k"] == FINETUNE["neighbours"]
            assert sorted(meta["train_keys"]) == sorted(train)
        assert counts["predicted"] == len(test) and predicted["key"].tolist() == test["key"].tolist()
        # the same code scores both; only float32 rounding of the embeddings may differ
        np.testing.assert_allclose(predicted["has_n"], test["has_n"], rtol=0, atol=1e-6)


def test_a_finetuned_model_records_its_origin_and_predict_takes_only_its_pretrained_model(prepared, tmp_path):
    """The saved model names the pretrained file it was finetuned from (SHA-256), its seed, its
    run and the features it read; ``mmsa predict`` refuses another pretraining's model.pt,
    whose fused space would move every new molecule (issue 33: max_fused_cosine 0.995 -> 0.16)."""
    config, tmp, _, _ = prepared
    _, _, weights = run_model(prepared, "mmsa", "origin")
    metas = [load_property_model(w)[1] for w in weights]
    assert [m["seed"] for m in metas] == SEEDS
    assert {m["pretrained_sha256"] for m in metas} == {sha256_file(tmp / "model.pt")}
    assert metas[0]["features"] == feature_settings(config).record()
    assert len({m["run"] for m in metas}) == 1
    torch.manual_seed(1)
    other = build_model(PretrainSettings.from_dict({"model": TINY_MODEL}), "hu")
    save_pretrained(other, tmp_path / "other.pt", feature_settings(config).record())
    (tmp_path / "new.csv").write_text("smiles\nCCN\n")
    with pytest.raises(InputError) as refused:
        predict_file(
            config, weights[0], tmp_path / "new.csv", "smiles", tmp_path / "p.csv", tmp_path / "other.pt"
        )
    given, wanted = sha256_file(tmp_path / "other.pt")[:12], sha256_file(tmp / "model.pt")[:12]
    assert str(refused.value) == (
        f"--pretrained {tmp_path / 'other.pt'}: SHA-256 {given}..., not the pretrained model the "
        f"finetuned models were trained from ({wanted}...); give that model.pt"
    )
    assert not (tmp_path / "p.csv").exists()


def test_descriptor_inputs_are_scaled_on_the_training_part_and_predict_reads_them(prepared, tmp_path):
    """With descriptor_inputs the head reads the RDKit descriptors beside the GIN embedding,
    standardized by the training part's medians (computed here from RDKit); ``mmsa predict``
    gives the reported test predictions from the saved model alone."""
    from rdkit.Chem import Descriptors

    config, tmp, _, _ = prepared
    settings = {"descriptor_inputs": True, "freeze_epochs": 1, "encoder_lr": 0.5}
    _, predictions, weights = run_model(prepared, "no-pretrain", "descriptor-inputs", settings)
    splits = pd.read_parquet(tmp / "split.parquet")
    for seed, prediction_path, weight_path in zip(SEEDS, predictions, weights, strict=True):
        model, _ = load_property_model(weight_path)
        train = splits.query(f"seed == {seed} and part == 'train'")["key"].tolist()
        raw = np.array(
            [
                list(Descriptors.CalcMolDescriptors(Chem.MolFromSmiles(k), missingVal=np.nan).values())
                for k in train
            ]
        )
        raw[~np.isfinite(raw)] = np.nan
        expected = np.nan_to_num(np.nanmedian(raw, axis=0), nan=0.0)
        np.testing.assert_allclose(model.descriptors.centre.numpy(), expected, rtol=1e-12)
        assert model.head.in_features == model.gin.out_dim + raw.shape[1]
        test = pd.read_parquet(prediction_path).query("part == 'test'")
        pd.DataFrame({"smiles": test["key"]}).to_csv(tmp_path / "test.csv", index=False)
        predict_file(config, weight_path, tmp_path / "test.csv", "smiles", tmp_path / "p.csv", None)
        predicted = pd.read_csv(tmp_path / "p.csv")
        np.testing.assert_allclose(predicted["has_n"], test["has_n"], rtol=0, atol=1e-6)


def test_a_frozen_encoder_keeps_every_weight_and_statistic_while_the_head_learns(prepared):
    from mmsa.models.property import PropertyModel, build_gin, graph_data
    from mmsa.train.loop import LoopSettings, Part, fit

    data = dataset_inputs(prepared, pretrained=False)
    keys, labels = data.frame["key"].tolist(), data.labels
    parts = [Part(graph_data(data.store.get(keys)), labels) for _ in range(3)]
    torch.manual_seed(0)
    model = PropertyModel(build_gin(data.arch, 0.5), len(data.tasks))
    gin_before = {k: v.clone() for k, v in model.gin.state_dict().items()}
    head_before = model.head.weight.detach().clone()
    settings = LoopSettings(2, 8, 1e-2, 0.0, 0, freeze_epochs=2, encoder_lr=0.5)
    fit(model, *parts, "classification", settings, 0, torch.device("cpu"))
    assert all(torch.equal(gin_before[k], v) for k, v in model.gin.state_dict().items())
    assert not torch.equal(head_before, model.head.weight)
    thawed = LoopSettings(3, 8, 1e-2, 0.0, 0, freeze_epochs=1, encoder_lr=0.5)
    fit(model, *parts, "classification", thawed, 0, torch.device("cpu"))
    assert not all(torch.equal(gin_before[k], v) for k, v in model.gin.state_dict().items())


@pytest.mark.parametrize("model", ["mmsa", "no-pretrain"])
def test_predict_names_each_molecule_nearest_training_molecules(prepared, tmp_path, model):
    """The saved model keeps its seed's training molecules; ``mmsa predict`` lists each new
    molecule's nearest ones with their labels, ECFP4 Tanimoto (checked against RDKit's own
    TanimotoSimilarity) and, for mmsa, the fused-space cosine that ranks them."""
    config, tmp, d, _ = prepared
    _, _, weights = run_model(prepared, model, "neighbours")
    splits = pd.read_parquet(tmp / "split.parquet")
    labels = pd.read_parquet(d / "shards" / "shard-00000.parquet").set_index("key")["has_n"]
    train = splits.query("seed == 0 and part == 'train'")["key"].tolist()
    reference = load_property_model(weights[0])[1]["reference"]
    assert reference.keys == [k for k in load_labelled_keys(d) if k in set(train)]
    np.testing.assert_array_equal(reference.labels[:, 0], labels[reference.keys].to_numpy())
    assert (reference.fused is not None) == (model == "mmsa")
    queries = [train[0], "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "c1ccncc1"]  # a training molecule first
    pd.DataFrame({"smiles": queries}).to_csv(tmp_path / "q.csv", index=False)
    pretrained = tmp / "model.pt" if model == "mmsa" else None
    predict_file(
        config, weights[0], tmp_path / "q.csv", "smiles", tmp_path / "p.csv", pretrained, neighbours=3
    )
    predicted = pd.read_csv(tmp_path / "p.csv")
    near = pd.read_csv(tmp_path / "p.csv.neighbours.csv")
    fused_columns = ["fused_cosine"] if model == "mmsa" else []
    assert list(near.columns) == ["row", "rank", "neighbour", "has_n", "ecfp_tanimoto", *fused_columns]
    assert near["row"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and near["rank"].tolist() == [1, 2, 3] * 3
    assert set(near["neighbour"]) <= set(train)
    assert near["has_n"].tolist() == labels[near["neighbour"]].tolist()
    fingerprints = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fp = {s: fingerprints.GetFingerprint(Chem.MolFromSmiles(s)) for s in [*train, *predicted["key"]]}
    for row, query in enumerate(predicted["key"]):
        mine = near[near["row"] == row]
        expected = [DataStructs.TanimotoSimilarity(fp[query], fp[n]) for n in mine["neighbour"]]
        np.testing.assert_allclose(mine["ecfp_tanimoto"], expected, atol=1e-6)
        best = max(DataStructs.BulkTanimotoSimilarity(fp[query], [fp[t] for t in train]))
        assert predicted["max_ecfp_tanimoto"].iloc[row] == pytest.approx(best, abs=1e-6)
        ranked_by = mine["fused_cosine"] if model == "mmsa" else mine["ecfp_tanimoto"]
        assert ranked_by.is_monotonic_decreasing
    assert near.iloc[0]["neighbour"] == train[0] and near.iloc[0]["ecfp_tanimoto"] == pytest.approx(1.0)
    assert ("max_fused_cosine" in predicted) == (model == "mmsa")
    # the applicability domain: the threshold leaves the least similar fifth of the validation
    # molecules outside (computed here with RDKit), and predict flags molecules against it
    domain = load_property_model(weights[0])[1]["domain"]
    valid = splits.query("seed == 0 and part == 'valid'")["key"].tolist()
    fp |= {s: fingerprints.GetFingerprint(Chem.MolFromSmiles(s)) for s in valid}
    valid_best = [max(DataStructs.BulkTanimotoSimilarity(fp[v], [fp[t] for t in train])) for v in valid]
    assert domain["coverage"] == 0.8 and domain["valid_molecules"] == len(valid)
    assert domain["max_ecfp_tanimoto"] == pytest.approx(np.quantile(valid_best, 0.2), abs=1e-6)
    assert (
        predicted["in_domain"].tolist()
        == (predicted["max_ecfp_tanimoto"] >= domain["max_ecfp_tanimoto"]).tolist()
    )
    assert predicted["in_domain"].iloc[0]  # a training molecule is inside
    if model == "mmsa":
        assert predicted["max_fused_cosine"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    # a narrower rerun to the same --out leaves no neighbours of the earlier run beside its output
    predict_file(
        config, weights[0], tmp_path / "q.csv", "smiles", tmp_path / "p.csv", pretrained, neighbours=0
    )
    assert not (tmp_path / "p.csv.neighbours.csv").exists()
    assert "max_ecfp_tanimoto" not in pd.read_csv(tmp_path / "p.csv")
    # a file none of whose rows can be used leaves its rejects and no output of the earlier run
    (tmp_path / "bad.csv").write_text("smiles\nC1CC\n")
    with pytest.raises(InputError, match="none of its 1 rows can be used"):
        predict_file(config, weights[0], tmp_path / "bad.csv", "smiles", tmp_path / "p.csv", pretrained)
    assert not (tmp_path / "p.csv").exists()
    assert pd.read_csv(tmp_path / "p.csv.rejects.csv")["reason"].str.contains("unclosed ring").all()


def load_labelled_keys(d):
    """The dataset's featurized keys in the finetuning frame's (source row) order."""
    return load_labelled(sorted((d / "shards").glob("shard-*.parquet")), [d / "man-0.parquet"])[
        "key"
    ].tolist()


def test_the_embed_stage_writes_each_molecule_fused_embedding_once(prepared):
    """One row per featurized molecule, in key order: its key and fused embedding, nothing else."""
    config, tmp, d, manifests = prepared
    table = pq.read_table(tmp / "emb.parquet")
    assert table.column_names == ["key", "fused"]
    assert table.column("key").to_pylist() == sorted(set(read_manifests(manifests)["key"]))
    assert table.schema.field("fused").type.list_size == TINY_MODEL["embed_dim"]


def test_embeddings_are_matched_to_the_molecules_by_key_not_by_row(prepared, tmp_path):
    """finetune reorders the embed stage's rows to the dataset's key order."""
    config, tmp, d, manifests = prepared
    table = pq.read_table(tmp / "emb.parquet")
    order = np.random.default_rng(0).permutation(len(table))
    assert (order != np.arange(len(table))).any()
    pq.write_table(table.take(order), tmp_path / "shuffled.parquet")

    def probe(embeddings, folder):
        _, predictions, _ = finetune_seeds(
            config,
            "toy",
            "mmsa-probe",
            d,
            manifests,
            tmp / "split.parquet",
            tmp_path / folder,
            embeddings=embeddings,
        )
        return [pd.read_parquet(p) for p in predictions]

    for in_order, shuffled in zip(
        probe(tmp / "emb.parquet", "a"), probe(tmp_path / "shuffled.parquet", "b"), strict=True
    ):
        assert len(in_order) > 0
        pd.testing.assert_frame_equal(in_order, shuffled)


def test_regression_predictions_undo_the_target_scaling(prepared, tmp_path):
    """Regression targets are standardized on the training molecules; the saved test
    predictions and ``mmsa predict`` give values in the labels' units."""
    from torch_geometric.data import Batch

    from mmsa.features.cache import FeatureCache
    from mmsa.features.loader import FeatureStore, read_manifests
    from mmsa.models.property import graph_data
    from mmsa.stages.inputs import feature_settings

    base, _, _, _ = prepared
    rows = "".join(f"{s},{1000 + 100 * len(s)}\n" for s in SMILES)  # mean ~2000, std ~600
    (tmp_path / "size.csv").write_text("smiles,size\n" + rows)
    custom = {
        "size": {
            "source": "local",
            "smiles_column": "smiles",
            "task_type": "regression",
            "tasks": {"size": "size"},
        }
    }
    config = validate_config(
        deep_merge(
            base, {"data": {"local_dir": str(tmp_path), "custom": custom}, "finetune": {"datasets": ["size"]}}
        )
    )
    run_chain(config, "size", tmp_path / "out")  # features come from the prepared cache
    d = tmp_path / "out" / "size"
    manifests = [d / "man-0.parquet"]
    split(
        stage_config(config, "split", "size"),
        "size",
        d / "shards",
        manifests,
        tmp_path / "split.parquet",
        tmp_path / "split.json",
    )
    _, predictions, weights = finetune_seeds(
        config, "size", "no-pretrain", d, manifests, tmp_path / "split.parquet", tmp_path / "no-pretrain"
    )
    labels = pd.read_parquet(d / "shards" / "shard-00000.parquet").set_index("key")["size"].astype(float)
    splits = pd.read_parquet(tmp_path / "split.parquet")
    store = FeatureStore(
        FeatureCache(config["cache_dir"], feature_settings(config)), read_manifests(manifests)
    )
    for seed, weight_path, prediction_path in zip(SEEDS, weights, predictions, strict=True):
        model, meta = load_property_model(weight_path)
        train = labels[splits.query(f"seed == {seed} and part == 'train'")["key"]]
        assert meta["target_mean"] == pytest.approx([train.mean()], rel=1e-6)
        assert meta["target_std"] == pytest.approx([train.std(ddof=0)], rel=1e-6)
        test = pd.read_parquet(prediction_path).query("part == 'test'")
        model.eval()
        with torch.no_grad():  # the network's own outputs, in standardized units
            raw = model(Batch.from_data_list(graph_data(store.get(test["key"].tolist()))), None)
        expected = raw.double().numpy()[:, 0] * meta["target_std"][0] + meta["target_mean"][0]
        np.testing.assert_allclose(test["size"], expected, rtol=1e-5)
        csv = tmp_path / "test.csv"
        pd.DataFrame({"smiles": test["key"]}).to_csv(csv, index=False)
        predict_file(config, weight_path, csv, "smiles", tmp_path / "p.csv")
        predicted = pd.read_csv(tmp_path / "p.csv")
        assert predicted["key"].tolist() == test["key"].tolist()
        np.testing.assert_allclose(predicted["size"], expected, rtol=1e-5)


def test_held_out_molecules_never_enter_the_training_hypergraph(prepared):
    _, tmp, _, _ = prepared
    splits, table = pd.read_parquet(tmp / "split.parquet"), pd.read_parquet(tmp / "hg.parquet")
    stats = json.loads((tmp / "hg.json").read_text())
    for seed in SEEDS:
        train = set(splits.query(f"seed == {seed} and part == 'train'")["key"])
        mine = table[table["seed"] == seed]
        assert set(mine["member"]) <= train and set(mine["hyperedge"]) == train
        assert (mine.groupby("hyperedge").size() == 4).all()  # the centre and k = 3 neighbours
        assert stats[str(seed)]["training_molecules"] == len(train)
    parts = [splits[splits["seed"] == seed]["part"].to_numpy() for seed in SEEDS]
    assert (parts[0] != parts[1]).any()  # a random split differs by seed


def test_a_split_training_on_k_molecules_attaches_new_ones_to_all_of_them(prepared, tmp_path):
    """With k = 3 and three training molecules, the stage's hyperedges hold 3 members, not k + 1;
    a held-out molecule's hyperedge still takes the configured k (here: every training molecule),
    not a k read back from the smaller hyperedges."""
    config, tmp, d, manifests = prepared
    splits = pd.read_parquet(tmp / "split.parquet")
    train = splits.query("seed == 0 and part == 'train'").index
    splits.loc[train[3:], "part"] = "valid"  # seed 0 trains on its first three molecules only
    splits.to_parquet(tmp_path / "split.parquet")
    part = stage_config(config, "hypergraph")
    hypergraph(
        part, tmp / "emb.parquet", tmp_path / "split.parquet", tmp_path / "hg.parquet", tmp_path / "hg.json"
    )
    table = pd.read_parquet(tmp_path / "hg.parquet").query("seed == 0")
    assert (table.groupby("hyperedge").size() == 3).all()
    _, _, weights = finetune_seeds(
        config,
        "toy",
        "mmsa",
        d,
        manifests,
        tmp_path / "split.parquet",
        tmp_path / "mmsa",
        model_path=tmp / "model.pt",
        embeddings=tmp / "emb.parquet",
        hypergraph_path=tmp_path / "hg.parquet",
    )
    model, meta = load_property_model(weights[0])
    assert meta["structure"]["k"] == model.structure.k == FINETUNE["neighbours"] == 3
    assert len(model.structure.fused) == 3  # so a new molecule's hyperedge holds all three


def test_attached_context_does_not_depend_on_the_other_new_molecules(prepared):
    _, tmp, _, _ = prepared
    _, _, weights = run_model(prepared, "mmsa", "context")
    model, _ = load_property_model(weights[0])
    new = torch.randn(5, model.structure.fused.shape[1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        together = model.structure.for_new(new)
        alone = torch.cat([model.structure.for_new(new[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def dataset_inputs(prepared, pretrained=True):
    config, tmp, d, manifests = prepared
    from mmsa.features.cache import FeatureCache
    from mmsa.features.loader import FeatureStore, read_manifests
    from mmsa.models.pretrained_file import load_pretrained
    from mmsa.stages.inputs import feature_settings

    frame = load_labelled([d / "shards" / "shard-00000.parquet"], manifests)
    store = FeatureStore(
        FeatureCache(config["cache_dir"], feature_settings(config)), read_manifests(manifests)
    )
    model = load_pretrained(tmp / "model.pt")
    return DatasetInputs(
        "toy",
        "classification",
        frame,
        pd.read_parquet(tmp / "split.parquet"),
        store,
        model.config.to_dict(),
        model if pretrained else None,
    )


def test_finetuning_starts_from_the_pretrained_weights_with_hu_head(prepared):
    data = dataset_inputs(prepared)
    still = FinetuneSettings(epochs=1, batch_size=8, split="random", lr=1e-12, dropout=0.3)
    run = run_seed("mmsa-graph", data, still, 0)
    for name, value in data.pretrained.graph_encoder.state_dict().items():
        if value.is_floating_point() and "running" not in name:
            assert torch.allclose(run.model.gin.state_dict()[name], value, atol=1e-6), name
    assert isinstance(run.model.head, torch.nn.Linear) and run.model.gin.drop_ratio == 0.3


def test_a_seed_gives_the_same_result_whatever_ran_before_it(prepared):
    data = dataset_inputs(prepared, pretrained=False)
    settings = FinetuneSettings(epochs=2, batch_size=8, split="random")
    alone = run_seed("no-pretrain", data, settings, 1).result
    run_seed("no-pretrain", data, settings, 0)
    after = run_seed("no-pretrain", data, settings, 1).result
    assert json.dumps(alone) == json.dumps(after)


def test_patience_stops_when_validation_stops_improving(prepared):
    data = dataset_inputs(prepared, pretrained=False)
    frozen = FinetuneSettings(epochs=10, batch_size=8, split="random", lr=1e-12, patience=2)
    result = run_seed("no-pretrain", data, frozen, 0).result
    # with no learning the validation metric never improves on epoch 1
    assert result["best_epoch"] == 1 and result["last_epoch"] == 3 and len(result["curve"]) == 3
    assert result["test_last"] == result["curve"][-1]["test"]
    # the test part is scored at the best epoch and at the stopping one, not in between
    assert ["test" in point for point in result["curve"]] == [True, False, True]


def test_the_test_part_is_scored_only_at_improving_epochs_and_the_last(prepared):
    data = dataset_inputs(prepared, pretrained=False)
    result = run_seed("no-pretrain", data, FinetuneSettings(epochs=6, batch_size=8, split="random"), 0).result
    curve, best = result["curve"], result["best_epoch"]
    record = -1.0
    for point in curve:
        improved = point["valid"] > record
        record = max(record, point["valid"])
        assert ("test" in point) == (improved or point["epoch"] == 6), point
    assert result["test"] == curve[best - 1]["test"] and result["test_last"] == curve[-1]["test"]


def test_split_table_is_read_by_every_model_and_must_match_the_data(prepared):
    data = dataset_inputs(prepared, pretrained=False)
    data.splits = data.splits[data.splits["row"] != data.frame["row"].iloc[0]]
    with pytest.raises(ValueError, match="lists other molecules"):
        run_seed("ecfp-rf", data, FinetuneSettings(split="random"), 0)


def test_validation_selection_rules():
    roc, rmse = METRICS["classification"], METRICS["regression"]
    assert roc.is_better(0.8, 0.7) and not roc.is_better(0.6, 0.7)
    assert rmse.is_better(0.5, 0.7) and not rmse.is_better(float("nan"), 0.7)
    assert rmse.is_better(float("nan"), None) and roc.is_better(0.9, float("nan"))
    assert not roc.is_better(float("nan"), float("nan"))


def test_a_rerun_reuses_the_seeds_a_killed_job_kept_and_only_for_the_same_inputs(prepared, tmp_path):
    """Finished seeds are kept in checkpoints/ (mmsa.stages.finished_seeds) until the job ends; a
    rerun with the same config and inputs copies them back instead of training, another config
    trains again. The kept result is marked here so that a copy and a retraining differ."""
    config, tmp, d, manifests = prepared
    out = tmp_path / "out"
    results = [out / f"seed-{s}.json" for s in SEEDS]
    predictions = [out / f"seed-{s}.predictions.parquet" for s in SEEDS]
    weights = [out / f"seed-{s}.pt" for s in SEEDS]
    kept = FinishedSeeds(seeds_folder(results), "")

    def job(settings: dict) -> None:
        merged = validate_config(deep_merge(config, {"finetune": {"settings": settings}}))
        part = stage_config(merged, "finetune", "toy", "no-pretrain")
        files = [d / "shards", *manifests, tmp / "split.parquet"]
        kept.digest = job_digest(part, "toy/no-pretrain", files)  # what finetune computes
        finetune(part, "toy", "no-pretrain", d / "shards", manifests, tmp / "split.parquet", results,
                 predictions, weights, checkpoints=kept.folder)  # fmt: skip

    job({})
    assert not kept.folder.exists()  # removed once every seed is in place
    uninterrupted = [path.read_bytes() for path in [*results, *predictions, *weights]]
    # as a job killed after its first seed leaves it: that seed kept, the outputs removed
    planted = {**json.loads(results[0].read_text()), "valid": -1.0}
    results[0].write_text(json.dumps(planted))
    kept.keep(SEEDS[0], [results[0], predictions[0], weights[0]])
    for path in [*results, *predictions, *weights]:
        path.unlink()
    job({})
    assert json.loads(results[0].read_text()) == planted  # copied back, not trained again
    again = [path.read_bytes() for path in [*results, *predictions, *weights]]
    assert [a == b for a, b in zip(again, uninterrupted, strict=True)] == [False, True] + [True] * 4
    results[0].write_text(json.dumps(planted))
    kept.keep(SEEDS[0], [results[0], predictions[0], weights[0]])
    job({"epochs": 2})  # another config: its seeds are trained
    assert json.loads(results[0].read_text())["valid"] != -1.0 and not kept.folder.exists()
