"""Where tabscope keeps its files, and how a user moves them."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "default_cache_dir", "resolve_cache_dir"]

#: Environment variable that overrides the cache directory.
CACHE_DIR_ENV = "TABSCOPE_CACHE_DIR"


def default_cache_dir() -> Path:
    """Return the cache directory: ``$TABSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/tabscope``.

    Falls back to ``~/.cache/tabscope`` when ``XDG_CACHE_HOME`` is unset.
    """
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "tabscope"


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return ``cache_dir`` as a Path, or the default when it is None."""
    if cache_dir is None:
        return default_cache_dir()
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(
            f"cache_dir must be a path or None, got {type(cache_dir).__name__}"
        )
    return Path(cache_dir).expanduser()
