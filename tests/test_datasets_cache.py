"""Checksum manifests of cached files."""

from __future__ import annotations

import hashlib
import json

from tabscope.datasets.cache import (
    MANIFEST_NAME,
    file_md5,
    file_sha256,
    read_manifest,
    verify_manifest,
    write_manifest,
)


def test_digests_match_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    payload = bytes(range(256)) * 5000  # larger than one read chunk
    path.write_bytes(payload)
    assert file_sha256(path) == hashlib.sha256(payload).hexdigest()
    assert file_md5(path) == hashlib.md5(payload).hexdigest()


def test_manifest_round_trip_detects_truncation_change_and_removal(tmp_path):
    for name, text in (("a.arff", "@data\n1,2\n3,4\n"), ("b.xml", "<x/>"), ("c.xml", "<y/>")):
        (tmp_path / name).write_text(text)
    write_manifest(tmp_path, ["a.arff", "b.xml", "c.xml", "absent.txt"], source="test")
    files = read_manifest(tmp_path)
    assert set(files) == {"a.arff", "b.xml", "c.xml"}  # absent files are not recorded
    assert files["a.arff"]["sha256"] == file_sha256(tmp_path / "a.arff")
    assert verify_manifest(tmp_path).verified == ("a.arff", "b.xml", "c.xml")

    (tmp_path / "a.arff").write_text("@data\n1,2\n")  # truncated
    (tmp_path / "b.xml").write_text("<z/>")  # same size, other bytes
    (tmp_path / "c.xml").unlink()
    check = verify_manifest(tmp_path)
    assert check.has_manifest
    assert check.corrupted == ("a.arff", "b.xml")
    assert check.missing == ("c.xml",)
    assert check.verified == ()


def test_missing_or_malformed_manifest_means_no_manifest(tmp_path):
    assert not verify_manifest(tmp_path).has_manifest
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    assert read_manifest(tmp_path) is None and not verify_manifest(tmp_path).has_manifest
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"files": {"a": {"size": 3}}}))
    assert read_manifest(tmp_path) is None


def test_manifest_write_leaves_no_temporary_files(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    write_manifest(tmp_path, ["a.txt"])
    write_manifest(tmp_path, ["a.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", MANIFEST_NAME]
