"""SQLite engine (the default): the kine log in one file, stdlib ``sqlite3`` off the event loop.

Threads: one writer thread owns the only writing connection of this process; reads go to a small pool
of reader threads (WAL lets them run while the writer commits). The writer drains every write queued
while it was busy into one ``BEGIN IMMEDIATE … COMMIT`` (group commit): each statement still succeeds
or fails on its own (SQLite undoes only the failing statement), and no caller hears "done" before the
commit that holds its row. Other processes may open the same file; SQLite's file lock serializes
their transactions, so ids commit in order (``ordered_commits``).

Durability: WAL with ``synchronous=NORMAL`` writes every commit to the WAL before returning, so an
acknowledged write survives the process being killed (the OS still holds the pages); only a power
loss can drop the last commits. ``busy_timeout`` 30 s, like kine.

Memory: each connection has its own page cache, which fills up to its ``cache_size`` as the file
grows (the log grows between compactions by every revision written). A reader's cache is dropped at
the start of every read transaction after another connection committed (WAL), so a large one only
holds memory; the writer keeps the B-tree's upper pages and the recent rows hot with a few MiB. Rows
beyond the caches come from the kernel's page cache.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .base import StoreError, Unavailable
from .sqlstore import COMPACT_KEY, GENERIC_STATEMENTS, Row, SqlStore, Statement, UniqueViolation

__all__ = ["SCHEMA", "SqliteDialect", "SqliteStore"]

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
    " created INTEGER, deleted INTEGER, create_revision INTEGER, prev_revision INTEGER, lease INTEGER,"
    " value BLOB, old_value BLOB)",
    "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
    "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)"
    f" SELECT '{COMPACT_KEY}', 1, 1, 0, 0, 0, NULL, NULL"
    f" WHERE NOT EXISTS (SELECT 1 FROM kine WHERE name = '{COMPACT_KEY}')",
)

_GROUP_MAX = 256
# Page cache per connection, KiB (SQLite's negative cache_size): a list of a few thousand objects fits a reader's.
WRITER_CACHE_KIB = 4096
READER_CACHE_KIB = 4096

Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]


def _settle(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in results:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def _translate(path: Path, e: BaseException) -> BaseException:
    if isinstance(e, sqlite3.IntegrityError):
        return UniqueViolation(str(e))
    if isinstance(e, sqlite3.OperationalError):
        return Unavailable(f"store sqlite {path}: {e}")
    if isinstance(e, sqlite3.Error):
        return StoreError(f"store sqlite {path}: {e}")
    return e


class _DbThread(threading.Thread):
    """Runs jobs ``fn(conn, *args)`` from a queue on its own connection; ``group`` for the writer."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        jobs: queue.SimpleQueue[Job | None],
        loop: asyncio.AbstractEventLoop,
        path: Path,
        group: bool,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._connect = connect
        self._jobs = jobs
        self._loop = loop
        self._path = path
        self._group = group

    def _post(self, results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
        try:
            self._loop.call_soon_threadsafe(_settle, results)
        except RuntimeError:
            pass  # the loop is gone; nobody is waiting

    def run(self) -> None:
        try:
            conn = self._connect()
        except Exception as e:
            error = _translate(self._path, e)
            while (job := self._jobs.get()) is not None:
                self._post([(job[2], False, error)])
            return
        try:
            while (job := self._jobs.get()) is not None:
                if self._group:
                    if not self._run_group(conn, job):
                        break
                else:
                    fn, args, fut = job
                    try:
                        self._post([(fut, True, fn(conn, *args))])
                    except Exception as e:
                        self._post([(fut, False, _translate(self._path, e))])
        finally:
            conn.close()

    def _run_group(self, conn: sqlite3.Connection, first: Job) -> bool:
        batch = [first]
        more = True
        while len(batch) < _GROUP_MAX:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                more = False
                break
            batch.append(job)
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, args, fut in batch:
                try:
                    results.append((fut, True, fn(conn, *args)))
                except Exception as e:
                    results.append((fut, False, _translate(self._path, e)))
            conn.execute("COMMIT")
        except Exception as e:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            error = _translate(self._path, e)
            results = [(fut, False, error) for _, _, fut in batch]
        self._post(results)
        return more


def _query(conn: sqlite3.Connection, statements: Sequence[Statement]) -> list[list[Row]]:
    if len(statements) == 1:
        sql, args = statements[0]
        return [conn.execute(sql, args).fetchall()]
    conn.execute("BEGIN")
    try:
        return [conn.execute(sql, args).fetchall() for sql, args in statements]
    finally:
        conn.execute("COMMIT")


def _write(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Row | None:
    rows = conn.execute(sql, args).fetchall()
    return rows[0] if rows else None


def _execute(conn: sqlite3.Connection, statements: Sequence[Statement]) -> None:
    # Inside the writer's group transaction: a savepoint keeps this job all-or-nothing.
    conn.execute("SAVEPOINT job")
    try:
        for sql, args in statements:
            conn.execute(sql, args)
    except BaseException:
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        raise
    conn.execute("RELEASE job")


def _schema(conn: sqlite3.Connection) -> None:
    for sql in SCHEMA:
        conn.execute(sql)


class SqliteDialect:
    name = "sqlite"
    statements = GENERIC_STATEMENTS
    no_limit: int | None = -1
    ordered_commits = True

    def __init__(self, path: Path, *, readers: int = 2, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        self.readers = readers
        self.busy_timeout_ms = busy_timeout_ms
        self._writes: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._reads: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[_DbThread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def set_notify(self, wake: Callable[[int], None]) -> None:
        """Other processes are found by polling only."""

    def _connect(self, *, writer: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_ms / 1000
        )
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        if writer:
            # Switching to WAL needs an exclusive lock and skips the busy handler: retry briefly when
            # another process is opening the same file at this moment.
            deadline = time.monotonic() + self.busy_timeout_ms / 1000
            while True:
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB if writer else READER_CACHE_KIB}")
        return conn

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, mode=0o700)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._writes = queue.SimpleQueue()
        self._reads = queue.SimpleQueue()
        writer = _DbThread(
            "store-sqlite-writer",
            lambda: self._connect(writer=True),
            self._writes,
            self._loop,
            self.path,
            True,
        )
        self._threads = [writer]
        writer.start()
        await self._submit(self._writes, _schema, ())
        readers = [
            _DbThread(f"store-sqlite-reader-{i}", self._connect, self._reads, self._loop, self.path, False)
            for i in range(self.readers)
        ]
        self._threads += readers
        for t in readers:
            t.start()

    async def close(self) -> None:
        if not self._threads:
            return
        self._writes.put(None)
        for _ in range(self.readers):
            self._reads.put(None)
        threads, self._threads = self._threads, []

        def join_all() -> None:
            for t in threads:
                t.join()

        await asyncio.to_thread(join_all)

    def _submit(
        self, jobs: queue.SimpleQueue[Job | None], fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> asyncio.Future[Any]:
        if not self._threads or self._loop is None:
            raise Unavailable(f"store sqlite {self.path}: not open")
        fut = self._loop.create_future()
        jobs.put((fn, args, fut))
        return fut

    async def query(self, *statements: Statement) -> list[list[Row]]:
        return await self._submit(self._reads, _query, (statements,))

    async def write(self, sql: str, args: Sequence[Any]) -> Row | None:
        return await self._submit(self._writes, _write, (sql, args))

    async def execute(self, *statements: Statement) -> None:
        await self._submit(self._writes, _execute, (statements,))


def SqliteStore(path: Path, **options: Any) -> SqlStore:  # noqa: N802 - a constructor by role
    """A :class:`SqlStore` on the SQLite file ``path`` (options as for :class:`SqlStore`)."""
    readers = options.pop("readers", 2)
    return SqlStore(SqliteDialect(path, readers=readers), **options)
