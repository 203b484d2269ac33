"""The ``openml`` package's configuration and network behaviour, scoped to one call.

The ``openml`` package keeps its configuration (server, cache folder, retries) in module
globals. :func:`openml_session` sets them for the duration of one call and restores the
previous values afterwards, holding a lock so that two threads never interleave their
settings. Files live under ``<tabscope cache>/openml/<server path>/`` in openml's own
layout, e.g. ``org/openml/www/datasets/61/``.

A call whose files are all cached never touches the network. Before openml is asked to
download anything, :func:`unreachable_reason` opens a TCP connection to the server (or to
the proxy ``requests`` would use) with a :data:`CONNECT_TIMEOUT_S` timeout: openml's own
requests have no timeout, and its default of 5 retries sleeps 10 s between failures, so
an offline machine would otherwise wait for operating-system timeouts.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tabscope.config import resolve_cache_dir

from .base import CorruptCacheError, DatasetError, OpenMLUnavailableError

__all__ = [
    "CONNECTION_RETRIES",
    "CONNECT_TIMEOUT_S",
    "DEFAULT_SERVER",
    "OFFLINE_ENV",
    "SERVER_ENV",
    "TEST_SERVER",
    "OpenMLSession",
    "environment_variable",
    "openml_errors",
    "openml_session",
    "resolve_offline",
    "resolve_server",
    "short_error",
    "unavailable_error",
    "unreachable_reason",
]

DEFAULT_SERVER = "https://www.openml.org/api/v1/xml"
TEST_SERVER = "https://test.openml.org/api/v1/xml"
#: Environment variable naming the OpenML server when no ``openml_server`` is passed.
SERVER_ENV = "TABSCOPE_OPENML_SERVER"
#: Environment variable that, set to 1/true/yes, forbids any network access.
OFFLINE_ENV = "TABSCOPE_OFFLINE"
#: Seconds to wait for a TCP connection to the server before declaring it unreachable.
CONNECT_TIMEOUT_S = 5.0
#: Attempts per request once the server answered the connection probe.
CONNECTION_RETRIES = 2

_CONFIG_LOCK = threading.RLock()
_TRUE = {"1", "true", "yes", "on"}


def resolve_server(openml_server: str | None) -> str:
    """Return the OpenML API URL: the argument, else ``$TABSCOPE_OPENML_SERVER``, else the default.

    Parameters
    ----------
    openml_server : str or None
        An OpenML API URL such as ``https://www.openml.org/api/v1/xml``.

    Returns
    -------
    server : str
    """
    server = openml_server if openml_server is not None else os.environ.get(SERVER_ENV) or None
    if server is None:
        return DEFAULT_SERVER
    if not isinstance(server, str):
        raise TypeError(f"openml_server must be a URL string or None, got {type(server).__name__}")
    parsed = urlparse(server)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or "/api/" not in server:
        raise ValueError(
            f"openml_server must be an OpenML API URL such as {DEFAULT_SERVER!r}, got {server!r}"
        )
    return server.rstrip("/")


def resolve_offline(offline: bool | None) -> bool:
    """Return ``offline``; when None, whether ``$TABSCOPE_OFFLINE`` is set to a true value."""
    if offline is None:
        return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE
    if not isinstance(offline, bool):
        raise TypeError(f"offline must be True, False or None, got {offline!r}")
    return offline


@dataclass(frozen=True)
class OpenMLSession:
    """Where one call's OpenML files live, and whether it may use the network.

    Attributes
    ----------
    root : pathlib.Path
        openml's root cache directory, ``<tabscope cache>/openml``.
    server : str
        The OpenML API URL.
    offline : bool
        Whether network access is forbidden.
    """

    root: Path
    server: str
    offline: bool

    @property
    def server_dir(self) -> Path:
        """The server's cache folder (host name parts reversed, as openml lays it out)."""
        netloc = urlparse(self.server).netloc
        return self.root.joinpath(*netloc.split(".")[::-1])

    def dataset_dir(self, dataset_id: int) -> Path:
        """Cache folder of an OpenML dataset."""
        return self.server_dir / "datasets" / str(dataset_id)

    def task_dir(self, task_id: int) -> Path:
        """Cache folder of an OpenML task."""
        return self.server_dir / "tasks" / str(task_id)

    def suite_file(self, suite_id: int) -> Path:
        """tabscope's record of a suite's task list (openml does not cache suites)."""
        return self.server_dir / "tabscope-suites" / f"{suite_id}.json"


@contextmanager
def openml_session(
    cache_dir: str | os.PathLike | None = None,
    openml_server: str | None = None,
    *,
    offline: bool | None = None,
) -> Iterator[OpenMLSession]:
    """Point the ``openml`` package at tabscope's cache and server for the ``with`` block.

    Parameters
    ----------
    cache_dir : path-like, optional
        tabscope's cache directory (see :func:`tabscope.config.resolve_cache_dir`);
        openml's files go to ``<cache_dir>/openml``.
    openml_server : str, optional
        OpenML API URL; see :func:`resolve_server`.
    offline : bool, optional
        Forbid network access; see :func:`resolve_offline`.

    Yields
    ------
    session : OpenMLSession

    Notes
    -----
    ``openml.config.server``, the root cache directory and the retry policy and count
    are restored on exit, also when the block raises.
    """
    import openml

    session = OpenMLSession(
        root=resolve_cache_dir(cache_dir) / "openml",
        server=resolve_server(openml_server),
        offline=resolve_offline(offline),
    )
    with _CONFIG_LOCK:
        config = openml.config
        saved = config.get_config_as_dict()
        try:
            session.root.mkdir(parents=True, exist_ok=True)
            config.server = session.server
            config.set_root_cache_directory(session.root)
            config.set_retry_policy("human", CONNECTION_RETRIES)
            yield session
        finally:
            config.server = saved["server"]
            config.set_root_cache_directory(saved["cachedir"])
            config.set_retry_policy(saved["retry_policy"], int(saved["connection_n_retries"]))


@contextmanager
def environment_variable(name: str, value: str | None) -> Iterator[None]:
    """Set one environment variable for a block (leave it alone when ``value`` is None)."""
    if value is None:
        yield
        return
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def unreachable_reason(session: OpenMLSession) -> str | None:
    """Return why the server cannot be reached now, or None when a TCP connection succeeds."""
    if session.offline:
        return f"offline mode (offline=True or ${OFFLINE_ENV})"
    import requests.utils

    proxy = requests.utils.select_proxy(
        session.server, requests.utils.get_environ_proxies(session.server)
    )
    target = urlparse(proxy if proxy else session.server)
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        with socket.create_connection((target.hostname, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        via = " (the proxy)" if proxy else ""
        return f"cannot connect to {target.hostname}:{port}{via}: {exc}"


def unavailable_error(
    what: str, session: OpenMLSession, cache_path: Path, reason: str
) -> OpenMLUnavailableError:
    """The one error for "OpenML cannot be reached and this is not cached"."""
    return OpenMLUnavailableError(
        f"cannot load {what}: OpenML at {session.server} is unreachable ({reason}) and the "
        f"files are not in the cache at {cache_path}. Connect to the network once to fill the "
        "cache, or point cache_dir / $TABSCOPE_CACHE_DIR at a cache that holds them."
    )


def short_error(exc: BaseException) -> str:
    """``Type: first line of the message``, for embedding an error in another message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def _network_errors() -> tuple[type[BaseException], ...]:
    import requests
    import urllib3

    errors: list[type[BaseException]] = [
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        ConnectionError,
        TimeoutError,
        socket.gaierror,
    ]
    try:
        import minio.error

        errors.append(minio.error.MinioException)
    except ImportError:  # minio only matters for Parquet downloads
        pass
    return tuple(errors)


@contextmanager
def openml_errors(what: str, session: OpenMLSession, cache_path: Path) -> Iterator[None]:
    """Turn openml's network and server exceptions into tabscope's dataset errors.

    Parameters
    ----------
    what : str
        What is being loaded, e.g. ``"OpenML dataset 61"`` (used in messages).
    session : OpenMLSession
        The current session.
    cache_path : pathlib.Path
        Where the files would be cached (named in the messages).
    """
    import openml.exceptions as oml_errors

    try:
        yield
    except oml_errors.OpenMLServerNoResult as exc:
        raise DatasetError(f"OpenML ({session.server}) has no {what}: {exc.message}") from None
    except oml_errors.OpenMLPrivateDatasetError as exc:
        raise DatasetError(f"{what} is private on OpenML ({session.server}): {exc}") from None
    except oml_errors.OpenMLHashException as exc:
        raise CorruptCacheError(
            f"cannot load {what}: a file downloaded into {cache_path} does not match the "
            f"checksum OpenML publishes ({short_error(exc)})"
        ) from None
    except oml_errors.OpenMLServerException as exc:
        raise DatasetError(
            f"OpenML ({session.server}) refused the request for {what}: {exc.message}"
        ) from None
    except (oml_errors.OpenMLServerError, *_network_errors()) as exc:
        raise unavailable_error(what, session, cache_path, short_error(exc)) from None
