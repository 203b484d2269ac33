"""Checksum manifests for cached files: detect damaged cache entries before trusting them.

After a successful load tabscope writes ``tabscope-manifest.json`` into the cache folder of
the dataset (or task): the sha256 and size of each file it relied on. The next load checks
the files against it; a mismatch means the file was truncated or altered after it was
verified, so it must not be used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

__all__ = [
    "MANIFEST_NAME",
    "CacheCheck",
    "file_md5",
    "file_sha256",
    "read_manifest",
    "verify_manifest",
    "write_manifest",
]

MANIFEST_NAME = "tabscope-manifest.json"
_FORMAT_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CacheCheck:
    """Outcome of checking a folder against its manifest.

    Attributes
    ----------
    has_manifest : bool
        Whether a readable manifest was found.
    verified : tuple of str
        Files whose checksum matched.
    corrupted : tuple of str
        Files present on disk whose size or checksum differs from the manifest.
    missing : tuple of str
        Files listed in the manifest that are no longer on disk.
    """

    has_manifest: bool
    verified: tuple[str, ...] = ()
    corrupted: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def file_sha256(path: str | os.PathLike) -> str:
    """Return the hex sha256 digest of a file's bytes."""
    return _digest(path, hashlib.sha256())


def file_md5(path: str | os.PathLike) -> str:
    """Return the hex md5 digest of a file's bytes (OpenML publishes md5 checksums)."""
    return _digest(path, hashlib.md5(usedforsecurity=False))


def _digest(path: str | os.PathLike, hasher) -> str:
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def read_manifest(directory: str | os.PathLike) -> dict[str, dict] | None:
    """Return the manifest's ``{file name: {"sha256", "size"}}``; None if absent or unreadable."""
    path = Path(directory) / MANIFEST_NAME
    try:
        content = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None
    files = content.get("files") if isinstance(content, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("sha256"), str) for entry in files.values()
    ):
        return None
    return files


def verify_manifest(directory: str | os.PathLike) -> CacheCheck:
    """Check the files of ``directory`` against its manifest.

    Parameters
    ----------
    directory : path-like
        A cache folder that may hold a manifest.

    Returns
    -------
    check : CacheCheck
        ``has_manifest`` is False (and nothing is checked) when there is no manifest.
    """
    directory = Path(directory)
    files = read_manifest(directory)
    if files is None:
        return CacheCheck(has_manifest=False)
    verified, corrupted, missing = [], [], []
    for name, entry in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            missing.append(name)
        elif path.stat().st_size != entry.get("size", path.stat().st_size) or (
            file_sha256(path) != entry["sha256"]
        ):
            corrupted.append(name)
        else:
            verified.append(name)
    return CacheCheck(True, tuple(verified), tuple(corrupted), tuple(missing))


def write_manifest(
    directory: str | os.PathLike, names: Iterable[str], *, source: str | None = None
) -> Path:
    """Record the sha256 and size of ``names`` (files in ``directory``) in its manifest.

    The manifest is written to a temporary file and moved into place, so a reader never
    sees a half-written manifest. Names of files that do not exist are skipped.

    Parameters
    ----------
    directory : path-like
        The cache folder.
    names : iterable of str
        File names relative to ``directory``.
    source : str, optional
        What the files belong to (kept for people reading the manifest).

    Returns
    -------
    path : pathlib.Path
        The manifest's path.
    """
    directory = Path(directory)
    files = {}
    for name in sorted(set(names)):
        path = directory / name
        if path.is_file():
            files[name] = {"sha256": file_sha256(path), "size": path.stat().st_size}
    content = {
        "format": _FORMAT_VERSION,
        "source": source,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }
    target = directory / MANIFEST_NAME
    handle, temporary = tempfile.mkstemp(prefix=".manifest-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf8") as stream:
            json.dump(content, stream, indent=2, sort_keys=True)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
