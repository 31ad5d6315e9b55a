"""The descriptor view: RDKit's values, NaN where one fails, kept in the feature cache."""

import subprocess
import sys

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors
from torch_geometric.data import Batch

from helpers import run_chain, toy_config, write_csv
from mmsa.features.cache import FeatureCache
from mmsa.features.descriptors import DESCRIPTOR_NAMES, compute_descriptors
from mmsa.features.loader import FeatureStore, read_manifests
from mmsa.stages.inputs import feature_settings

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def test_every_rdkit_descriptor_in_its_order_with_known_values_for_aspirin():
    assert (
        tuple(name for name, _ in Descriptors.descList) == DESCRIPTOR_NAMES and len(DESCRIPTOR_NAMES) >= 200
    )
    values = dict(zip(DESCRIPTOR_NAMES, compute_descriptors(Chem.MolFromSmiles(ASPIRIN)), strict=True))
    # by hand: C9H8O4; one OH donor; one ring; TPSA of two esters' and one acid's oxygens
    assert round(values["MolWt"], 3) == 180.159 and values["HeavyAtomCount"] == 13
    assert values["NumHDonors"] == 1 and values["NumHAcceptors"] == 3 and values["RingCount"] == 1
    assert round(values["TPSA"], 2) == 63.6


def test_a_descriptor_that_fails_is_nan_never_zero_or_infinite():
    salt = compute_descriptors(Chem.MolFromSmiles("[Na+].[Cl-]"))  # no carbon: BCUT2D has no value
    failed = {DESCRIPTOR_NAMES[i] for i in np.flatnonzero(np.isnan(salt))}
    assert {"BCUT2D_MWHI", "BCUT2D_CHGLO"} <= failed and len(failed) < len(DESCRIPTOR_NAMES)
    assert not np.isinf(salt).any()
    values = dict(zip(DESCRIPTOR_NAMES, salt, strict=True))
    assert values["NumValenceElectrons"] == 8 and values["RingCount"] == 0  # the others are real values


def test_descriptors_round_trip_through_the_feature_cache(tmp_path):
    write_csv(tmp_path / "a.csv", [ASPIRIN, "CCO", "[Na+].[Cl-]"])
    config = toy_config(tmp_path, ["a"], {"y": "y"}, shard_size=2)
    run_chain(config, "a", tmp_path / "out")
    manifest = read_manifests(sorted((tmp_path / "out" / "a").glob("man-*.parquet")))
    store = FeatureStore(FeatureCache(config["cache_dir"], feature_settings(config)), manifest)
    keys = sorted(store.keys)
    expected = np.stack([compute_descriptors(Chem.MolFromSmiles(k)) for k in keys])
    np.testing.assert_array_equal(store.descriptors(keys), expected)  # NaN where NaN, bit for bit
    batch = Batch.from_data_list(store.get(keys))
    assert batch.descriptors.shape == (len(keys), len(DESCRIPTOR_NAMES))
    np.testing.assert_array_equal(batch.descriptors.numpy(), expected)


def test_ctrl_c_while_descriptors_are_computed_stops_the_process():
    """RDKit's ``CalcMolDescriptors`` took a Ctrl-C for a failed descriptor (a bare ``except``):
    the loop below then ran to its end and printed "finished"."""
    script = (
        "import os, signal, threading\n"
        "from rdkit import Chem\n"
        "from mmsa.features.descriptors import compute_descriptors\n"
        f"mol = Chem.MolFromSmiles({ASPIRIN!r})\n"
        "threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "for _ in range(20000):\n"
        "    compute_descriptors(mol)\n"
        "print('finished')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "finished" not in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "KeyboardInterrupt"
