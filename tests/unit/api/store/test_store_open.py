"""open_store: endpoint -> engine table, and clear errors for malformed endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyk3s.api.store import ENGINES, open_store
from pyk3s.api.store.base import Store
from pyk3s.api.store.etcd import EtcdStore
from pyk3s.api.store.memory import MemoryStore
from pyk3s.api.store.postgres import PostgresDialect
from pyk3s.api.store.sqlite import SqliteDialect
from pyk3s.api.store.sqlstore import SqlStore


@pytest.mark.parametrize(
    ("endpoint", "kind", "detail"),
    [
        ("", SqliteDialect, "server/db/state.db"),
        ("sqlite://", SqliteDialect, "server/db/state.db"),
        ("sqlite:///var/tmp/pk-x/state.db?_journal=WAL", SqliteDialect, "/var/tmp/pk-x/state.db"),
        ("memory://", MemoryStore, None),
        ("postgres://u:p@db.example:5432/k3s?sslmode=disable", PostgresDialect, "k3s"),
        ("postgresql://u@db.example/", PostgresDialect, "kubernetes"),
        ("http://127.0.0.1:2379", EtcdStore, ["http://127.0.0.1:2379"]),
        ("https://a:2379, https://b:2379/", EtcdStore, ["https://a:2379", "https://b:2379"]),
    ],
    ids=["empty", "sqlite-default", "sqlite-path", "memory", "postgres", "postgresql-default-db", "etcd",
         "etcd-many"],
)
def test_endpoint_selects_engine(tmp_path: Path, endpoint: str, kind: type, detail: object) -> None:
    store = open_store(endpoint, tmp_path)
    assert isinstance(store, Store)
    if kind in (SqliteDialect, PostgresDialect):
        assert isinstance(store, SqlStore) and isinstance(store.dialect, kind)
        if kind is SqliteDialect:
            assert str(store.dialect.path).endswith(str(detail))
        else:
            assert store.dialect.database == detail
    else:
        assert isinstance(store, kind)
        if kind is EtcdStore:
            assert store.endpoints == detail


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("mysql://u:secret@h/db", "unsupported scheme 'mysql'"),
        ("localhost:2379", "expected SCHEME://"),
        ("http://a:2379,b:2379", "must look like http(s)://host:port"),
        ("http://a:notaport", "port"),
        ("http://a:2379/v3", "must not have a path"),
        ("postgres:///nohost", "needs a host"),
    ],
)
def test_malformed_endpoint_names_the_flag(tmp_path: Path, endpoint: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        open_store(endpoint, tmp_path)
    text = str(info.value)
    assert text.startswith("--datastore-endpoint") and message in text
    assert "secret" not in text


def test_engine_table_lists_every_scheme() -> None:
    assert set(ENGINES) == {"sqlite", "memory", "postgres", "postgresql", "http", "https"}


def test_compact_min_retain_option(tmp_path: Path) -> None:
    store = open_store("memory://", tmp_path, compact_min_retain=5)
    assert isinstance(store, MemoryStore) and store.compact_min_retain == 5
    assert open_store("sqlite://", tmp_path).compact_min_retain == 1000
