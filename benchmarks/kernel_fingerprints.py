"""Digests of every float step from SMILES to a gradient, to find where two CPUs part ways.

The pinned ``cpu_kernels`` should make pretraining give one ``model.pt`` on every CPU with the
pinned instruction set, and on one machine it does (tests/train/test_determinism.py). Across machines
it did not: ``benchmarks/cpu_kernels.py`` at commit 565fb31 gave ``dadbcec1f4ec`` with the avx2
pin on an AMD EPYC and ``adf123e713ce`` on an Intel Xeon (benchmarks/results/kernel_fingerprints/).
One weight file cannot say which step differs. This script prints a SHA-256 prefix per step, in
pipeline order: the three featurized views of fixed molecules (RDKit conformers, cairo images,
graphs), single torch kernels on seeded inputs (MKL matrix products, oneDNN and ATen
convolutions, ATen's vectorized element-wise and reduction kernels, the random generators), then
the default config's MMSA model on those molecules: each encoder's output, the fused embedding,
the loss and each part's gradient. Run it on two machines and compare the tables: the first row
that differs names the library to pin or to avoid.

    PYTHONPATH=$PWD python benchmarks/kernel_fingerprints.py [--cpu-kernels avx2] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mmsa.runtime.kernels import CHOICES, pin_cpu_kernels

REPO = Path(__file__).resolve().parent.parent
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


def digest(*arrays: Any) -> str:
    """SHA-256 prefix of the bytes of tensors (detached, contiguous), dtype and shape included."""
    h = hashlib.sha256()
    for a in arrays:
        a = a.detach().contiguous().cpu().numpy()
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()[:12]


def featurized(config: dict, folder: Path) -> tuple[list[Any], dict[str, str]]:
    """:data:`SMILES` featurized into a feature cache in ``folder`` and read back as the
    pipeline's ``Data`` (:func:`compute_pack`, :class:`FeatureStore`); digests per view."""
    import pandas as pd

    from mmsa.features.cache import FeatureCache
    from mmsa.features.featurize import compute_pack
    from mmsa.features.loader import FeatureStore
    from mmsa.features.settings import FeatureSettings

    cache = FeatureCache(folder, FeatureSettings.from_dict(config["featurize"]))
    _, failed = compute_pack(cache, SMILES, workers=1, chunk_size=config["featurize"]["chunk_size"])
    if failed:
        raise SystemExit(f"featurization failed: {failed}")
    hits = cache.lookup(set(SMILES))
    manifest = pd.DataFrame([{"key": k, **asdict(hits[k])} for k in SMILES])
    data = FeatureStore(cache, manifest).get(SMILES)
    return data, {
        "features: graph (RDKit)": digest(*(t for d in data for t in (d.x, d.edge_index, d.edge_attr))),
        "features: conformers (RDKit ETKDG + MMFF)": digest(*(d.pos for d in data)),
        "features: images (RDKit + cairo)": digest(*(d.image for d in data)),
    }


def kernel_digests() -> dict[str, str]:
    """Single kernels on seeded inputs, one row each."""
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
        "kernel: conv2d 3x3, 16 channels (oneDNN)": lambda: F.conv2d(images, weight, padding=1),
        "kernel: exp, tanh, sigmoid (ATen vectorized)": lambda: torch.cat([a.exp(), a.tanh(), a.sigmoid()]),
        "kernel: sum, softmax, logsumexp (ATen reductions)": lambda: torch.cat(
            [a.sum(0), a.softmax(1).flatten(), a.logsumexp(1)]
        ),
        "kernel: index_add 1100 -> 64 rows (scatter)": lambda: torch.zeros(64, 128).index_add_(0, index, a),
        "kernel: batch_norm, layer_norm": lambda: torch.cat(
            [F.batch_norm(a, None, None, training=True), F.layer_norm(a, (128,))]
        ),
        "kernel: rand, randn, bernoulli (CPU generator)": lambda: _random(),
    }
    out = {name: digest(fn()) for name, fn in rows.items()}
    with torch.backends.mkldnn.flags(enabled=False):
        aten_conv = F.conv2d(images, weight, padding=1)
    out["kernel: conv2d 3x3, 16 channels (ATen, oneDNN off)"] = digest(aten_conv)
    return out


def _random() -> Any:
    import torch

    torch.manual_seed(0)
    x = torch.empty(1100, 128)
    return torch.cat([torch.rand(1100, 128), torch.randn(1100, 128), x.bernoulli_(0.5)])


def model_digests(config: dict, data: list[Any]) -> dict[str, str]:
    """The default config's MMSA model: one training-mode forward and backward on ``data``."""
    import torch
    from torch_geometric.data import Batch

    from mmsa.models.mmsa import MMSAModel
    from mmsa.runtime.reproducible import configure_torch

    configure_torch(config["torch_threads"])
    batch = Batch.from_data_list(data)
    torch.manual_seed(0)
    model = MMSAModel(config["pretrain"]["settings"]["model"]).train()
    out: dict[str, str] = {"model: initial weights": digest(*model.state_dict().values())}
    feats, _, _ = model.encode(batch)
    for name, value in feats.items():
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-kernels", choices=CHOICES, default=None, help="default: the config's")
    parser.add_argument("--config", type=Path, default=REPO / "config/default.yaml")
    parser.add_argument("--json", type=Path, help="also write the digests here")
    args = parser.parse_args()
    from mmsa.plan.config import load_config

    config = load_config(args.config)
    setting = args.cpu_kernels or config["cpu_kernels"]
    pin_cpu_kernels(setting)  # before torch is imported
    import torch

    from mmsa.runtime.kernels import kernel_provenance

    with tempfile.TemporaryDirectory() as folder:
        data, features = featurized(config, Path(folder))
    digests = {**features, **kernel_digests(), **model_digests(config, data)}
    with open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if "model name" in line), "?")
    print(f"CPU {cpu} ({platform.machine()}), torch {torch.__version__}, cpu_kernels {setting}")
    print(f"provenance: {json.dumps(kernel_provenance())}\n")
    print("| step | sha256 |\n|---|---|")
    for name, value in digests.items():
        print(f"| {name} | `{value}` |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "setting": setting, "digests": digests}, indent=1))


if __name__ == "__main__":
    main()
