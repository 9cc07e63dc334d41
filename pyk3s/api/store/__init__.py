"""Datastore engines behind one :class:`~pyk3s.api.store.base.Store` contract (the kine idea).

``open_store(endpoint, data_dir)`` picks the engine from ``--datastore-endpoint``:

=================================  ==========================================================
``""``                             SQLite at ``<data_dir>/server/db/state.db`` (dirs 0700)
``sqlite://PATH``                  SQLite at PATH (``sqlite://`` alone: the default path)
``memory://``                      in-process, nothing persisted
``postgres://…``/``postgresql://…``  PostgreSQL (asyncpg DSN; database created when missing)
``http(s)://host:port[,…]``        etcd v3 through its JSON gateway, endpoints tried in order
=================================  ==========================================================

The returned store is not started: call ``await store.start()``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .base import Store

__all__ = ["DEFAULT_SQLITE_PATH", "ENGINES", "open_store"]

DEFAULT_SQLITE_PATH = Path("server/db/state.db")


def _fail(endpoint: str, why: str) -> ValueError:
    return ValueError(f"--datastore-endpoint {_redact(endpoint)!r}: {why}")


def _redact(endpoint: str) -> str:
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return endpoint
    if parts.password:
        return endpoint.replace(f":{parts.password}@", ":***@", 1)
    return endpoint


def _sqlite(endpoint: str, data_dir: Path, options: dict[str, Any]) -> Store:
    from .sqlite import SqliteStore

    rest = endpoint.split("://", 1)[1] if "://" in endpoint else ""
    path_text = rest.split("?", 1)[0]
    if path_text:
        path = Path(path_text)
    else:
        path = Path(data_dir) / DEFAULT_SQLITE_PATH
        for d in (Path(data_dir) / "server", path.parent):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)
    return SqliteStore(path, **_retain(options))


def _memory(endpoint: str, data_dir: Path, options: dict[str, Any]) -> Store:
    from .memory import MemoryStore

    return MemoryStore(**_retain(options))


def _postgres(endpoint: str, data_dir: Path, options: dict[str, Any]) -> Store:
    from .postgres import PostgresStore

    parts = urlsplit(endpoint)
    if not parts.hostname and "host=" not in parts.query:
        raise _fail(endpoint, "a PostgreSQL endpoint needs a host, e.g. postgres://user:pass@host:5432/db")
    context = None
    if options.get("ca_file") or options.get("cert_file"):
        context = ssl.create_default_context(cafile=options.get("ca_file"))
        if options.get("cert_file"):
            context.load_cert_chain(options["cert_file"], options.get("key_file"))
    return PostgresStore(endpoint, ssl_context=context, **_retain(options))


def _etcd(endpoint: str, data_dir: Path, options: dict[str, Any]) -> Store:
    from .etcd import EtcdStore

    urls = [u.strip() for u in endpoint.split(",") if u.strip()]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _fail(endpoint, f"etcd endpoint {url!r} must look like http(s)://host:port")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as e:
            raise _fail(endpoint, f"etcd endpoint {url!r}: {e}") from None
        if parts.path not in ("", "/"):
            raise _fail(endpoint, f"etcd endpoint {url!r} must not have a path")
    tls = {k: options[k] for k in ("ca_file", "cert_file", "key_file") if options.get(k)}
    return EtcdStore(urls, **tls, **_retain(options))


def _retain(options: dict[str, Any]) -> dict[str, Any]:
    value = options.get("compact_min_retain")
    return {} if value is None else {"compact_min_retain": value}


# scheme -> constructor(endpoint, data_dir, options)
ENGINES: dict[str, Callable[[str, Path, dict[str, Any]], Store]] = {
    "sqlite": _sqlite,
    "memory": _memory,
    "postgres": _postgres,
    "postgresql": _postgres,
    "http": _etcd,
    "https": _etcd,
}


def open_store(
    endpoint: str,
    data_dir: Path,
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    compact_min_retain: int | None = None,
) -> Store:
    """The store for ``--datastore-endpoint`` (not started). Raises ValueError naming the flag."""
    endpoint = (endpoint or "").strip()
    options = {
        "ca_file": ca_file,
        "cert_file": cert_file,
        "key_file": key_file,
        "compact_min_retain": compact_min_retain,
    }
    if not endpoint:
        return _sqlite("", data_dir, options)
    scheme, sep, _ = endpoint.partition("://")
    if not sep:
        raise _fail(endpoint, f"expected SCHEME://…, one of {', '.join(s + '://' for s in ENGINES)}")
    engine = ENGINES.get(scheme.lower())
    if engine is None:
        raise _fail(
            endpoint, f"unsupported scheme {scheme!r}; use one of {', '.join(s + '://' for s in ENGINES)}"
        )
    return engine(endpoint, data_dir, options)
