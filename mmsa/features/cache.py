"""The content-addressed feature cache, shared by every dataset and run.

Layout: ``<cache_dir>/features/<settings fingerprint>/packs/<pack id>/`` holding

* ``index.parquet``: one row per molecule: key, graph arrays, conformer and image status;
* ``features.zarr``: ``coords`` (total_atoms, 3) float32 with ``offsets`` (n + 1,) int64
  (Zarr has no ragged arrays), and ``images`` (n, 3, S, S) uint8 chunked along molecules.

A pack is written once, under a temporary name, and renamed into place complete; it is never
modified afterwards, so any number of jobs (on one machine or on a cluster's shared file
system) can read the cache while others add packs, and no two processes ever write the same
store. A molecule is looked up by its key; featurizing a shard computes only keys that no pack
holds yet. Two jobs that race to compute the same new molecule each write their own pack with
identical content (featurization is deterministic); lookups take the first pack by name.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from mmsa.features.settings import FeatureSettings

log = logging.getLogger(__name__)

INDEX = "index.parquet"
STORE = "features.zarr"
STATUS_COLUMNS = ["key", "conf_ok", "image_ok"]
_COORD_CHUNK = 1 << 16
IMAGE_CHUNK = 16  # images per Zarr chunk; readers group their reads by it


@dataclass(frozen=True)
class CacheHit:
    """Where a molecule's features live."""

    pack: str
    pack_row: int
    conf_ok: bool
    image_ok: bool


class FeatureCache:
    """Packs of features computed under one set of settings."""

    def __init__(self, cache_dir: str | os.PathLike, settings: FeatureSettings) -> None:
        self.settings = settings
        self.root = Path(cache_dir) / "features" / settings.fingerprint()
        self.packs_dir = self.root / "packs"
        self.packs_dir.mkdir(parents=True, exist_ok=True)
        settings_file = self.root / "settings.json"
        if not settings_file.exists():
            settings_file.write_text(json.dumps(settings.to_dict(), indent=1))

    def pack_names(self) -> list[str]:
        """Complete packs, in name order (temporary ``.tmp-*`` folders are never listed)."""
        return sorted(p.name for p in self.packs_dir.iterdir() if not p.name.startswith("."))

    def pack_path(self, name: str) -> Path:
        return self.packs_dir / name

    def lookup(self, keys: set[str]) -> dict[str, CacheHit]:
        """The cached location of each of ``keys`` that some pack holds."""
        found: dict[str, CacheHit] = {}
        for name in self.pack_names():
            if len(found) == len(keys):
                break
            table = pq.read_table(self.pack_path(name) / INDEX, columns=STATUS_COLUMNS)
            for row, (key, conf_ok, image_ok) in enumerate(
                zip(*(table.column(c).to_pylist() for c in STATUS_COLUMNS), strict=True)
            ):
                if key in keys and key not in found:
                    found[key] = CacheHit(name, row, conf_ok, image_ok)
        return found


class PackWriter:
    """Appends featurized molecules to a new pack folder (the caller renames it into place)."""

    def __init__(self, folder: Path, image_size: int) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        group = zarr.open_group(folder / STORE, mode="w")
        self.coords = group.create_array("coords", shape=(0, 3), dtype="float32", chunks=(_COORD_CHUNK, 3))
        self.images = group.create_array(
            "images",
            shape=(0, 3, image_size, image_size),
            dtype="uint8",
            chunks=(IMAGE_CHUNK, 3, image_size, image_size),
        )
        self.group = group
        self.offsets = [0]
        self.records: list[dict[str, Any]] = []
        self.image_size = image_size

    def add(self, molecules: list[dict[str, Any]]) -> None:
        """Append molecules as produced by :func:`mmsa.features.featurize.featurize_molecule`."""
        if not molecules:
            return
        blank = np.zeros((3, self.image_size, self.image_size), np.uint8)
        coords = [m["coords"] for m in molecules if m["coords"] is not None]
        if coords:
            self.coords.append(np.concatenate(coords))
        self.images.append(np.stack([blank if m["image"] is None else m["image"] for m in molecules]))
        for m in molecules:
            n = 0 if m["coords"] is None else len(m["coords"])
            self.offsets.append(self.offsets[-1] + n)
            self.records.append({k: m[k] for k in m if k not in ("coords", "image")})

    def close(self) -> int:
        """Write the offsets and the index; return the number of molecules."""
        self.group.create_array("offsets", data=np.asarray(self.offsets, dtype=np.int64))
        columns = {name: [r[name] for r in self.records] for name in INDEX_SCHEMA.names}
        pq.write_table(pa.table(columns, schema=INDEX_SCHEMA), self.folder / INDEX)
        return len(self.records)


INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("num_atoms", pa.int32()),
        ("atom_features", pa.list_(pa.int16())),  # flattened (num_atoms, A)
        ("edge_index", pa.list_(pa.int32())),  # flattened (2, E)
        ("edge_features", pa.list_(pa.int8())),  # flattened (E, B)
        ("conf_ok", pa.bool_()),
        ("conf_detail", pa.string()),
        ("image_ok", pa.bool_()),
        ("image_detail", pa.string()),
    ]
)
