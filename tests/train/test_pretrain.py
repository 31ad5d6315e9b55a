"""The pretraining loop on real featurized molecules, with a tiny model."""

import json
import shutil
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from helpers import TINY_MODEL, run_chain, toy_config
from helpers import TOY_SMILES as SMILES
from mmsa.features.cache import FeatureCache
from mmsa.stages.inputs import feature_settings
from mmsa.train import stream as stream_module
from mmsa.train.pretrain_loop import train_mmsa
from mmsa.train.pretrain_settings import PretrainSettings
from mmsa.train.stream import ShardBatches, shard_molecules


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    (tmp / "toy.csv").write_text("smiles,y\n" + "".join(f"{s},0\n" for s in SMILES))
    config = toy_config(tmp, ["toy"], {"y": "y"}, shard_size=12)
    run_chain(config, "toy", tmp / "out")
    manifests = sorted(str(p) for p in (tmp / "out" / "toy").glob("man-*.parquet"))
    return manifests, FeatureCache(config["cache_dir"], feature_settings(config)), tmp


class WorkerInfo(NamedTuple):
    """The fields of ``torch.utils.data.get_worker_info()`` that the stream reads."""

    num_workers: int
    id: int


def settings(**kw):
    return PretrainSettings.from_dict(
        {"epochs": 3, "batch_size": 8, "lr": 3e-3, "device": "cpu", "model": TINY_MODEL, **kw}
    )


def test_stream_visits_every_molecule_once_per_epoch_in_a_seeded_order(corpus):
    """Each molecule once, in whole batches: the last batch is filled up with the epoch's first."""
    manifests, cache, _ = corpus
    stream = ShardBatches(manifests, cache, batch_size=5, seed=1)
    n, pad = len(SMILES), -len(SMILES) % 5
    assert pad  # the corpus does not fill whole batches
    epochs = []
    for epoch in (0, 1, 0):
        stream.set_epoch(epoch)
        batches = [list(b.key) for b in stream]
        assert all(len(keys) == 5 for keys in batches)
        epochs.append([k for keys in batches for k in keys])
    for keys in epochs:
        assert len(set(keys[:n])) == n and keys[n:] == keys[:pad]
    assert sorted(epochs[0][:n]) == sorted(epochs[1][:n])
    assert epochs[0] == epochs[2] and epochs[0] != epochs[1]
    assert stream.batches_per_epoch() == sum(1 for _ in stream)


def test_every_molecule_of_every_shard_is_trained_on_every_epoch(corpus, monkeypatch):
    """Dropping each shard's last partial batch left molecules out of every epoch (here 5 + 3 of
    shards of 13, 11 and 8 in batches of 8; 16 of the tiny run's 48); on one process, two ranks
    or two loader workers, none is left out now."""
    manifests, cache, tmp = corpus
    table = pq.read_table(manifests)
    (tmp / "parts").mkdir()
    manifests = [str(tmp / "parts" / f"man-{i}.parquet") for i in range(3)]
    for path, (start, length) in zip(manifests, [(0, 13), (13, 11), (24, 8)], strict=True):
        pq.write_table(table.slice(start, length), path)
    assert [shard_molecules(m) for m in manifests] == [13, 11, 8] and table.num_rows == len(SMILES)
    one = ShardBatches(manifests, cache, batch_size=8, seed=0)
    seen = [k for b in one for k in b.key]
    assert len(set(seen)) == len(SMILES) and len(seen) == 8 * one.batches_per_epoch()
    ranks = [ShardBatches(manifests, cache, batch_size=8, seed=0, rank=r, world_size=2) for r in (0, 1)]
    assert {k for stream in ranks for b in stream for k in b.key} == set(seen)
    workers = []
    for worker in (0, 1):  # what each of two DataLoader workers streams
        monkeypatch.setattr(stream_module, "get_worker_info", lambda w=worker: WorkerInfo(2, w))
        workers.append([list(b.key) for b in one])
    monkeypatch.undo()
    assert {k for part in workers for keys in part for k in keys} == set(seen)
    assert one.batches_per_epoch(workers=2) == sum(map(len, workers))


def test_ranks_stream_the_slices_of_the_batches_one_process_streams(corpus):
    manifests, cache, _ = corpus
    whole = ShardBatches(manifests, cache, batch_size=8, seed=3)
    ranks = [ShardBatches(manifests, cache, batch_size=8, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for stream in (whole, *ranks):
        stream.set_epoch(1)
    slices = [[list(b.key) for b in stream] for stream in ranks]
    assert all(len(keys) == 4 for part in slices for keys in part)
    assert [a + b for a, b in zip(*slices, strict=True)] == [list(b.key) for b in whole]
    assert ranks[0].batches_per_epoch() == whole.batches_per_epoch() == len(slices[0])


def test_the_epoch_order_does_not_depend_on_how_the_cache_was_filled(tmp_path):
    """A cache that already held some molecules (another dataset cached them, in other packs)
    gives the same batches as a fresh one: the order follows the shard, not the cache's layout
    (it did not, and a SLURM run's pretraining differed from a local run's)."""
    (tmp_path / "toy.csv").write_text("smiles,y\n" + "".join(f"{s},0\n" for s in SMILES))
    (tmp_path / "some.csv").write_text("smiles,y\n" + "".join(f"{s},0\n" for s in SMILES[1::3]))
    orders = []
    for name, first in (("fresh", []), ("shared", ["some"])):
        config = toy_config(tmp_path, ["toy", "some"], {"y": "y"}, shard_size=12)
        config["cache_dir"] = str(tmp_path / name / "cache")
        for dataset in [*first, "toy"]:
            run_chain(config, dataset, tmp_path / name)
        manifests = sorted(str(p) for p in (tmp_path / name / "toy").glob("man-*.parquet"))
        packs = pq.read_table(manifests, columns=["pack"])["pack"].unique()
        stream = ShardBatches(
            manifests, FeatureCache(config["cache_dir"], feature_settings(config)), 4, seed=2
        )
        orders.append((len(packs), [list(b.key) for b in stream]))
    (fresh_packs, fresh), (shared_packs, shared) = orders
    assert shared_packs > fresh_packs  # the layouts differ
    assert shared == fresh and len(fresh) > 1


def test_epoch_length_counts_molecules_not_rows_when_manifests_repeat_molecules(corpus):
    """With ``data.dedupe: false`` a manifest lists a molecule once per dataset row; the stream
    visits each molecule once, and the schedule must count the batches it really yields."""
    manifests, cache, tmp = corpus
    (tmp / "dup").mkdir()
    repeated = []
    for i, path in enumerate(manifests):
        table = pq.read_table(path)
        repeated.append(str(tmp / "dup" / f"man-{i}.parquet"))
        pq.write_table(pa.concat_tables([table, table.slice(0, 5), table.slice(2, 3)]), repeated[-1])
    stream = ShardBatches(repeated, cache, batch_size=5, seed=0)
    yielded = [k for b in stream for k in b.key]
    assert stream.batches_per_epoch() * 5 == len(yielded) == 5 * -(-len(SMILES) // 5)
    assert len(set(yielded)) == len(SMILES)


def test_pretraining_writes_its_outputs(corpus):
    manifests, cache, tmp = corpus
    result = train_mmsa(manifests, cache, settings(), 0, tmp / "run", tmp / "run" / "ckpt.pt")
    assert result.steps == 3 * ShardBatches(manifests, cache, 8, 0).batches_per_epoch()
    weights = torch.load(tmp / "run" / "model.pt", weights_only=True)
    assert "graph_encoder" in "".join(weights["state_dict"]) and weights["model_config"]["gnn_dim"] == 16
    assert (tmp / "run" / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    throughput = json.loads((tmp / "run" / "throughput.json").read_text())
    assert throughput["molecules"] == result.molecules > 0 and 0 <= throughput["data_fraction"] < 1
    header = (tmp / "run" / "losses.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "contrastive", "reconstruction", "hypergraph", "memory"} <= set(header)


def test_resumed_run_equals_an_uninterrupted_one(corpus):
    manifests, cache, tmp = corpus
    full = train_mmsa(manifests, cache, settings(), 0, tmp / "full", tmp / "full" / "ckpt.pt")
    train_mmsa(manifests, cache, settings(), 0, tmp / "cut", tmp / "cut" / "ckpt.pt", stop_after_epoch=1)
    assert not (tmp / "cut" / "model.pt").exists()
    resumed = train_mmsa(manifests, cache, settings(), 0, tmp / "cut", tmp / "cut" / "ckpt.pt")
    assert resumed.final_loss == full.final_loss
    a = torch.load(tmp / "full" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp / "cut" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_other_settings_is_not_resumed(corpus):
    manifests, cache, tmp = corpus
    train_mmsa(manifests, cache, settings(), 0, tmp / "x", tmp / "x" / "ckpt.pt", stop_after_epoch=1)
    other = train_mmsa(manifests, cache, settings(lr=1e-3), 0, tmp / "x", tmp / "x" / "ckpt.pt")
    fresh = train_mmsa(manifests, cache, settings(lr=1e-3), 0, tmp / "y", tmp / "y" / "ckpt.pt")
    assert other.final_loss == fresh.final_loss


def test_checkpoint_of_another_thread_count_is_not_resumed(corpus):
    manifests, cache, tmp = corpus
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        train_mmsa(manifests, cache, settings(), 0, tmp / "t", tmp / "t" / "ckpt.pt", stop_after_epoch=1)
        torch.set_num_threads(2)
        other = train_mmsa(manifests, cache, settings(), 0, tmp / "t", tmp / "t" / "ckpt.pt")
        fresh = train_mmsa(manifests, cache, settings(), 0, tmp / "u", tmp / "u" / "ckpt.pt")
    finally:
        torch.set_num_threads(threads)
    assert other.final_loss == fresh.final_loss and other.steps == fresh.steps
    assert other.provenance["torch_threads"] == 2


def test_checkpoint_of_other_molecules_at_the_same_paths_is_not_resumed(corpus):
    """A smaller dataset written to the same manifest paths (as a changed row limit does) must
    be trained on, not answered with the finished checkpoint of the old molecules."""
    manifests, cache, tmp = corpus
    moved = []
    for i, path in enumerate(manifests):
        moved.append(str(tmp / "same" / f"man-{i}.parquet"))
        (tmp / "same").mkdir(exist_ok=True)
        shutil.copy(path, moved[-1])
    train_mmsa(moved, cache, settings(), 0, tmp / "same", tmp / "same" / "ckpt.pt")
    table = pq.read_table(moved[0])
    pq.write_table(table.slice(0, table.num_rows - 4), moved[0])
    rerun = train_mmsa(moved, cache, settings(), 0, tmp / "same", tmp / "same" / "ckpt.pt")
    fresh = train_mmsa(moved, cache, settings(), 0, tmp / "new", tmp / "new" / "ckpt.pt")
    assert rerun.molecules == fresh.molecules > 0
    assert rerun.final_loss == fresh.final_loss and rerun.steps == fresh.steps


def test_truncated_checkpoint_is_not_resumed(corpus):
    manifests, cache, tmp = corpus
    train_mmsa(manifests, cache, settings(), 0, tmp / "z", tmp / "z" / "ckpt.pt", stop_after_epoch=1)
    data = (tmp / "z" / "ckpt.pt").read_bytes()
    (tmp / "z" / "ckpt.pt").write_bytes(data[: len(data) // 2])
    restarted = train_mmsa(manifests, cache, settings(), 0, tmp / "z", tmp / "z" / "ckpt.pt")
    fresh = train_mmsa(manifests, cache, settings(), 0, tmp / "w", tmp / "w" / "ckpt.pt")
    assert restarted.final_loss == fresh.final_loss and restarted.steps == fresh.steps


def test_the_descriptor_term_is_fitted_on_the_corpus_and_saved_with_the_model(corpus):
    """Its standardization is the corpus's median and IQR of each RDKit descriptor, computed
    here from RDKit on the corpus's molecules; the pretrained file carries it."""
    import numpy as np
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    manifests, cache, tmp = corpus
    run = settings(epochs=1, model={**TINY_MODEL, "descriptors": True})
    train_mmsa(manifests, cache, run, 0, tmp / "desc", tmp / "desc" / "ckpt.pt")
    weights = torch.load(tmp / "desc" / "model.pt", weights_only=True)
    keys = sorted({k for m in manifests for k in pq.read_table(m, columns=["key"])["key"].to_pylist()})
    raw = np.array(
        [
            list(Descriptors.CalcMolDescriptors(Chem.MolFromSmiles(k), missingVal=np.nan).values())
            for k in keys
        ],
        dtype=np.float64,
    )
    raw[~np.isfinite(raw)] = np.nan
    centre = weights["state_dict"]["descriptor_term.centre"].numpy()
    np.testing.assert_allclose(centre, np.nan_to_num(np.nanmedian(raw, axis=0), nan=0.0), rtol=1e-12)
    header = (tmp / "desc" / "losses.csv").read_text().splitlines()[0].split(",")
    assert "descriptors" in header and weights["model_config"]["descriptors"] is True
