"""Locate an upstream archive: in a local mirror, in the download cache, or on the network.

Downloads and MD5s go through ``torchvision.datasets.utils`` (imported lazily:
importing this package must not import torch).  What torchvision lacks stays
here: local mirrors read in place, a download cache that never keeps a file
with the wrong MD5, and DatasetErrors that list every failed attempt.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError, describe_problem
from .registry import ArchiveFile, DatasetSpec

# torchvision's download_url opens its connections without a timeout; a
# stalled server would hang the Snakemake job, so a socket default is set
# while it runs.
DOWNLOAD_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class LocatedArchive:
    archive: ArchiveFile
    path: Path
    # Where the bytes came from, for the manifest: a URL or "mirror:<path>".
    origin: str
    md5_found: str


def file_md5(path: Path) -> str:
    from torchvision.datasets.utils import calculate_md5
    return calculate_md5(path)


def _local_mirror_folder(mirror: str) -> Path | None:
    """Return the folder for a local mirror (path or file:// URL), None for http(s)."""
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(mirror)


def locate_archive(spec: DatasetSpec, archive: ArchiveFile, *, download_dir: Path,
                   mirror: str | None) -> LocatedArchive:
    """Find or fetch one archive; MD5 is computed but acceptance is decided by the caller."""
    if mirror is not None:
        folder = _local_mirror_folder(mirror)
        if folder is not None:
            return _from_local_mirror(folder, archive)
        base_urls: tuple[str, ...] = (mirror if mirror.endswith("/") else mirror + "/",)
    else:
        base_urls = spec.base_urls
    return _from_cache_or_network(spec, archive, download_dir, base_urls)


def _from_local_mirror(folder: Path, archive: ArchiveFile) -> LocatedArchive:
    # Read in place: local mirrors (e.g. Debian's /usr/share/datasets/...) are
    # already on disk, so copying them into download_dir would only cost time.
    path = folder / archive.filename
    if not path.is_file():
        if folder.is_dir():
            present = sorted(p.name for p in folder.iterdir())
            found = f"no such file; the folder holds {present[:20]}{' ...' if len(present) > 20 else ''}"
        else:
            found = "the mirror folder itself does not exist"
        raise DatasetError(describe_problem(
            path, f"the upstream file {archive.filename!r} in mirror folder {folder}", found,
            f"copy {archive.filename} into {folder}, or pass a different mirror (or none to download)",
        ))
    return LocatedArchive(archive, path, f"mirror:{path}", file_md5(path))


def _from_cache_or_network(spec: DatasetSpec, archive: ArchiveFile, download_dir: Path,
                           base_urls: tuple[str, ...]) -> LocatedArchive:
    cached = download_dir / archive.filename
    if cached.is_file():
        # A cached file got there through a verified download (or was put there
        # by hand); either way it is checked again by the caller, not refetched.
        return LocatedArchive(archive, cached, f"cache:{cached}", file_md5(cached))
    if not base_urls:
        raise DatasetError(describe_problem(
            cached, f"a download URL for {archive.filename}", "none configured",
            "pass mirror=<folder holding the file>",
        ))
    download_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for base_url in base_urls:
        url = base_url + archive.filename
        try:
            md5_found = _download(url, cached, archive.md5)
        # URLError/OSError: network and timeouts; HTTPException: connection
        # dropped mid-body; RuntimeError: torchvision's download_url (e.g. a
        # redirect loop); ValueError: MD5 mismatch of the downloaded bytes.
        except (urllib.error.URLError, OSError, http.client.HTTPException, RuntimeError,
                ValueError) as error:
            failures.append(f"{url}: {error}")
            continue
        return LocatedArchive(archive, cached, url, md5_found)
    raise DatasetError(describe_problem(
        cached, f"{archive.filename} downloaded from one of {list(base_urls)}",
        "every attempt failed: " + "; ".join(failures),
        f"check network access, or download {archive.filename} by hand into {download_dir} "
        "or a folder passed as mirror",
    ))


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download(url: str, destination: Path, expected_md5: str | None) -> str:
    """Download with torchvision into a private .part folder, check MD5, then rename.

    torchvision's ``download_url`` writes straight to its target and keeps a
    file whose MD5 it rejected, so it downloads into a fresh folder here and
    only a file with the expected MD5 is moved into the cache.
    """
    from torchvision.datasets.utils import calculate_md5, download_url

    staging = destination.with_name(f"{destination.name}.{uuid.uuid4().hex}.part")
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_SECONDS):
            download_url(url, staging, filename=destination.name)
        md5_found = calculate_md5(staging / destination.name)
        # A mismatching download is never cached: the next URL (or run) retries.
        if expected_md5 is not None and md5_found != expected_md5:
            raise ValueError(f"downloaded MD5 {md5_found} != expected {expected_md5}")
        os.replace(staging / destination.name, destination)
        return md5_found
    finally:
        shutil.rmtree(staging, ignore_errors=True)
