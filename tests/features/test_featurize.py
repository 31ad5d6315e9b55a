import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from rdkit import Chem
from torch_geometric.data import Batch

from helpers import run_chain, toy_config, write_csv
from mmsa.features.cache import INDEX, FeatureCache
from mmsa.features.conformer import ConformerOptions, ConformerTimeout, generate_conformer
from mmsa.features.graph import BOND_TYPE_MASK, atom_feature_dims, bond_feature_dims, mol_to_graph
from mmsa.features.image import render_image
from mmsa.features.loader import FeatureStore, MissingFeatures, read_manifests
from mmsa.features.settings import FeatureSettings
from mmsa.features.shard_featurizer import compute_pack
from mmsa.stages.inputs import feature_settings

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


EXTREME_ATOMS = [  # each pushes a column to its cap or its fallback index
    "[U](F)(F)(F)(F)(F)(F)(F)(F)(F)(F)(F)F",  # degree 12, unspecified hybridization
    "[C+8]",  # charge above the cap
    "[C-8]",  # charge below it
    "[UH12]",  # 12 hydrogens
    "*C",  # atomic number 0: the unknown atom type
    "[C@SP1](F)(Cl)(Br)I",  # square-planar chirality: "other"
    "[NH3]->[Cu]",  # a dative bond: the unknown bond type
    "c1ccccc1",  # aromatic ring atoms
]


@pytest.mark.parametrize("feature_set", ["hu", "rich"])
def test_every_capped_index_fits_its_vocabulary_and_reaches_its_last_entry(feature_set):
    """The caps in atom_row/bond_row and the vocabulary sizes the encoders embed with must agree:
    an index past a vocabulary crashes the embedding, and a last entry no index reaches means
    a cap and its vocabulary size drifted apart."""
    graphs = [mol_to_graph(Chem.MolFromSmiles(smiles), feature_set) for smiles in EXTREME_ATOMS]
    atoms = np.concatenate([g.atom_features for g in graphs])
    bonds = np.concatenate([g.edge_features for g in graphs])
    for features, dims in ((atoms, atom_feature_dims(feature_set)), (bonds, bond_feature_dims(feature_set))):
        assert (features >= 0).all()
        assert (features.max(axis=0) < dims).all(), (features.max(axis=0), dims)
    atom_dims = atom_feature_dims(feature_set)
    assert atoms[:, 0].max() == atom_dims[0] - 2  # the last entry is the mask token, never featurized
    assert (atoms[:, 1:].max(axis=0) == np.array(atom_dims[1:]) - 1).all()
    assert bonds[:, 0].max() == BOND_TYPE_MASK


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


def _first_pack(cache):
    return cache.pack_path(cache.pack_names()[0])


def _garbage_index(cache):
    (_first_pack(cache) / INDEX).write_bytes(b"not a parquet file")


def _truncated_chunk(cache):
    chunk = max(
        (p for p in (_first_pack(cache) / "features.zarr" / "images").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])


def _missing_index(cache):
    (_first_pack(cache) / INDEX).unlink()


def _stray_file(cache):
    (cache.packs_dir / "notes.txt").write_text("copied here by hand")


def _stray_folder(cache):
    (cache.packs_dir / "leftover").mkdir()


@pytest.mark.parametrize(
    "damage",
    [_garbage_index, _truncated_chunk, _missing_index, _stray_file, _stray_folder],
    ids=lambda f: f.__name__[1:],
)
def test_damaged_cache_entry_is_skipped_reported_and_recomputed(tmp_path, caplog, damage):
    smiles = [ASPIRIN, "CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
    write_csv(tmp_path / "a.csv", smiles)
    config = toy_config(tmp_path, ["a"], {"y": "y"})
    run_chain(config, "a", tmp_path / "out")
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    keys = sorted(Chem.CanonSmiles(s) for s in smiles)

    def features():
        manifest = read_manifests(sorted((tmp_path / "out" / "a").glob("man-*.parquet")))
        store = FeatureStore(FeatureCache(config["cache_dir"], feature_settings(config)), manifest)
        return [(d.x.numpy(), d.pos.numpy(), d.image.numpy()) for d in store.get(keys)]

    before = features()
    damage(cache)
    write_csv(tmp_path / "a.csv", [*smiles, "CCCCCC"])  # a new molecule: every pack is looked at
    with caplog.at_level("WARNING", logger="mmsa"):
        run_chain(config, "a", tmp_path / "out")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("skipping" in w for w in warnings), warnings
    for old, new in zip(before, features(), strict=True):
        for a, b in zip(old, new, strict=True):
            np.testing.assert_array_equal(a, b)


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    import os
    import time

    write_csv(tmp_path / "a.csv", ["CCO", ASPIRIN])
    config = toy_config(tmp_path, ["a"], {"y": "y"})
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    stale, fresh = cache.packs_dir / ".tmp-abc-123-deadbeef", cache.packs_dir / ".tmp-def-456-cafef00d"
    for folder in (stale, fresh):
        (folder / "features.zarr").mkdir(parents=True)
        (folder / "features.zarr" / "zarr.json").write_text("{}")
    old = time.time() - 7 * 3600
    for path in [stale, *stale.rglob("*")]:
        os.utime(path, (old, old))
    run_chain(config, "a", tmp_path / "out")
    assert not stale.exists() and fresh.exists()


RAISES_IN_RDKIT = "*1**1"  # ETKDG raises "Invariant Violation: bad direction in linearSearch"


def test_rdkit_exception_in_conformer_generation_costs_one_conformer_not_the_shard(tmp_path):
    import pandas as pd

    from mmsa.features.shard_featurizer import run_featurize

    keys = [ASPIRIN, RAISES_IN_RDKIT, "CCO"]
    shard = pd.DataFrame({"row": range(3), "input": keys, "key": keys})
    shard.to_parquet(tmp_path / "shard.parquet", index=False)
    settings = FeatureSettings(image_size=32)
    counts = run_featurize(
        tmp_path / "shard.parquet",
        tmp_path / "man.parquet",
        tmp_path / "rej.parquet",
        tmp_path,
        settings,
        chunk_size=8,
    )
    assert counts["featurized"] == 3 and counts["conformer_failures"] == 1
    manifest = pq.read_table(tmp_path / "man.parquet").to_pandas().set_index("key")
    assert manifest["conf_ok"].to_dict() == {ASPIRIN: True, RAISES_IN_RDKIT: False, "CCO": True}
    pack = manifest.loc[RAISES_IN_RDKIT, "pack"]
    index = pq.read_table(FeatureCache(tmp_path, settings).pack_path(pack) / INDEX).to_pandas()
    detail = index.set_index("key").loc[RAISES_IN_RDKIT, "conf_detail"]
    assert detail.startswith("RDKit error in conformer generation") and "Invariant Violation" in detail


MACROCYCLE = "C1" + "C" * 58 + "C1"  # about 0.3 CPU seconds of ETKDG embedding


def test_conformer_bytes_do_not_depend_on_cpu_load():
    """Busy processes stretch the wall-clock time of an embedding, not the work it does."""
    import os
    import subprocess
    import sys

    mol = Chem.MolFromSmiles(MACROCYCLE)
    options = ConformerOptions(force_field="none")
    quiet = generate_conformer(mol, options)
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(4 * len(os.sched_getaffinity(0)))
    ]
    try:
        loaded = generate_conformer(mol, options)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert quiet.ok and loaded.ok, (quiet.detail, loaded.detail)
    assert quiet.coords.tobytes() == loaded.coords.tobytes()


def test_the_last_resort_guard_stops_the_job_naming_the_molecule_and_never_changes_a_feature(tmp_path):
    """Hitting ``timeout_s`` raises (through the featurize pack, so the job fails) instead of
    turning into a missing conformer that a faster machine would have had."""
    result = generate_conformer(
        Chem.MolFromSmiles(MACROCYCLE), ConformerOptions(max_iterations=30, timeout_s=1)
    )
    assert result.ok  # one attempt embeds it: the guard is looked at only between blocks of attempts
    endless = {"max_iterations": 10**6, "timeout_s": 1}
    named = re.escape(Chem.CanonSmiles(UNEMBEDDABLE))
    with pytest.raises(ConformerTimeout, match=f"conformer of {named}: embedding used 1 s of CPU time"):
        generate_conformer(Chem.MolFromSmiles(UNEMBEDDABLE), ConformerOptions(**endless))
    cache = FeatureCache(tmp_path, FeatureSettings.from_dict({"image_size": 32, "conformer": endless}))
    with pytest.raises(ConformerTimeout, match=named):
        compute_pack(cache, ["CCO", Chem.CanonSmiles(UNEMBEDDABLE)], workers=1, chunk_size=1)
    assert cache.pack_names() == []  # nothing half-written


def test_counts_bound_the_work_and_name_the_bound_in_the_reason():
    unembeddable = Chem.MolFromSmiles(UNEMBEDDABLE)
    failed = generate_conformer(unembeddable, ConformerOptions(max_iterations=20))
    assert failed.detail == "ETKDG embedding failed (no valid 3D geometry in 20 attempts)"
    large = generate_conformer(Chem.MolFromSmiles(MACROCYCLE), ConformerOptions(max_atoms=59))
    assert (large.coords, large.detail) == (None, "too large: 60 heavy atoms, over max_atoms (59)")
    assert generate_conformer(Chem.MolFromSmiles(MACROCYCLE), ConformerOptions(max_atoms=60)).ok
    with pytest.raises(ValueError, match="max_iterations must be at least 1"):
        ConformerOptions(max_iterations=0)


def test_the_guard_is_not_part_of_the_feature_fingerprint_but_the_bounds_are():
    base = FeatureSettings.from_dict({})
    assert FeatureSettings.from_dict({"conformer": {"timeout_s": 5}}).fingerprint() == base.fingerprint()
    assert FeatureSettings.from_dict({"conformer": {"timeout_s": 5}}).conformer.timeout_s == 5  # still used
    for bound in ({"max_iterations": 50}, {"max_atoms": 100}, {"optimize_steps": 100}):
        assert FeatureSettings.from_dict({"conformer": bound}).fingerprint() != base.fingerprint()
