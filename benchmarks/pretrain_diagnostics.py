"""What a pretrained MMSA model has learned, measured on batches of its pretraining corpus.

Cross-modal contrastive learning can be solved without learning structure: if every molecule
of a batch has its own composition, counting atoms is enough to tell which image and which
conformer belong to which graph. This script measures, for one or more ``model.pt`` files:

* ``top-1 <pair>``: in-batch retrieval accuracy between the projections of two views (the
  contrastive task itself), on clean graphs and on graphs with 30% of atoms masked;
* ``composition-unique``: the share of molecules whose element counts are unique in their
  batch, the accuracy an encoder that only counts atoms could reach;
* ``R2 heavy atoms`` / ``R2 rings``: how well a ridge regression on the frozen GIN embedding
  predicts the heavy-atom count (composition) and the ring count (structure), on held-out
  molecules; ``R2 <descriptor>`` the same for a few RDKit descriptors that the descriptor term
  (``descriptors: true``) predicts and no other term asks for (:data:`PROBED_DESCRIPTORS`);
* ``GIN grad <term>``: the norm of each weighted loss term's gradient at the GIN's parameters
  (model in training mode), i.e. what each objective contributes to the encoder finetuning reuses.

    python benchmarks/pretrain_diagnostics.py results/pretrain/model.pt [more.pt] --batches 20
"""

from __future__ import annotations

import argparse
import copy
import glob
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from rdkit import Chem
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import cross_val_score
from torch_geometric.data import Batch

from mmsa.features.descriptors import DESCRIPTOR_NAMES
from mmsa.models.mmsa import MMSAModel
from mmsa.models.pretrained_file import load_pretrained
from mmsa.plan.config import load_config
from mmsa.runtime.tables import markdown_table, number
from mmsa.stages.inputs import feature_store

BATCH = 64
PROBED_DESCRIPTORS = ("MolLogP", "TPSA", "FractionCSP3", "NumHDonors", "qed")


def retrieval(model: MMSAModel, batch: Batch, mask_rate: float) -> dict[str, float]:
    """Top-1 in-batch retrieval accuracy per modality pair; only the graph view is masked (at
    ``mask_rate``), as in training with augmentation."""
    torch.manual_seed(0)
    model.config = replace(model.config, graph_mask_rate=mask_rate, graph_drop_bond_rate=0.0)
    step = model.encode(batch, augment=mask_rate > 0)
    masks = step.masks
    proj = {m: F.normalize(model.projections[m](step.feats[m]), dim=-1) for m in model.modalities}
    out = {}
    for i, a in enumerate(model.modalities):
        for b in model.modalities[i + 1 :]:
            keep = torch.ones(batch.num_graphs, dtype=torch.bool)
            for m in (a, b):
                if masks[m] is not None:
                    keep &= masks[m]
            sim = proj[a][keep] @ proj[b][keep].t()
            out[f"{a}-{b}"] = float((sim.argmax(1) == torch.arange(int(keep.sum()))).float().mean())
    return out


def gin_gradients(model: MMSAModel, batch: Batch) -> dict[str, float]:
    """Norm of each weighted loss term's gradient at the GIN's parameters."""
    model.train()
    out = {}
    params = [p for p in model.graph_encoder.parameters() if p.requires_grad]
    with torch.enable_grad():
        losses = model(batch)["losses"]
        for i, (term, value) in enumerate(losses.items()):
            grads = torch.autograd.grad(
                model.config.weight(term) * value, params, retain_graph=i < len(losses) - 1, allow_unused=True
            )
            out[f"GIN grad {term}"] = float(torch.sqrt(sum((g**2).sum() for g in grads if g is not None)))
    model.eval()
    return out


def composition_unique(keys: list[str]) -> float:
    """Share of molecules whose element counts (with H) appear once in the batch."""
    signatures = []
    for key in keys:
        mol = Chem.AddHs(Chem.MolFromSmiles(key))
        signatures.append(tuple(sorted(Counter(a.GetSymbol() for a in mol.GetAtoms()).items())))
    counts = Counter(signatures)
    return float(np.mean([counts[s] == 1 for s in signatures]))


def probe_r2(embeddings: np.ndarray, keys: list[str], descriptors: np.ndarray) -> dict[str, float]:
    """Cross-validated R2 of ridge regressions from the GIN embedding to atom and ring counts and
    to :data:`PROBED_DESCRIPTORS` (``descriptors``: the keys' rows of the descriptor view)."""
    mols = [Chem.MolFromSmiles(k) for k in keys]
    targets = {
        "heavy atoms": np.array([m.GetNumHeavyAtoms() for m in mols]),
        "rings": np.array([m.GetRingInfo().NumRings() for m in mols]),
    }
    for name in PROBED_DESCRIPTORS:
        targets[name] = descriptors[:, DESCRIPTOR_NAMES.index(name)]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 7))
    scores = {}
    for name, y in targets.items():
        known = np.isfinite(y)
        scores[name] = float(cross_val_score(ridge, embeddings[known], y[known], cv=5, scoring="r2").mean())
    return scores


@torch.no_grad()
def diagnose(path: str, store, keys: list[str], batches: int) -> dict[str, float]:
    model = load_pretrained(path)
    trained = model.config  # the augmentation rates it was trained with
    rng = np.random.default_rng(0)
    rows: dict[str, list[float]] = {}
    graph_embeddings, probe_keys = [], []
    for _ in range(batches):
        chosen = [keys[i] for i in rng.choice(len(keys), BATCH, replace=False)]
        batch = Batch.from_data_list(store.get(chosen))
        for rate, label in ((0.0, "clean"), (0.3, "30% masked")):
            for pair, value in retrieval(model, batch, rate).items():
                rows.setdefault(f"top-1 {pair}, {label}", []).append(value)
        model.config = trained
        rows.setdefault("composition-unique", []).append(composition_unique(chosen))
        torch.manual_seed(0)
        state = copy.deepcopy(model.state_dict())  # training mode moves the memory anchors
        for term, value in gin_gradients(model, batch).items():
            rows.setdefault(term, []).append(value)
        model.load_state_dict(state)
        graph_embeddings.append(model.embed(batch)[1].numpy())
        probe_keys += chosen
    summary = {name: float(np.mean(values)) for name, values in rows.items()}
    probed = probe_r2(np.concatenate(graph_embeddings), probe_keys, store.descriptors(probe_keys))
    summary.update({f"R2 {k}": v for k, v in probed.items()})
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="pretrained model.pt files")
    parser.add_argument("--config", default="config/default.yaml")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--manifests", default="results/features/zinc/shard-*.parquet")
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    config = load_config(args.config, {"cache_dir": args.cache_dir} if args.cache_dir else None)
    store = feature_store(config, sorted(glob.glob(args.manifests)))
    keys = sorted(store.keys)
    results = {path: diagnose(path, store, keys, args.batches) for path in args.models}
    names = list(dict.fromkeys(n for r in results.values() for n in r))
    grid = pd.DataFrame(
        {
            "measure": names,
            **{path: [number(r.get(name, float("nan"))) for name in names] for path, r in results.items()},
        }
    )
    print(markdown_table(grid, list(results)))


if __name__ == "__main__":
    main()
