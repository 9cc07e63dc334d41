"""PostgreSQL engine specifics: NOTIFY wakes other servers' pollers; races leave no reordering."""

from __future__ import annotations

import asyncio

import pytest
from store_servers import HAVE_POSTGRES, PostgresServer

from pyk3s.api.store import open_store
from pyk3s.api.store.base import RevisionConflict
from pyk3s.api.store.postgres import PostgresStore

pytestmark = pytest.mark.skipif(not HAVE_POSTGRES, reason="PostgreSQL binaries not installed")


async def test_notify_wakes_other_instance(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.dsn()
    watcher = PostgresStore(dsn, poll_interval=60)
    writer = PostgresStore(dsn, poll_interval=60)
    await watcher.start()
    await writer.start()
    try:
        watch = watcher.watch("/registry/", await watcher.current_revision())
        pending = asyncio.ensure_future(watch.__anext__())
        await asyncio.sleep(0.1)
        kv = await writer.create("/registry/a", b"1")
        batch = await asyncio.wait_for(pending, 3)  # far below the 60 s poll interval
        assert [e.revision for e in batch] == [kv.mod_revision]
        await watch.aclose()
    finally:
        await writer.close()
        await watcher.close()


async def test_racing_servers_deliver_every_event_in_order(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.dsn()
    stores = [PostgresStore(dsn, poll_interval=0.1) for _ in range(3)]
    for s in stores:
        await s.start()
    try:
        observer = stores[0]
        watch = observer.watch("/registry/", await observer.current_revision())
        await stores[1].create("/registry/hot", b"0")
        committed: list[int] = []

        async def writer(s: PostgresStore, w: int, n: int) -> None:
            for i in range(n):
                await s.create(f"/registry/w{w}/{i}", b"x")
                _, kv = await s.get("/registry/hot")
                try:
                    committed.append((await s.update("/registry/hot", b"y", kv.mod_revision)).mod_revision)
                except RevisionConflict:
                    pass

        await asyncio.gather(*(writer(stores[1 + w % 2], w, 30) for w in range(6)))
        expected = await observer.current_revision()
        seen: list[int] = []
        while not seen or seen[-1] < expected:
            seen += [e.revision for e in await asyncio.wait_for(watch.__anext__(), 5)]
        assert seen == sorted(seen) and len(seen) == len(set(seen))
        assert set(committed) <= set(seen)
        await watch.aclose()
    finally:
        for s in stores:
            await s.close()


async def test_open_store_postgres_creates_database(postgres_server: PostgresServer, tmp_path) -> None:
    store = open_store(postgres_server.dsn().replace("postgres://", "postgresql://"), tmp_path)
    await store.start()
    try:
        assert (await store.create("/registry/x", b"1")).mod_revision > 0
    finally:
        await store.close()
