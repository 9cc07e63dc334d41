"""PostgreSQL engine (``postgres://``, ``postgresql://``): the kine log shared by several API servers.

Ordering: a BIGSERIAL id is drawn when a row is inserted, not when it commits, so two writers could
commit ids out of order and a poller would see a hole. Every id-drawing write here first takes one
transaction-scoped advisory lock, inside the same statement, so ids commit strictly in order
(``ordered_commits``); the conflict check is still the unique (name, prev_revision) index. Each write
also sends ``NOTIFY kine '<id>'`` (delivered at commit), which wakes the other servers' pollers
at once instead of at their next one-second poll.

Reads that need a consistent revision run in one REPEATABLE READ read-only transaction. The database
named in the endpoint is created when missing (default name ``kubernetes``); ``name`` uses the "C"
collation so key ranges compare bytewise, like SQLite and etcd.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .base import StoreError, Unavailable
from .sqlstore import (
    COLUMNS,
    COMPACT_KEY,
    GENERIC_STATEMENTS,
    Row,
    SqlStatements,
    SqlStore,
    Statement,
    UniqueViolation,
)

__all__ = ["PostgresDialect", "PostgresStore", "SCHEMA"]

log = logging.getLogger("pyk3s.api.store")

_LOCK = 0x6B696E65  # "kine": the advisory lock every id-drawing write takes
_CHANNEL = "kine"

SCHEMA = (
    'CREATE TABLE IF NOT EXISTS kine (id BIGSERIAL PRIMARY KEY, name TEXT COLLATE "C" NOT NULL,'
    " created INTEGER, deleted INTEGER, create_revision BIGINT, prev_revision BIGINT, lease INTEGER,"
    " value BYTEA, old_value BYTEA)",
    "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
    "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)"
    f" SELECT '{COMPACT_KEY}', 1, 1, 0, 0, 0, NULL, NULL"
    f" WHERE NOT EXISTS (SELECT 1 FROM kine WHERE name = '{COMPACT_KEY}')",
)

_INSERT = "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)"
_LATEST = "(SELECT MAX(id) FROM kine WHERE name = $1::text)"


def _locked(insert: str) -> str:
    return (
        f"WITH lk AS MATERIALIZED (SELECT pg_advisory_xact_lock({_LOCK})), ins AS ({insert} RETURNING {COLUMNS})"
        f" SELECT {COLUMNS}, pg_notify('{_CHANNEL}', id::text) FROM ins"
    )


def _dollars(sql: str) -> str:
    return re.sub(r"\?(\d+)", r"$\1", sql)


STATEMENTS = replace(
    SqlStatements(**{f: _dollars(getattr(GENERIC_STATEMENTS, f)) for f in GENERIC_STATEMENTS.__slots__}),
    create=_locked(
        f"{_INSERT} SELECT $1::text, 1, 0, 0, COALESCE({_LATEST}, 0), $2::integer, $3::bytea, NULL FROM lk"
        f" WHERE NOT EXISTS (SELECT 1 FROM kine WHERE id = {_LATEST} AND deleted = 0)"
    ),
    update=_locked(
        f"{_INSERT} SELECT name, 0, 0, CASE WHEN created <> 0 THEN id ELSE create_revision END, id, lease,"
        f" $2::bytea, value FROM lk, kine WHERE id = {_LATEST} AND deleted = 0"
        " AND ($3::bigint = 0 OR id = $3::bigint)"
    ),
    delete=_locked(
        f"{_INSERT} SELECT name, 0, 1, CASE WHEN created <> 0 THEN id ELSE create_revision END, id, lease,"
        f" value, value FROM lk, kine WHERE id = {_LATEST} AND deleted = 0"
        " AND ($2::bigint = 0 OR id = $2::bigint)"
    ),
)


def _database(dsn: str) -> tuple[str, str]:
    """(dsn with the database name filled in, the database name)."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/") or "kubernetes"
    return urlunsplit(parts._replace(path="/" + name)), name


def _translate(where: str, e: BaseException) -> BaseException:
    if isinstance(e, asyncpg.UniqueViolationError):
        return UniqueViolation(str(e))
    if isinstance(
        e, OSError | asyncio.TimeoutError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError
    ):
        return Unavailable(f"store postgres {where}: {e}")
    if isinstance(e, asyncpg.PostgresError):
        return StoreError(f"store postgres {where}: {e}")
    return e


class PostgresDialect:
    name = "postgres"
    statements = STATEMENTS
    no_limit: int | None = None
    ordered_commits = True

    def __init__(self, dsn: str, *, ssl_context: ssl.SSLContext | None = None, pool_size: int = 10) -> None:
        self.dsn, self.database = _database(dsn)
        parts = urlsplit(self.dsn)
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}/{self.database}"
        self.ssl_context = ssl_context
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._notify: Callable[[int], None] | None = None

    def set_notify(self, wake: Callable[[int], None]) -> None:
        self._notify = wake

    async def _create_database(self) -> None:
        admin = urlunsplit(urlsplit(self.dsn)._replace(path="/postgres"))
        conn = await asyncpg.connect(admin, ssl=self.ssl_context, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{self.database}"')
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await conn.close()

    async def open(self) -> None:
        try:
            try:
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=1, max_size=self.pool_size, ssl=self.ssl_context, timeout=10
                )
            except asyncpg.InvalidCatalogNameError:
                await self._create_database()
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=1, max_size=self.pool_size, ssl=self.ssl_context, timeout=10
                )
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
                for sql in SCHEMA:
                    await conn.execute(sql)
            self._listener = await asyncpg.connect(self.dsn, ssl=self.ssl_context, timeout=10)
            await self._listener.add_listener(_CHANNEL, self._on_notify)
        except Exception as e:
            await self.close()
            raise _translate(self._where, e) from e

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._notify is not None:
            try:
                self._notify(int(payload))
            except ValueError:
                pass

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        if listener is not None:
            try:
                await listener.close(timeout=5)
            except Exception as e:
                log.debug("store postgres %s: closing listener: %s", self._where, e)
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except Exception:
                pool.terminate()

    def _pool_or_fail(self) -> asyncpg.Pool:
        if self._pool is None:
            raise Unavailable(f"store postgres {self._where}: not open")
        return self._pool

    async def query(self, *statements: Statement) -> list[list[Row]]:
        pool = self._pool_or_fail()
        try:
            async with pool.acquire() as conn:
                if len(statements) == 1:
                    sql, args = statements[0]
                    return [[tuple(r) for r in await conn.fetch(sql, *args)]]
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    return [[tuple(r) for r in await conn.fetch(sql, *args)] for sql, args in statements]
        except Exception as e:
            raise _translate(self._where, e) from e

    async def write(self, sql: str, args: Sequence[Any]) -> Row | None:
        pool = self._pool_or_fail()
        try:
            row = await pool.fetchrow(sql, *args)
        except Exception as e:
            raise _translate(self._where, e) from e
        return tuple(row)[:9] if row is not None else None  # drop the pg_notify column

    async def execute(self, *statements: Statement) -> None:
        pool = self._pool_or_fail()
        try:
            async with pool.acquire() as conn, conn.transaction():
                for sql, args in statements:
                    await conn.execute(sql, *args)
        except Exception as e:
            raise _translate(self._where, e) from e


def PostgresStore(dsn: str, *, ssl_context: ssl.SSLContext | None = None, **options: Any) -> SqlStore:  # noqa: N802
    """A :class:`SqlStore` on the PostgreSQL database ``dsn`` (options as for :class:`SqlStore`)."""
    return SqlStore(PostgresDialect(dsn, ssl_context=ssl_context), **options)
