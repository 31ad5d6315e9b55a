"""The pretrain stage: MMSA pretrained on the featurized corpus (one rank of torchrun, or alone)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mmsa.stages.inputs import feature_settings


def pretrain(
    config: dict[str, Any],
    manifests: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
) -> dict[str, Any]:
    """Pretrain MMSA on the featurized corpus listed by ``manifests``; under ``torchrun``, as one
    rank of the group its environment describes."""
    import dataclasses

    from mmsa.features.cache import FeatureCache
    from mmsa.runtime.distributed import process_group
    from mmsa.train.pretrain_loop import train_mmsa
    from mmsa.train.pretrain_settings import PretrainSettings

    settings = PretrainSettings.from_dict(config["pretrain"]["settings"])
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    with process_group(settings.device) as ranks:
        result = train_mmsa(
            [str(m) for m in manifests], cache, settings, config["seed"], out_dir, checkpoint, ranks=ranks
        )
    return dataclasses.asdict(result)
