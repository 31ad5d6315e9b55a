"""Digests of every float step from SMILES to pretrained weights: does this CPU give the reference bytes?

``cpu_kernels`` pins torch's CPU kernels so that every CPU gives the same weights; whether a CPU
really does is a fact about that CPU, not about the code. This module computes a SHA-256 prefix
per step, in pipeline order: the featurized views of fixed molecules (RDKit conformers, cairo
images, graphs, descriptors), single torch kernels on seeded inputs (MKL matrix products, oneDNN and
ATen convolutions, MKL's vector maths, ATen's vectorized element-wise and reduction kernels, the
random generators), one training-mode forward and backward of the config's MMSA model (each
encoder's output, the fused embedding, the loss, each part's gradient), and a short fixed
pretraining through the pipeline's own stages (data stages, loader order, optimizer steps: its
losses and ``model.pt``). Two CPUs that agree on every row run one pipeline; the first row that
differs names the library to pin or to avoid.

``tests/train/test_kernel_fingerprints.py`` compares this machine's rows under the project's
default pin with the committed reference (``tests/train/kernel_fingerprints.json``), so the first
CPU that gives other bytes fails the suite; ``benchmarks/kernel_fingerprints.py`` prints the table.
Call :func:`fingerprints` in a process whose kernels were pinned before torch was imported.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mmsa.plan.config import deep_merge, validate_config

SMILES = [  # drug-sized and small molecules with rings, charges, stereo, halogens, P and S
    "CC(=O)Oc1ccccc1C(=O)O",
    "CN1C(=O)N(C)c2ncn(C)c2C1=O",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "C[C@H](N)C(=O)N[C@@H](Cc1ccccc1)C(=O)O",
    "COc1ccc2[nH]cc(CCN)c2c1",
    "O=C(O)c1ccccc1Nc1cccc(C(F)(F)F)c1",
    "CCOP(=S)(OCC)Oc1cc(C)nc(C(C)C)n1",
    "C[N+](C)(C)CCOC(N)=O",
    "Clc1ccc(C(c2ccccc2)n2ccnc2)cc1",
    "CC1(C)S[C@@H]2[C@H](NC(=O)Cc3ccccc3)C(=O)N2[C@H]1C(=O)O",
    "Brc1ccc(Cc2nc3ccccc3[nH]2)cc1",
    "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O",
]
PRETRAINING = {"epochs": 2, "batch_size": 6}  # the short fixed run: 2 steps per epoch on SMILES


def digest(*arrays: Any) -> str:
    """SHA-256 prefix of the bytes of tensors (detached, contiguous), dtype and shape included."""
    h = hashlib.sha256()
    for a in arrays:
        a = a.detach().contiguous().cpu().numpy()
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()[:12]


def featurized(config: dict[str, Any], folder: Path) -> tuple[list[Any], dict[str, str]]:
    """:data:`SMILES` featurized into a feature cache in ``folder`` and read back as the
    pipeline's ``Data`` (:func:`compute_pack`, :class:`FeatureStore`); digests per view."""
    import pandas as pd

    from mmsa.features.cache import FeatureCache
    from mmsa.features.loader import FeatureStore
    from mmsa.features.settings import FeatureSettings
    from mmsa.features.shard_featurizer import compute_pack

    cache = FeatureCache(folder, FeatureSettings.from_dict(config["featurize"]))
    _, failed = compute_pack(cache, SMILES, workers=1, chunk_size=config["featurize"]["chunk_size"])
    if failed:
        raise RuntimeError(f"featurization failed: {failed}")
    hits = cache.lookup(set(SMILES))
    manifest = pd.DataFrame([{"key": k, **asdict(hits[k])} for k in SMILES])
    data = FeatureStore(cache, manifest).get(SMILES)
    return data, {
        "features: graph (RDKit)": digest(*(t for d in data for t in (d.x, d.edge_index, d.edge_attr))),
        "features: conformers (RDKit ETKDG + MMFF)": digest(*(d.pos for d in data)),
        "features: images (RDKit + cairo)": digest(*(d.image for d in data)),
        "features: descriptors (RDKit)": digest(*(d.descriptors for d in data)),
    }


def kernel_digests() -> dict[str, str]:
    """Single kernels on seeded inputs, one row each. The bundled rows are those of the tables
    committed before the single-function rows existed, so old tables stay comparable."""
    import torch
    import torch.nn.functional as F

    def seeded(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=torch.Generator().manual_seed(len(shape) * 1000 + shape[0]))

    a, b = seeded(1100, 128), seeded(256, 128)
    images, weight = seeded(8, 16, 32, 32), seeded(16, 16, 3, 3)
    index = torch.randint(0, 64, (1100,), generator=torch.Generator().manual_seed(1))
    rows: dict[str, Callable[[], torch.Tensor]] = {
        "kernel: linear 1100x128 -> 256 (MKL sgemm)": lambda: F.linear(a, b),
        "kernel: matmul 512x512 (MKL sgemm)": lambda: seeded(512, 512) @ seeded(512, 512).T,
        # a batch of a dozen molecules' atoms, the GIN's own shape: MKL may take another path
        "kernel: linear 200x128 -> 256 (MKL sgemm, small)": lambda: F.linear(a[:200], b),
        "kernel: linear backward 200x128 -> 256 (MKL sgemm)": lambda: _linear_grads(a[:200], b),
        "kernel: conv2d 3x3, 16 channels (oneDNN)": lambda: F.conv2d(images, weight, padding=1),
        "kernel: exp, tanh, sigmoid (ATen vectorized)": lambda: torch.cat([a.exp(), a.tanh(), a.sigmoid()]),
        "kernel: sum, softmax, logsumexp (ATen reductions)": lambda: torch.cat(
            [a.sum(0), a.softmax(1).flatten(), a.logsumexp(1)]
        ),
        # exp and log of large tensors go through MKL's vector maths (their bytes follow MKL_CBWR)
        "kernel: exp (MKL VML)": lambda: a.exp(),
        "kernel: log (MKL VML)": lambda: a.abs().log(),
        "kernel: tanh": lambda: a.tanh(),
        "kernel: sigmoid (ATen)": lambda: a.sigmoid(),
        "kernel: sum (ATen)": lambda: a.sum(0),
        "kernel: softmax (ATen)": lambda: a.softmax(1),
        "kernel: logsumexp": lambda: a.logsumexp(1),
        "kernel: index_add 1100 -> 64 rows (scatter)": lambda: torch.zeros(64, 128).index_add_(0, index, a),
        "kernel: scatter mean, max 1100 -> 64 rows (pooling)": lambda: torch.cat(
            [
                torch.zeros(64, 128).scatter_reduce_(0, index[:, None].expand_as(a), a, "mean"),
                torch.zeros(64, 128).scatter_reduce_(0, index[:, None].expand_as(a), a, "amax"),
            ]
        ),
        "kernel: batch_norm, layer_norm": lambda: torch.cat(
            [F.batch_norm(a, None, None, training=True), F.layer_norm(a, (128,))]
        ),
        "kernel: rand, randn, bernoulli (CPU generator)": _random,
    }
    out = {name: digest(fn()) for name, fn in rows.items()}
    with torch.backends.mkldnn.flags(enabled=False):
        aten_conv = F.conv2d(images, weight, padding=1)
    out["kernel: conv2d 3x3, 16 channels (ATen, oneDNN off)"] = digest(aten_conv)
    return out


def _linear_grads(x: Any, w: Any) -> Any:
    import torch
    import torch.nn.functional as F

    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    F.linear(x, w).square().sum().backward()
    return torch.cat([x.grad.flatten(), w.grad.flatten()])


def _random() -> Any:
    import torch

    torch.manual_seed(0)
    x = torch.empty(1100, 128)
    return torch.cat([torch.rand(1100, 128), torch.randn(1100, 128), x.bernoulli_(0.5)])


def model_digests(config: dict[str, Any], data: list[Any]) -> dict[str, str]:
    """The config's MMSA model: one training-mode forward and backward on ``data``."""
    import torch
    from torch_geometric.data import Batch

    from mmsa.models.mmsa import MMSAModel

    batch = Batch.from_data_list(data)
    torch.manual_seed(0)
    model = MMSAModel(config["pretrain"]["settings"]["model"]).train()
    out: dict[str, str] = {"model: initial weights": digest(*model.state_dict().values())}
    for name, value in model.encode(batch).feats.items():
        out[f"model: {name} encoder output"] = digest(value)
    result = model(batch)
    out["model: fused embedding"] = digest(result["embedding"])
    out["model: loss"] = digest(result["loss"])
    result["loss"].backward()
    for part, module in model.named_children():
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if grads:
            out[f"model: gradient of {part}"] = digest(*grads)
    return out


def pretraining_digests(config: dict[str, Any], folder: Path) -> dict[str, str]:
    """The short fixed pretraining (:data:`PRETRAINING`) of the config's model on :data:`SMILES`,
    through the pipeline's data stages and pretraining stage: its losses and ``model.pt``."""
    from mmsa.stages.data_stages import run_data_stages
    from mmsa.stages.pretrain import pretrain

    (folder / "fingerprints.csv").write_text(
        "smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(SMILES))
    )
    custom = {
        "source": "local",
        "smiles_column": "smiles",
        "task_type": "classification",
        "tasks": {"y": "y"},
    }
    config = validate_config(
        deep_merge(
            config,
            {
                "cache_dir": str(folder / "cache"),
                "data": {"local_dir": str(folder), "custom": {"fingerprints": custom}},
                "finetune": {"datasets": ["fingerprints"]},
                "pretrain": {"settings": PRETRAINING},
            },
        )
    )
    run_data_stages(config, "fingerprints", folder / "data")
    manifests = sorted(str(p) for p in (folder / "data").glob("man-*.parquet"))
    pretrain(config, manifests, folder / "pretrain", folder / "pretrain" / "checkpoint.pt")
    losses = (folder / "pretrain" / "losses.csv").read_bytes()
    weights = (folder / "pretrain" / "model.pt").read_bytes()
    return {
        "pretraining: losses (2 epochs, batch 6)": hashlib.sha256(losses).hexdigest()[:12],
        "pretraining: model.pt": hashlib.sha256(weights).hexdigest()[:12],
    }


def fingerprints(config: dict[str, Any]) -> dict[str, str]:
    """Every row, in pipeline order, for ``config`` (its features, model and ``torch_threads``)."""
    from mmsa.runtime.reproducible import configure_torch

    configure_torch(config["torch_threads"])
    with tempfile.TemporaryDirectory() as folder:
        data, features = featurized(config, Path(folder) / "features")
        return {
            **features,
            **kernel_digests(),
            **model_digests(config, data),
            **pretraining_digests(config, Path(folder)),
        }
