"""Read features back as PyG ``Data`` objects, lazily, for any list of molecule keys.

Each ``Data`` carries the three views and their masks:

* ``x`` (n, A) long, ``edge_index`` (2, E) long, ``edge_attr`` (E, B) long: the graph;
* ``pos`` (n, 3) float32 and ``conf_mask`` (1,) bool: the conformer (zeros when it failed);
* ``image`` (1, 3, S, S) uint8 and ``img_mask`` (1,) bool: the depiction;
* ``descriptors`` (1, D) float64: the raw RDKit descriptors, NaN where one failed;
* ``key``: the molecule key.

A pack's graphs and coordinates are small and are held in memory once opened (a bounded
number of packs at a time); images are read from Zarr only for the rows asked for.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import zarr
from torch_geometric.data import Data

from mmsa.features.cache import INDEX, STORE, FeatureCache
from mmsa.features.graph import atom_feature_dims, bond_feature_dims


class MissingFeatures(KeyError):
    """A key that the manifests do not list, or a pack that is no longer in the cache."""


class _Pack:
    """One opened pack: graph arrays and coordinates in memory, images on disk."""

    def __init__(self, folder: Path, n_atom_cols: int, n_bond_cols: int) -> None:
        if not (folder / INDEX).exists():
            raise MissingFeatures(f"feature pack {folder} is missing from the cache; re-run featurize")
        index = pq.read_table(folder / INDEX)
        self.num_atoms = index.column("num_atoms").to_numpy()
        self.atoms = index.column("atom_features").to_pylist()
        self.edges = index.column("edge_index").to_pylist()
        self.bonds = index.column("edge_features").to_pylist()
        self.descriptors = np.asarray(index.column("descriptors").to_pylist(), dtype=np.float64)
        store = zarr.open_group(folder / STORE, mode="r")
        self.coords = store["coords"][:]
        self.offsets = store["offsets"][:]
        self.images = store["images"]
        self.a, self.b = n_atom_cols, n_bond_cols

    def data(self, row: int, image: np.ndarray, conf_ok: bool, image_ok: bool, key: str) -> Data:
        n = int(self.num_atoms[row])
        start, stop = self.offsets[row], self.offsets[row + 1]
        pos = self.coords[start:stop] if conf_ok else np.zeros((n, 3), np.float32)
        return Data(
            x=torch.as_tensor(np.asarray(self.atoms[row], np.int64).reshape(n, self.a)),
            edge_index=torch.as_tensor(np.asarray(self.edges[row], np.int64).reshape(2, -1)),
            edge_attr=torch.as_tensor(np.asarray(self.bonds[row], np.int64).reshape(-1, self.b)),
            pos=torch.as_tensor(pos, dtype=torch.float32),
            conf_mask=torch.tensor([conf_ok]),
            image=torch.as_tensor(image).unsqueeze(0),
            img_mask=torch.tensor([image_ok]),
            descriptors=torch.as_tensor(self.descriptors[row]).unsqueeze(0),
            key=key,
            num_nodes=n,
        )


def read_manifests(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate featurize manifests (one row per dataset row)."""
    return pd.concat([pq.read_table(p).to_pandas() for p in paths], ignore_index=True)


class FeatureStore:
    """Lazy access to the features of the molecules listed in some manifests."""

    def __init__(self, cache: FeatureCache, manifest: pd.DataFrame, max_open_packs: int = 8) -> None:
        self.cache = cache
        unique = manifest.drop_duplicates("key")
        self.locations = dict(
            zip(
                unique["key"],
                zip(unique["pack"], unique["pack_row"], unique["conf_ok"], unique["image_ok"], strict=True),
                strict=True,
            )
        )
        self._open: OrderedDict[str, _Pack] = OrderedDict()
        self.max_open = max_open_packs
        self.n_atom_cols = len(atom_feature_dims(cache.settings.graph_features))
        self.n_bond_cols = len(bond_feature_dims(cache.settings.graph_features))

    @property
    def keys(self) -> list[str]:
        return list(self.locations)

    def _pack(self, name: str) -> _Pack:
        if name not in self._open:
            self._open[name] = _Pack(self.cache.pack_path(name), self.n_atom_cols, self.n_bond_cols)
            if len(self._open) > self.max_open:
                self._open.popitem(last=False)
        self._open.move_to_end(name)
        return self._open[name]

    def _where(self, keys: Sequence[str]) -> list[tuple]:
        try:
            return [self.locations[k] for k in keys]
        except KeyError as err:
            raise MissingFeatures(f"no features listed for molecule {err.args[0]!r}") from None

    def descriptors(self, keys: Sequence[str]) -> np.ndarray:
        """The raw descriptors of ``keys`` as a float64 (n, D) matrix (NaN = failed), read from
        the packs' indexes only (no image is read)."""
        return np.stack([self._pack(pack).descriptors[row] for pack, row, *_ in self._where(keys)])

    def get(self, keys: Sequence[str]) -> list[Data]:
        """``Data`` objects for ``keys``, in the same order."""
        where = self._where(keys)
        out: list[Data | None] = [None] * len(keys)
        by_pack: dict[str, list[int]] = {}
        for i, (pack, *_rest) in enumerate(where):
            by_pack.setdefault(pack, []).append(i)
        for pack_name, positions in by_pack.items():
            pack = self._pack(pack_name)
            rows = np.array([where[i][1] for i in positions])
            order = np.argsort(rows, kind="stable")
            images = pack.images.get_orthogonal_selection((rows[order],))
            for j, i in enumerate(np.asarray(positions)[order]):
                _, row, conf_ok, image_ok = where[i]
                out[i] = pack.data(row, images[j], bool(conf_ok), bool(image_ok), keys[i])
        return out  # type: ignore[return-value]


def manifest_digest(manifests: Sequence[str | os.PathLike]) -> str:
    """SHA-256 of the molecule keys the manifests list, in order and with repeats: what a model
    is trained on (the feature settings name the features of each key), unlike the manifest paths,
    which stay the same when a dataset's rows or standardization change."""
    digest = hashlib.sha256()
    for path in manifests:
        for key in pq.read_table(path, columns=["key"]).column("key").to_pylist():
            digest.update(key.encode("utf-8") + b"\n")
        digest.update(b"\0")
    return digest.hexdigest()
