"""Helpers that several test modules share (not a test module: pytest collects nothing here).

* the data stages run in-process on a local CSV, as the Snakemake rules would;
* small sets of real molecules: ``TOY_SMILES`` (a labelled toy dataset), ``DRUG_LIKE`` (scaffold
  groups of known sizes, for split tests), ``NAMED_SMILES`` (model unit tests);
* ``TINY_MODEL``, a pretraining model small enough for CPU tests;
* ``molecule_batch``: molecules in the loader's ``Data`` layout, with real ETKDG conformers;
* ``run_snakemake`` and ``tiny_workflow_config``: real Snakemake runs of the tiny config;
* ``Repeated``: a huge file made as it is read, for the readers' memory bounds.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from functools import cache
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rdkit import Chem
from rdkit.Chem import AllChem
from rdkit.Chem.Scaffolds import MurckoScaffold
from torch_geometric.data import Batch, Data

from mmsa.features.descriptors import compute_descriptors
from mmsa.features.graph import mol_to_graph
from mmsa.plan.config import validate_config
from mmsa.stages.data_stages import run_data_stages

# --------------------------------------------------------------------------- data stages


SMALL_FEATURES = {"image_size": 32, "conformer": {"optimize_steps": 100}}  # fast


def toy_config(tmp: Path, names: list[str], tasks: dict[str, str], **data: Any) -> dict[str, Any]:
    """A config whose datasets ``names`` are ``<tmp>/<name>.csv`` files."""
    custom = {
        n: {"source": "local", "smiles_column": "smiles", "task_type": "classification", "tasks": tasks}
        for n in names
    }
    return validate_config(
        {
            "cache_dir": str(tmp / "cache"),
            "data": {"local_dir": str(tmp), "custom": custom, **data},
            "featurize": SMALL_FEATURES,
            "finetune": {"datasets": names},
        }
    )


def write_csv(path: Path, smiles: list[str]) -> None:
    """A one-task classification CSV of ``smiles`` (labels alternate 0, 1)."""
    path.write_text("smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(smiles)))


def run_chain(config: dict[str, Any], name: str, out: Path, threads: int = 1) -> dict[str, Any]:
    """fetch -> standardize -> shard -> featurize -> account into ``out/name``."""
    return run_data_stages(config, name, out / name, threads)


# --------------------------------------------------------------------------- molecules

TOY_SMILES = [
    "CCO",
    "c1ccccc1O",
    "CC(=O)Oc1ccccc1C(=O)O",
    "CC(=O)Nc1ccc(O)cc1",
    "CN1CCC[C@H]1c1cccnc1",
    "CCN(CC)CC",
    "Clc1ccccc1",
    "OC1CCCCC1",
    "CCCCCC",
    "O=C(O)c1ccccc1",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "COc1ccc2[nH]cc(CCN)c2c1",
    "CN1C(=O)N(C)c2ncn(C)c2C1=O",
    "c1ccc2ccccc2c1",
    "CC(C)NCC(O)CO",
    "NC(=O)c1cccnc1",
    "OCC(O)CO",
    "CC#N",
    "C1CCNCC1",
    "c1ccncc1",
    "CCOC(=O)C",
    "CC(C)=O",
    "O=C1CCCCC1",
    "Cc1ccccc1",
    "Nc1ccccc1",
    "OC(=O)CCC(=O)O",
    "CCCl",
    "FC(F)(F)c1ccccc1",
    "C1CCOC1",
    "CS(C)=O",
    "CC(O)C(=O)O",
    "NCCO",
]
TINY_MODEL = {
    "gnn_layers": 2,
    "gnn_dim": 16,
    "image_layers": [1, 1],
    "image_width": 8,
    "geo_hidden": 16,
    "geo_filters": 16,
    "geo_interactions": 1,
    "geo_gaussians": 8,
    "embed_dim": 16,
    "fusion_heads": 2,
    "num_anchors": 4,
    "hypergraph_k": 2,
}


# Each DRUG_LIKE molecule is core ring system + linker + end ring system + optional substituent
# on the core. Substituents leave the Murcko scaffold unchanged, so scaffold groups have sizes 1
# to 4 by construction (111 molecules in 45 groups), which is what split tests need.
CORES = ["c1ccc(cc1)", "c1ccc(nc1)", "c1ccc(o1)", "c1ccc(s1)", "C1CCN(CC1)", "c1ccc2[nH]c(cc2c1)"]
LINKERS = ["C(=O)N", "C", "", "S(=O)(=O)", "CC"]
ENDS = ["c1ccccc1", "c1ccncc1", "C1CCOCC1", "C1CC1", "c1ccc2ccccc2c1", "c1cn[nH]c1"]
SUBSTITUENTS = ["", "C", "Cl", "F"]


def _drug_like() -> list[str]:
    smiles = []
    for i, (core, linker, end) in enumerate(list(product(CORES, LINKERS, ENDS))[::4]):
        smiles += [f"{sub}{core}{linker}{end}" for sub in SUBSTITUENTS[: 1 + i % 4]]
    return smiles


DRUG_LIKE = _drug_like()
HU_FRACTIONS = (0.8, 0.1, 0.1)  # Hu et al.'s train, valid and test shares


def scaffold_of(smiles: str) -> str:
    return MurckoScaffold.MurckoScaffoldSmiles(smiles=smiles, includeChirality=True)


NAMED_SMILES = {
    "aspirin": "CC(=O)OC1=CC=CC=C1C(=O)O",
    "caffeine": "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "paracetamol": "CC(=O)NC1=CC=C(C=C1)O",
    "ibuprofen": "CC(C)CC1=CC=C(C=C1)C(C)C(=O)O",
    "nicotine": "CN1CCC[C@H]1C2=CN=CC=C2",
    "dopamine": "C1=CC(=C(C=C1CCN)O)O",
    "serotonin": "C1=CC2=C(C=C1O)C(=CN2)CCN",
    "benzene": "c1ccccc1",
    "ethanol": "CCO",
    "glycine": "NCC(=O)O",
    "pyridine": "c1ccncc1",
    "naphthalene": "c1ccc2ccccc2c1",
    "menthol": "CC(C)[C@@H]1CC[C@@H](C)C[C@H]1O",
    "adrenaline": "CNC[C@H](O)C1=CC(O)=C(O)C=C1",
    "salicylic_acid": "OC(=O)C1=CC=CC=C1O",
    "chlorobenzene": "Clc1ccccc1",
}


# --------------------------------------------------------------------------- model batches


@cache
def conformer(smiles: str, seed: int = 7) -> np.ndarray:
    """Heavy-atom ETKDG coordinates (AddHs, embed, RemoveHs keeps the heavy-atom order)."""
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    heavy = Chem.RemoveHs(mol)
    return heavy.GetConformer().GetPositions().astype(np.float32)


def molecule_data(
    smiles: str,
    feature_set: str = "hu",
    image_size: int = 32,
    conf_ok: bool = True,
    image_ok: bool = True,
    seed: int = 0,
) -> Data:
    """One molecule in the loader's ``Data`` layout."""
    mol = Chem.MolFromSmiles(smiles)
    graph = mol_to_graph(mol, feature_set)
    pos = conformer(smiles) if conf_ok else np.zeros((graph.num_atoms, 3), np.float32)
    assert pos.shape == (graph.num_atoms, 3)
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (1, 3, image_size, image_size), generator=gen, dtype=torch.uint8)
    return Data(
        x=torch.as_tensor(graph.atom_features, dtype=torch.long),
        edge_index=torch.as_tensor(graph.edge_index, dtype=torch.long),
        edge_attr=torch.as_tensor(graph.edge_features, dtype=torch.long),
        pos=torch.as_tensor(pos),
        conf_mask=torch.tensor([conf_ok]),
        image=image,
        img_mask=torch.tensor([image_ok]),
        descriptors=torch.as_tensor(compute_descriptors(mol)).unsqueeze(0),
        num_nodes=graph.num_atoms,
    )


def molecule_batch(
    names: list[str] | None = None,
    feature_set: str = "hu",
    image_size: int = 32,
    no_conf: tuple[int, ...] = (),
    no_image: tuple[int, ...] = (),
) -> Batch:
    names = list(NAMED_SMILES) if names is None else names
    return Batch.from_data_list(
        [
            molecule_data(NAMED_SMILES[n], feature_set, image_size, i not in no_conf, i not in no_image, i)
            for i, n in enumerate(names)
        ]
    )


# --------------------------------------------------------------------------- workflow runs

REPO = Path(__file__).resolve().parent.parent


def run_snakemake(
    workdir: Path, config: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """This checkout's workflow on ``config`` in ``workdir`` (2 cores unless ``extra`` says)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), "--configfile", str(config), "--cores", "2", *extra]
    env = {**(env or os.environ), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def tiny_workflow_config(work: Path, download_cache: Path) -> dict[str, Any]:
    """``config/test.yaml`` with a feature cache of its own in ``work`` (features start empty)
    and the registry downloads shared with other tests."""
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["cache_dir"] = str(work / "cache")
    (work / "cache" / "downloads").mkdir(parents=True)
    (download_cache / "downloads" / "pypi").mkdir(parents=True, exist_ok=True)
    (work / "cache" / "downloads" / "pypi").symlink_to(
        download_cache / "downloads" / "pypi", target_is_directory=True
    )
    return config


# --------------------------------------------------------------------------- huge inputs


class Repeated(io.RawIOBase):
    """``head``, then ``size`` bytes of ``fill`` over and over, made as they are read, then
    ``tail``: a huge file that the test never holds."""

    def __init__(self, head: bytes, fill: bytes, size: int, tail: bytes) -> None:
        self.parts: list[bytes | None] = [head, None, tail]
        self.fill, self.size, self.made = fill, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self.parts:
            part = self.parts[0]
            if part is None and self.made < self.size:
                n = min(len(buffer), self.size - self.made)
                start = self.made % len(self.fill)
                buffer[:n] = (self.fill * (n // len(self.fill) + 2))[start : start + n]
                self.made += n
                return n
            if part:
                n = min(len(buffer), len(part))
                buffer[:n], self.parts[0] = part[:n], part[n:]
                return n
            self.parts.pop(0)
        return 0
