"""Helpers shared by test modules (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: CI clones the repository with shared/ beside it.
OPENML_FIXTURE = REPO.parent / "shared" / "openml-cache"


def tabscope_command() -> list[str]:
    """The installed `tabscope` console script of this interpreter's environment."""
    script = shutil.which("tabscope", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "tabscope"]


def write_suite(path: Path, text: str) -> Path:
    """Write a suite file and return its path."""
    path.write_text(text)
    return path
