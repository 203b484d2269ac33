"""Integrity of the OpenML files tabscope relies on: check, repair, record.

Before a cached dataset or task is used, its files are checked against the
``tabscope-manifest.json`` written after the last good load; without a manifest (first
load) the ARFF file is checked against the md5 checksum OpenML publishes in the dataset
description and the XML files are parsed. Damaged files are reported with a logging
warning and removed together with the pickles openml derived from them, so that openml
fetches them again; when that is impossible the load ends in a
:class:`~tabscope.datasets.base.CorruptCacheError` naming the files.
"""

from __future__ import annotations

import logging
import os
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import CorruptCacheError, OpenMLUnavailableError
from .cache import file_md5, read_manifest, verify_manifest, write_manifest
from .openml_session import OpenMLSession, unavailable_error, unreachable_reason

__all__ = [
    "DATASET_METADATA_FILES",
    "DERIVED_SUFFIXES",
    "TASK_FILES",
    "CacheRepair",
    "DatasetCacheState",
    "Unreadable",
    "data_file_names",
    "inspect_dataset_cache",
    "inspect_task_cache",
    "read_description",
    "record_manifest",
]

logger = logging.getLogger(__name__)

#: Suffixes of the files openml derives from downloaded ones (rebuilt locally when removed).
DERIVED_SUFFIXES = (".pkl", ".pkl.py3", ".feather")
DATASET_METADATA_FILES = ("description.xml", "features.xml")
TASK_FILES = ("task.xml", "datasplits.arff")
_SKIP_PARQUET_ENV = "OPENML_SKIP_PARQUET"


def data_file_names(dataset_id: int) -> tuple[str, ...]:
    """Names openml gives a dataset's data file (ARFF, or Parquet in two spellings)."""
    return ("dataset.arff", f"dataset_{dataset_id}.pq", "dataset.pq")


class Unreadable(Exception):
    """Internal signal: openml could not parse some cached files."""

    def __init__(self, files: tuple[str, ...], error: BaseException) -> None:
        super().__init__(files, error)
        self.files = files
        self.error = error


def _xml_problem(path: Path) -> str | None:
    """Return why an XML file cannot be parsed, or None if it parses."""
    import xmltodict

    try:
        xmltodict.parse(path.read_bytes())
    except (xml.parsers.expat.ExpatError, ValueError) as exc:
        return f"unreadable XML: {type(exc).__name__}: {exc}"
    return None


def read_description(directory: Path) -> dict[str, Any] | None:
    """Parse a cached ``description.xml``; None when absent, ValueError when unreadable."""
    import xmltodict

    path = directory / "description.xml"
    if not path.is_file():
        return None
    try:
        return xmltodict.parse(path.read_bytes())["oml:data_set_description"]
    except (xml.parsers.expat.ExpatError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable XML: {type(exc).__name__}: {exc}") from None


def _manifest_damage(directory: Path, sources: tuple[str, ...]) -> dict[str, str]:
    """Damaged source files per the manifest; changed derived files are simply removed."""
    damage = {}
    for name in verify_manifest(directory).corrupted:
        if name in sources:
            damage[name] = "sha256 differs from tabscope-manifest.json"
        else:
            # A pickle openml derived from a verified file: rebuilt locally, nothing to fetch.
            logger.warning(
                "cached file %s changed since it was verified; removing it", directory / name
            )
            (directory / name).unlink(missing_ok=True)
    return damage


@dataclass(frozen=True)
class DatasetCacheState:
    """What a dataset's cache folder holds.

    Attributes
    ----------
    damage : dict
        Damaged file name -> reason.
    complete : bool
        Whether openml can load the dataset without the network.
    arff_fallback : bool
        OpenML advertises a Parquet file that is not cached but the ARFF is: openml can
        load offline if told to skip Parquet.
    """

    damage: dict[str, str]
    complete: bool
    arff_fallback: bool


def inspect_dataset_cache(directory: Path, dataset_id: int) -> DatasetCacheState:
    """Check the cached files of an OpenML dataset (see the module docstring)."""
    data_files = data_file_names(dataset_id)
    damage = _manifest_damage(directory, (*DATASET_METADATA_FILES, *data_files))
    manifest = read_manifest(directory) or {}
    description = None
    if "description.xml" not in damage:
        try:
            description = read_description(directory)
        except ValueError as exc:
            damage["description.xml"] = str(exc)
    features = directory / "features.xml"
    if "features.xml" not in manifest and "features.xml" not in damage and features.is_file():
        problem = _xml_problem(features)
        if problem:
            damage["features.xml"] = problem
    arff = directory / "dataset.arff"
    published_md5 = str((description or {}).get("oml:md5_checksum") or "").strip().lower()
    unverified = "dataset.arff" not in manifest and "dataset.arff" not in damage
    if published_md5 and unverified and arff.is_file() and file_md5(arff) != published_md5:
        damage["dataset.arff"] = f"md5 differs from the checksum {published_md5} OpenML publishes"

    present = {
        name
        for name in (*DATASET_METADATA_FILES, *data_files)
        if name not in damage and (directory / name).is_file()
    }
    wants_parquet = (
        description is not None
        and "oml:parquet_url" in description
        and os.environ.get(_SKIP_PARQUET_ENV, "false").casefold() != "true"
    )
    has_parquet = bool(present & set(data_files[1:]))
    has_metadata = set(DATASET_METADATA_FILES) <= present
    complete = has_metadata and (has_parquet if wants_parquet else "dataset.arff" in present)
    arff_fallback = (
        not complete and has_metadata and wants_parquet and "dataset.arff" in present
    )
    return DatasetCacheState(damage, complete, arff_fallback)


def inspect_task_cache(directory: Path) -> tuple[dict[str, str], int | None]:
    """Check a task's cached files; return (damage, dataset id from task.xml or None)."""
    import xmltodict

    damage = _manifest_damage(directory, TASK_FILES)
    task_xml = directory / "task.xml"
    if "task.xml" in damage or not task_xml.is_file():
        return damage, None
    try:
        task = xmltodict.parse(task_xml.read_bytes())["oml:task"]
        inputs = task["oml:input"]
        for entry in inputs if isinstance(inputs, list) else [inputs]:
            if entry.get("@name") == "source_data":
                return damage, int(entry["oml:data_set"]["oml:data_set_id"])
    except (xml.parsers.expat.ExpatError, KeyError, TypeError, ValueError) as exc:
        damage["task.xml"] = f"unreadable XML: {type(exc).__name__}: {exc}"
        return damage, None
    damage["task.xml"] = "names no source dataset"
    return damage, None


def record_manifest(directory: Path, sources: tuple[str, ...], what: str) -> None:
    """Write the manifest of ``sources`` and of the files openml derived from them."""
    if not directory.is_dir():
        return
    derived = [path.name for path in directory.iterdir() if path.name.endswith(DERIVED_SUFFIXES)]
    try:
        write_manifest(directory, [*sources, *derived], source=what)
    except OSError as exc:  # a read-only cache still loads; it just cannot be recorded
        logger.warning("%s: cannot write the cache manifest in %s: %s", what, directory, exc)


@dataclass
class CacheRepair:
    """Track the damaged files of one cache folder while a load is retried.

    Attributes
    ----------
    what : str
        What is being loaded (for messages).
    directory : pathlib.Path
        The cache folder.
    damage : dict
        Every file removed so far -> why.
    """

    what: str
    directory: Path
    damage: dict[str, str] = field(default_factory=dict)

    def describe(self, damage: dict[str, str] | None = None) -> str:
        """``path (reason); ...`` for messages."""
        damage = self.damage if damage is None else damage
        return "; ".join(f"{self.directory / name} ({why})" for name, why in damage.items())

    def discard(self, damage: dict[str, str]) -> None:
        """Log and delete damaged files, and every file openml derived in the folder."""
        for name, why in damage.items():
            logger.warning(
                "%s: cached file %s is damaged (%s); removing it",
                self.what,
                self.directory / name,
                why,
            )
            (self.directory / name).unlink(missing_ok=True)
        if damage and self.directory.is_dir():
            for path in self.directory.iterdir():
                if path.name.endswith(DERIVED_SUFFIXES):
                    path.unlink(missing_ok=True)
        self.damage.update(damage)

    def require(self, session: OpenMLSession, complete: bool) -> None:
        """Return if the cache suffices or the server answers; raise the right error otherwise."""
        if complete:
            return
        reason = unreachable_reason(session)
        if reason is None:
            return
        if self.damage:
            raise CorruptCacheError(
                f"cannot load {self.what}: damaged cache file(s) {self.describe()} were removed, "
                f"but they cannot be fetched again because OpenML at {session.server} is "
                f"unreachable ({reason})"
            )
        raise unavailable_error(self.what, session, self.directory, reason)

    def unreadable(self, signal: Unreadable, *, last_attempt: bool) -> None:
        """Handle files openml could not parse: discard them for a retry, or raise."""
        damage = {
            name: f"unreadable: {type(signal.error).__name__}: {str(signal.error)[:300]}"
            for name in signal.files
            if (self.directory / name).is_file()
        }
        if last_attempt or not damage:
            raise CorruptCacheError(
                f"cannot load {self.what}: cached file(s) {self.describe(damage or self.damage)} "
                "cannot be read, even after fetching them again"
            ) from None
        self.discard(damage)

    def refetch_failed(self, error: OpenMLUnavailableError) -> Exception:
        """The error to raise when the network failed during a load."""
        if not self.damage:
            return error
        return CorruptCacheError(
            f"cannot load {self.what}: damaged cache file(s) {self.describe()} were removed, "
            f"but fetching them again failed: {error}"
        )
