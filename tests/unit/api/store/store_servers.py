"""Store engines for the conformance suite: memory and SQLite always; PostgreSQL and etcd when their
binaries are installed, each as a real server on loopback (random port, temp dir, stopped by PID)."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pyk3s.api.store.base import Store
from pyk3s.api.store.etcd import EtcdStore
from pyk3s.api.store.memory import MemoryBackend, MemoryStore
from pyk3s.api.store.postgres import PostgresStore
from pyk3s.api.store.sqlite import SqliteStore

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
POLL = 0.1  # poll interval for SQL engines in tests: cross-instance watches arrive fast


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _remove(path: Path) -> None:
    # A server that just exited may still have children finishing writes: retry briefly.
    for _ in range(20):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.1)


class PostgresServer:
    """initdb + postgres in a temp dir, as the ``postgres`` user when we are root (postgres refuses root).

    Tests run without any flush to disk (``FAST``); ``durable=True`` keeps PostgreSQL's defaults (every
    commit flushed), which is what a benchmark compares with etcd."""

    FAST = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")

    def __init__(self, durable: bool = False) -> None:
        self.settings: tuple[str, ...] = () if durable else self.FAST
        self.dir = Path(tempfile.mkdtemp(prefix="pkpg-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._db = itertools.count(1)

    def _as_user(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pw = pwd.getpwnam("nobody")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def start(self) -> None:
        initdb, postgres, isready = (find_binary(n) for n in ("initdb", "postgres", "pg_isready"))
        assert initdb and postgres and isready
        who = self._as_user()
        data = self.dir / "data"
        subprocess.run(
            [initdb, "-D", str(data), "-U", "pk", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, cwd=self.dir, timeout=120, **who,
        )
        for _ in range(5):
            self.port = free_port()
            log = open(self.dir / "server.log", "ab")
            self.proc = subprocess.Popen(
                [postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port), "-k", str(self.dir),
                 *self.settings, "-c", "max_connections=300"],
                stdout=log, stderr=log, cwd=self.dir, **who,
            )
            log.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                ok = subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(self.port)], timeout=10)
                if ok.returncode == 0:
                    return
                time.sleep(0.1)
            _stop(self.proc, signal.SIGKILL)
        raise RuntimeError(f"postgres did not start: {(self.dir / 'server.log').read_text()[-2000:]}")

    def dsn(self) -> str:
        """A database of its own (created by the engine on first open)."""
        return f"postgres://pk@127.0.0.1:{self.port}/pk_test_{next(self._db)}"

    async def fresh_dsn(self) -> str:
        """The shared test database with the kine table dropped: cheaper than a new database."""
        dsn = f"postgres://pk@127.0.0.1:{self.port}/pk_shared"
        try:
            conn = await asyncpg.connect(dsn)
        except asyncpg.InvalidCatalogNameError:
            return dsn
        try:
            await conn.execute("DROP TABLE IF EXISTS kine")
        finally:
            await conn.close()
        return dsn

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGINT)
        _remove(self.dir)


class EtcdServer:
    """One etcd member on loopback; with ``tls`` = (ca, cert, key) paths it serves HTTPS and requires
    client certificates signed by that CA."""

    def __init__(self, tls: tuple[Path, Path, Path] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pketcd-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.tls = tls

    def start(self) -> None:
        etcd = shutil.which("etcd")
        assert etcd
        for _ in range(2):
            client, peer = free_port(), free_port()
            self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            tls_args: list[str] = []
            if self.tls:
                ca, cert, key = self.tls
                tls_args = ["--cert-file", str(cert), "--key-file", str(key), "--client-cert-auth",
                            "--trusted-ca-file", str(ca)]
            log = open(self.dir / "etcd.log", "ab")
            self.proc = subprocess.Popen(
                [etcd, "--name", "pk", "--data-dir", str(self.dir / "data"),
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"pk={peer_url}", "--log-level", "error", *tls_args],
                stdout=log, stderr=log, cwd=self.dir,
            )
            log.close()
            deadline = time.monotonic() + 20
            error: Exception | None = None
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    req = urllib.request.Request(self.url + "/v3/kv/range", data=b'{"key":"AA=="}', method="POST")
                    with self._opener().open(req, timeout=1) as resp:
                        if resp.status == 200:
                            return
                except OSError as e:
                    error = e
                time.sleep(0.05)
            _stop(self.proc, signal.SIGKILL)
            shutil.rmtree(self.dir / "data", ignore_errors=True)
        raise RuntimeError(f"etcd did not start ({error}): {(self.dir / 'etcd.log').read_text()[-1500:]}")

    def _opener(self) -> urllib.request.OpenerDirector:
        if not self.tls:
            return NO_PROXY
        ca, cert, key = self.tls
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGTERM)
        _remove(self.dir)


HAVE_POSTGRES = all(find_binary(n) for n in ("initdb", "postgres", "pg_isready"))
HAVE_ETCD = shutil.which("etcd") is not None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not HAVE_POSTGRES:
        pytest.skip("PostgreSQL binaries (initdb, postgres, pg_isready) not installed")
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def etcd_server() -> Iterator[EtcdServer]:
    if not HAVE_ETCD:
        pytest.skip("etcd binary not installed")
    server = EtcdServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Engine:
    """Makes started store instances that share one database (like several API processes)."""

    def __init__(self, name: str, factory: Callable[[], Store]) -> None:
        self.name = name
        self._factory = factory
        self.stores: list[Store] = []

    async def open(self) -> Store:
        store = self._factory()
        await store.start()
        self.stores.append(store)
        return store

    async def close(self) -> None:
        for store in reversed(self.stores):
            await store.close()


ENGINE_NAMES = ["memory", "sqlite", "postgres", "etcd"]


@pytest.fixture(params=ENGINE_NAMES)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    name = request.param
    if name == "memory":
        backend = MemoryBackend()
        eng = Engine(name, lambda: MemoryStore(backend))
    elif name == "sqlite":
        path = tmp_path / "db" / "state.db"
        eng = Engine(name, lambda: SqliteStore(path, compact_min_retain=0, poll_interval=POLL))
    elif name == "postgres":
        dsn = await request.getfixturevalue("postgres_server").fresh_dsn()
        eng = Engine(name, lambda: PostgresStore(dsn, compact_min_retain=0, poll_interval=POLL))
    else:
        url = request.getfixturevalue("etcd_server").url
        eng = Engine(name, lambda: EtcdStore([url], compact_min_retain=0))
    try:
        yield eng
    finally:
        await eng.close()


@pytest.fixture
async def store(engine: Engine) -> Store:
    return await engine.open()
