import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from rdkit import Chem
from torch_geometric.data import Batch

from helpers import run_chain, toy_config
from mmsa.features.cache import INDEX, FeatureCache
from mmsa.features.conformer import ConformerOptions, generate_conformer
from mmsa.features.graph import atom_feature_dims, bond_feature_dims, mol_to_graph
from mmsa.features.image import render_image
from mmsa.features.loader import FeatureStore, MissingFeatures, read_manifests
from mmsa.plan import feature_settings

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
UNEMBEDDABLE = "C1=CC2=CC=C1C=C2"  # no 3D geometry satisfies this ring system


def test_graph_features_of_aspirin():
    graph = mol_to_graph(Chem.MolFromSmiles(ASPIRIN), "hu")
    assert graph.atom_features.shape == (13, 2)
    assert graph.edge_index.shape == (2, 26) and graph.edge_features.shape == (26, 2)
    assert graph.atom_features[0, 0] == 5  # carbon: atomic number 6 -> index 5
    assert set(graph.edge_features[:, 0]) == {0, 1, 3}  # single, double, aromatic
    rich = mol_to_graph(Chem.MolFromSmiles(ASPIRIN), "rich")
    assert rich.atom_features.shape == (13, len(atom_feature_dims("rich")))
    assert rich.edge_features.shape == (26, len(bond_feature_dims("rich")))
    for column, size in enumerate(atom_feature_dims("rich")):
        assert rich.atom_features[:, column].max() < size


def test_chirality_and_bond_direction_are_encoded():
    chiral = mol_to_graph(Chem.MolFromSmiles("C[C@H](N)O"), "hu").atom_features[:, 1]
    assert set(chiral) == {0, 1} or set(chiral) == {0, 2}
    directed = mol_to_graph(Chem.MolFromSmiles("F/C=C/F"), "hu").edge_features[:, 1]
    assert set(directed) - {0}


def test_conformer_is_deterministic_and_aligned_with_the_graph():
    mol = Chem.MolFromSmiles(ASPIRIN)
    a = generate_conformer(mol, ConformerOptions(seed=3))
    b = generate_conformer(mol, ConformerOptions(seed=3))
    assert a.ok and a.detail == "mmff" and a.coords.shape == (13, 3)
    np.testing.assert_array_equal(a.coords, b.coords)
    bond = mol.GetBondWithIdx(0)  # C-C single bond, ~1.5 Angstrom
    length = np.linalg.norm(a.coords[bond.GetBeginAtomIdx()] - a.coords[bond.GetEndAtomIdx()])
    assert 1.4 < length < 1.6


def test_conformer_failure_is_a_reason_not_a_crash():
    result = generate_conformer(Chem.MolFromSmiles(UNEMBEDDABLE), ConformerOptions())
    assert not result.ok and "embedding failed" in result.detail


def test_uff_fallback_when_mmff_lacks_parameters():
    from rdkit.Chem import rdForceFieldHelpers

    untypeable = Chem.MolFromSmiles("[SiH3]C(=O)[Se]C")  # MMFF94 has no Si or Se types; UFF has
    assert not rdForceFieldHelpers.MMFFHasAllMoleculeParams(Chem.AddHs(untypeable))
    result = generate_conformer(untypeable, ConformerOptions(force_field="mmff"))
    assert result.ok and result.detail == "uff"
    assert (
        generate_conformer(Chem.MolFromSmiles("CCO"), ConformerOptions(force_field="mmff")).detail == "mmff"
    )
    assert generate_conformer(Chem.MolFromSmiles("CCO"), ConformerOptions(force_field="uff")).detail == "uff"


def test_image_is_deterministic_rgb():
    mol = Chem.MolFromSmiles(ASPIRIN)
    image = render_image(mol, 48)
    assert image.shape == (3, 48, 48) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, render_image(mol, 48))
    assert image.min() < 100 < image.max()  # ink on a white background


SHARED = ["CCO", "c1ccccc1O", ASPIRIN, "CC(=O)Nc1ccc(O)cc1", "CN1CCC[C@H]1c1cccnc1"]
ONLY_A = ["CCCCCC", "O=C(O)c1ccccc1"]
ONLY_B = ["CCN(CC)CC", "Clc1ccccc1", "OC1CCCCC1"]


def write_csv(path, smiles):
    path.write_text("smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(smiles)))


def test_second_dataset_reuses_shared_molecules(tmp_path):
    write_csv(tmp_path / "a.csv", SHARED + ONLY_A)
    write_csv(tmp_path / "b.csv", ONLY_B + SHARED)
    config = toy_config(tmp_path, ["a", "b"], {"y": "y"}, shard_size=4)
    first = run_chain(config, "a", tmp_path / "out")
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    packs_after_a = set(cache.pack_names())
    second = run_chain(config, "b", tmp_path / "out")
    assert sum(c["computed"] for c in first["featurize"]) == len(SHARED + ONLY_A)
    assert sum(c["reused"] for c in second["featurize"]) == len(SHARED)
    assert sum(c["computed"] for c in second["featurize"]) == len(ONLY_B)
    new_packs = set(cache.pack_names()) - packs_after_a
    new_keys = {k for p in new_packs for k in pq.read_table(cache.pack_path(p) / INDEX)["key"].to_pylist()}
    assert new_keys == {Chem.CanonSmiles(s) for s in ONLY_B}


def test_loader_returns_all_three_views(tmp_path):
    write_csv(tmp_path / "a.csv", [ASPIRIN, UNEMBEDDABLE, "CCO"])
    config = toy_config(tmp_path, ["a"], {"y": "y"}, shard_size=2)
    run_chain(config, "a", tmp_path / "out")
    manifest = read_manifests(sorted((tmp_path / "out" / "a").glob("man-*.parquet")))
    store = FeatureStore(FeatureCache(config["cache_dir"], feature_settings(config)), manifest)
    keys = [Chem.CanonSmiles(s) for s in (UNEMBEDDABLE, ASPIRIN)]
    bad, good = store.get(keys)
    assert good.key == keys[1] and good.x.shape == (13, 2) and good.x.dtype == torch.long
    assert good.edge_index.shape == (2, 26) and good.edge_attr.shape == (26, 2)
    assert good.pos.shape == (13, 3) and bool(good.conf_mask) and good.pos.abs().sum() > 0
    assert good.image.shape == (1, 3, 32, 32) and good.image.dtype == torch.uint8 and bool(good.img_mask)
    assert not bool(bad.conf_mask) and bad.pos.abs().sum() == 0
    batch = Batch.from_data_list([bad, good])
    assert batch.conf_mask.tolist() == [False, True] and batch.image.shape == (2, 3, 32, 32)
    with pytest.raises(MissingFeatures, match="no features listed"):
        store.get(["C[Se]C"])


def test_featurize_with_two_workers_matches_one(tmp_path):
    smiles = SHARED + ONLY_A + ONLY_B
    write_csv(tmp_path / "a.csv", smiles)
    write_csv(tmp_path / "b.csv", smiles)
    one = toy_config(tmp_path / "one", ["a"], {"y": "y"}, local_dir=str(tmp_path))
    two = toy_config(tmp_path / "two", ["a"], {"y": "y"}, local_dir=str(tmp_path))
    run_chain(one, "a", tmp_path / "one" / "out", threads=1)
    run_chain(two, "a", tmp_path / "two" / "out", threads=2)
    packs = [FeatureCache(c["cache_dir"], feature_settings(c)) for c in (one, two)]
    names = [p.pack_names() for p in packs]
    assert names[0] == names[1]
    import zarr

    for name in names[0]:
        a, b = (zarr.open_group(p.pack_path(name) / "features.zarr", mode="r") for p in packs)
        np.testing.assert_array_equal(a["coords"][:], b["coords"][:])
        np.testing.assert_array_equal(a["images"][:], b["images"][:])
    summary = json.loads((tmp_path / "two" / "out" / "a" / "accounting.json").read_text())
    assert summary["featurized"] == len(smiles)
