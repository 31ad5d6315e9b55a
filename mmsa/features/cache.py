"""The content-addressed feature cache, shared by every dataset and run.

Layout: ``<cache_dir>/features/<settings fingerprint>/packs/<pack id>/`` holding

* ``index.parquet``: one row per molecule: key, graph arrays, conformer and image status, and
  the raw RDKit descriptors (:mod:`mmsa.features.descriptors`, NaN where one failed);
* ``features.zarr``: ``coords`` (total_atoms, 3) float32 with ``offsets`` (n + 1,) int64
  (Zarr has no ragged arrays), and ``images`` (n, 3, S, S) uint8 chunked along molecules.

A pack is written once, under a temporary name, and renamed into place complete; it is never
modified afterwards, so any number of jobs (on one machine or on a cluster's shared file
system) can read the cache while others add packs, and no two processes ever write the same
store. A molecule is looked up by its key; featurizing a shard computes only keys that no pack
holds yet. Two jobs that race to compute the same new molecule each write their own pack with
identical content (featurization is deterministic); lookups take the first pack by name.

A pack also lists the size of every file it holds (``contents.json``, written last). Anything in
the packs folder that is not an intact pack (a stray file or folder, a pack missing a file, a
truncated or overwritten file, an unreadable index) is skipped with a warning naming it and
why, so its molecules are recomputed into a new pack instead of breaking every job of these
settings. Damaged packs are left in place, not deleted: a read can fail for passing reasons (a
network file system, too many open files), and deleting a good pack would break the manifests
of other runs that point at it.
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
from mmsa.runtime.io import remove_stale_temporaries, write_text

log = logging.getLogger(__name__)

INDEX = "index.parquet"
STORE = "features.zarr"
CONTENTS = "contents.json"
_WRITING = ".writing"  # present while a PackWriter owns the folder
STALE_TEMPORARY_S = 6 * 3600
"""Age after which a ``.tmp-*`` pack folder whose files nobody touched is a killed job's leftover.

A live writer appends to its folder after every Dask round (minutes), so hours without a write
mean its job is gone. Why an age and not a process id or a lock: the cache is shared by jobs on
several cluster nodes (and containers with their own process ids), where a process id says
nothing and file locks are unreliable on network file systems; file times work everywhere.
"""
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
            write_text(json.dumps(settings.record(), indent=1), settings_file)  # what the name digests
        self._damaged: dict[str, str] = {}  # pack name -> why it is skipped (reported once)
        self._intact: set[str] = set()

    def pack_names(self) -> list[str]:
        """Intact packs, in name order; temporary ``.tmp-*`` folders are never listed, and damaged
        packs or stray entries are skipped with a warning (see the module docstring)."""
        names = []
        for entry in sorted(p.name for p in self.packs_dir.iterdir() if not p.name.startswith(".")):
            if entry not in self._intact and entry not in self._damaged:
                problem = pack_problem(self.pack_path(entry))
                if problem is None:
                    self._intact.add(entry)
                else:
                    self._skip(entry, problem)
            if entry in self._intact:
                names.append(entry)
        return names

    def _skip(self, name: str, problem: str) -> None:
        self._intact.discard(name)
        self._damaged[name] = problem
        log.warning(
            "feature cache %s: skipping %s (%s); its molecules are recomputed. Delete it once no "
            "run's manifest points at it.",
            self.packs_dir,
            name,
            problem,
        )

    def pack_path(self, name: str) -> Path:
        return self.packs_dir / name

    def remove_stale_temporaries(self, max_age_s: float = STALE_TEMPORARY_S) -> list[Path]:
        """Delete the ``.tmp-*`` leftovers of killed jobs (see :data:`STALE_TEMPORARY_S`)."""
        removed = remove_stale_temporaries(self.packs_dir, max_age_s)
        for path in removed:
            log.warning("feature cache: removed %s, left by a killed job", path)
        return removed

    def lookup(self, keys: set[str]) -> dict[str, CacheHit]:
        """The cached location of each of ``keys`` that some intact pack holds."""
        found: dict[str, CacheHit] = {}
        for name in self.pack_names():
            if len(found) == len(keys):
                break
            try:
                table = pq.read_table(self.pack_path(name) / INDEX, columns=STATUS_COLUMNS)
            except (OSError, pa.ArrowException) as err:  # same size, other bytes; or a passing read error
                self._skip(name, f"unreadable index: {err}")
                continue
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
        (folder / _WRITING).write_text(str(os.getpid()))
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
        """Append molecules as produced by :func:`mmsa.features.shard_featurizer.featurize_molecule`."""
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
        """Write the offsets, the index and the contents list; return the number of molecules.

        Refuses to finish a folder that someone deleted while it was written (Zarr would have
        recreated only the chunks written since, and the pack would read zeros for the others).
        """
        self.group.create_array("offsets", data=np.asarray(self.offsets, dtype=np.int64))
        columns = {name: [r[name] for r in self.records] for name in INDEX_SCHEMA.names}
        pq.write_table(pa.table(columns, schema=INDEX_SCHEMA), self.folder / INDEX)
        try:
            (self.folder / _WRITING).unlink()
        except FileNotFoundError:
            raise RuntimeError(f"pack folder {self.folder} was removed while it was written") from None
        sizes = {
            p.relative_to(self.folder).as_posix(): p.stat().st_size
            for p in sorted(self.folder.rglob("*"))
            if p.is_file()
        }
        (self.folder / CONTENTS).write_text(json.dumps(sizes, indent=0))
        return len(self.records)


def pack_problem(folder: Path) -> str | None:
    """Why ``folder`` is not an intact pack, or ``None`` when it is.

    Compares every file with the sizes the writer listed, then checks that the index and the
    arrays agree on the number of molecules. Costs one ``stat`` per file and a read of the
    index metadata and the offsets, not of the features themselves.
    """
    if not folder.is_dir():
        return "not a pack folder"
    try:
        sizes = json.loads((folder / CONTENTS).read_text())
    except FileNotFoundError:
        return f"no {CONTENTS}: not written completely by a PackWriter"
    except (OSError, ValueError) as err:
        return f"unreadable {CONTENTS}: {err}"
    for name, size in sizes.items():
        try:
            actual = (folder / name).stat().st_size
        except OSError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} has {actual} bytes instead of {size}"
    try:
        rows = pq.read_metadata(folder / INDEX).num_rows
        group = zarr.open_group(folder / STORE, mode="r")
        offsets = group["offsets"][:]
        shapes = (len(offsets), int(offsets[-1]), group["images"].shape[0])
        if shapes != (rows + 1, group["coords"].shape[0], rows):
            return f"index of {rows} molecules, arrays of shapes {shapes}"
    except Exception as err:  # a damaged Parquet footer or Zarr store raises many kinds of errors
        return f"unreadable: {type(err).__name__}: {err}"
    return None


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
        ("descriptors", pa.list_(pa.float64())),  # DESCRIPTOR_NAMES, raw; NaN = failed
    ]
)
