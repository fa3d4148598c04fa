"""Locate an upstream archive: in a local mirror, in the download cache, or on the network."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError, describe_problem
from .registry import ArchiveFile, DatasetSpec

DOWNLOAD_TIMEOUT_SECONDS = 60
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class LocatedArchive:
    archive: ArchiveFile
    path: Path
    # Where the bytes came from, for the manifest: a URL or "mirror:<path>".
    origin: str
    md5_found: str


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        # dropped mid-body; ValueError: MD5 mismatch of the downloaded bytes.
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
            failures.append(f"{url}: {error}")
            continue
        return LocatedArchive(archive, cached, url, md5_found)
    raise DatasetError(describe_problem(
        cached, f"{archive.filename} downloaded from one of {list(base_urls)}",
        "every attempt failed: " + "; ".join(failures),
        f"check network access, or download {archive.filename} by hand into {download_dir} "
        "or a folder passed as mirror",
    ))


def _download(url: str, destination: Path, expected_md5: str | None) -> str:
    """Download to a .part file, check MD5, then rename; returns the MD5 found."""
    partial = destination.with_name(f"{destination.name}.{uuid.uuid4().hex}.part")
    request = urllib.request.Request(url, headers={"User-Agent": "unlearnbench-datasets"})
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, \
                open(partial, "wb") as sink:
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
                sink.write(chunk)
        md5_found = digest.hexdigest()
        # A mismatching download is never cached: the next URL (or run) retries.
        if expected_md5 is not None and md5_found != expected_md5:
            raise ValueError(f"downloaded MD5 {md5_found} != expected {expected_md5}")
        os.replace(partial, destination)
        return md5_found
    finally:
        partial.unlink(missing_ok=True)
