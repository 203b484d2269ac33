"""Shared fixtures: small suites, the OpenML cache fixture, a tabscope command runner."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from support import OPENML_FIXTURE, tabscope_command


def pytest_collection_modifyitems(items):
    """Tests that start the real `tabscope` command pay its start-up (torch, boosters) each
    time: they are `slow`, outside the `tox -e fast` subset."""
    for item in items:
        if "run_cli" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own dataset cache and stays offline, whatever the machine reaches."""
    monkeypatch.setenv("TABSCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("TABSCOPE_OFFLINE", "1")


@pytest.fixture
def openml_cache(tmp_path):
    """A writable copy of the shared OpenML cache files (test server: dataset 2, task 1882)."""
    if not OPENML_FIXTURE.is_dir():
        pytest.skip(f"OpenML cache fixture not found at {OPENML_FIXTURE}")
    target = tmp_path / "openml-cache"
    shutil.copytree(OPENML_FIXTURE, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


@pytest.fixture
def run_cli(tmp_path):
    """Run the real `tabscope` command; returns the CompletedProcess."""

    def run(*args, timeout=600, env=None, cwd=None):
        return subprocess.run(
            [*tabscope_command(), *map(str, args)], capture_output=True, text=True,
            timeout=timeout, cwd=cwd or tmp_path, env={**os.environ, **(env or {})},
        )

    return run


@pytest.fixture
def read_only_directory(tmp_path):
    """A directory nobody can write to: immutable for root, mode 500 for others."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available to make a directory read-only for root")
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
