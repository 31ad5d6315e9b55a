"""What a finished pretraining run leaves in its folder: ``model.pt``, ``config.json``,
``losses.csv``, ``loss_curve.png`` and ``throughput.json``."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from mmsa.features.cache import FeatureCache
from mmsa.models.mmsa import MMSAModel
from mmsa.models.pretrained_file import save_pretrained
from mmsa.runtime.figures import pyplot, save_figure
from mmsa.runtime.io import atomic_path, write_text
from mmsa.train.pretrain_settings import PretrainResult, PretrainSettings


def write_outputs(
    out: Path,
    model: MMSAModel,
    settings: PretrainSettings,
    cache: FeatureCache,
    history: list[dict[str, float]],
    result: PretrainResult,
) -> None:
    """Weights (a plain state dict), the config used, the loss log and plot, throughput."""
    out.mkdir(parents=True, exist_ok=True)
    save_pretrained(model, out / "model.pt", cache.settings.record())
    record = {
        "pretrain": settings.to_dict(),
        "features": cache.settings.to_dict(),
        "provenance": result.provenance,
    }
    write_text(json.dumps(record, indent=1) + "\n", out / "config.json")
    with atomic_path(out / "losses.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    plot_losses(history, out / "loss_curve.png")
    write_text(json.dumps(dataclasses.asdict(result), indent=1) + "\n", out / "throughput.json")


def plot_losses(history: list[dict[str, float]], path: Path) -> None:
    """Each loss term against the step, with a moving average."""
    import numpy as np

    plt = pyplot()

    terms = [k for k in history[0] if k not in ("step", "epoch", "lr")]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3), squeeze=False)
    steps = np.array([h["step"] for h in history])
    window = max(1, len(history) // 30)
    for ax, term in zip(axes[0], terms, strict=True):
        values = np.array([h.get(term, np.nan) for h in history], dtype=float)
        ax.plot(steps, values, alpha=0.3, lw=0.8)
        if len(values) >= window:
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, lw=1.5)
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("step")
    save_figure(fig, path)
