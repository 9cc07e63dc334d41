"""SQLite engine specifics: durability under kill -9, other processes on the same file, gap filling."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pyk3s.api.store import open_store
from pyk3s.api.store.sqlite import READER_CACHE_KIB, WRITER_CACHE_KIB, SqliteDialect, SqliteStore
from pyk3s.api.store.sqlstore import SqlStore

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from pyk3s.api.store.sqlite import SqliteStore

    async def main(path, count):
        store = SqliteStore(Path(path))
        await store.start()
        async def one(i):
            await store.create(f"/registry/crash/k{i:06}", b"v" * 200)
            sys.stdout.write(f"{i}\\n")
            sys.stdout.flush()
        for start in range(0, count, 64):
            await asyncio.gather(*(one(i) for i in range(start, start + 64)))
        await store.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def _spawn_writer(path: Path, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    proc = _spawn_writer(path, 1_000_000)
    acknowledged: list[int] = []
    try:
        assert proc.stdout is not None
        while len(acknowledged) < 3000:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, proc.stderr.read() if proc.stderr else "writer exited"
            acknowledged.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=10)
        acknowledged += [int(x) for x in rest.split()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = SqliteStore(path)
    await store.start()
    try:
        _, items = await store.list("/registry/crash/")
        present = {kv.key for kv in items}
        missing = [i for i in acknowledged if f"/registry/crash/k{i:06}" not in present]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    finally:
        await store.close()


async def test_watch_sees_other_process(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path, poll_interval=0.1)
    await store.start()
    try:
        watch = store.watch("/registry/crash/", await store.current_revision())
        proc = _spawn_writer(path, 64)
        out, err = await asyncio.to_thread(proc.communicate, timeout=60)
        assert proc.returncode == 0, err
        seen: list[int] = []
        while len(seen) < 64:
            batch = await asyncio.wait_for(watch.__anext__(), 5)
            seen += [e.revision for e in batch]
        assert seen == sorted(seen) and len(set(seen)) == 64
        mine = await store.create("/registry/crash/mine", b"x")
        assert mine.mod_revision > seen[-1]
        await watch.aclose()
    finally:
        await store.close()


async def test_default_path_and_permissions(tmp_path: Path) -> None:
    store = open_store("", tmp_path)
    await store.start()
    try:
        await store.create("/registry/x", b"1")
    finally:
        await store.close()
    db = tmp_path / "server" / "db" / "state.db"
    assert db.is_file()
    for d in (tmp_path / "server", db.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) & 0o077 == 0
    store = open_store(f"sqlite://{db}", tmp_path / "elsewhere")
    await store.start()
    try:
        assert (await store.get("/registry/x"))[1].value == b"1"
    finally:
        await store.close()


class _UnorderedSqlite(SqliteDialect):
    """SQLite pretending its commits may arrive out of id order, to exercise kine's gap filling."""

    ordered_commits = False


async def test_gap_is_filled_and_later_rows_delivered(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqlStore(_UnorderedSqlite(path), poll_interval=0.05, gap_wait=0.2)
    await store.start()
    try:
        watch = store.watch("/registry/", await store.current_revision())
        cur = await store.current_revision()
        # A row two ids ahead, as if id cur+1 belonged to a transaction still in flight.
        await store.dialect.execute(
            (
                "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, value,"
                " old_value) VALUES (?1, ?2, 1, 0, 0, 0, 0, ?3, NULL)",
                (cur + 2, "/registry/late", b"v"),
            )
        )
        store._wake.set()
        t = time.monotonic()
        batch = await asyncio.wait_for(watch.__anext__(), 5)
        assert time.monotonic() - t >= 0.15
        assert [(e.kv.key, e.revision) for e in batch] == [("/registry/late", cur + 2)]
        (rows,) = await store.dialect.query(("SELECT name FROM kine WHERE id = ?1", (cur + 1,)))
        assert rows == [(f"gap-{cur + 1}",)]
        nxt = await store.create("/registry/next", b"x")
        assert [e.revision for e in await asyncio.wait_for(watch.__anext__(), 5)] == [nxt.mod_revision]
        _, items = await store.list("")
        assert [kv.key for kv in items] == ["/registry/late", "/registry/next"]
        await watch.aclose()
    finally:
        await store.close()


async def test_compaction_keeps_newest_revisions(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", compact_min_retain=10, compact_batch=7)
    await store.start()
    try:
        kv = await store.create("/registry/a", b"0")
        for i in range(30):
            kv = await store.update("/registry/a", str(i).encode(), kv.mod_revision)
        cur = await store.current_revision()
        assert await store.compact(cur) == cur - 10
        assert (await store.get("/registry/a", cur - 10))[1] is not None
        (rows,) = await store.dialect.query(("SELECT COUNT(*) FROM kine WHERE name = '/registry/a'", ()))
        assert rows[0][0] == 11
    finally:
        await store.close()


async def test_compaction_keeps_the_file_from_growing(tmp_path: Path) -> None:
    # One key rewritten again and again (a ConfigMap updated every second) between compactions: the pages
    # freed by each compaction hold the next cycle's rows, so the file stops growing after the first.
    store = SqliteStore(tmp_path / "state.db", compact_min_retain=100)
    await store.start()
    try:
        kv = await store.create("/registry/core/configmaps/default/soak-0", b"v" * 600)
        used: list[int] = []
        for _ in range(6):
            for _ in range(1000):
                kv = await store.update(kv.key, b"v" * 600, kv.mod_revision)
            await store.compact(await store.current_revision())
            (pages,) = await store.dialect.query(("PRAGMA page_count", ()))
            used.append(pages[0][0])
            (rows,) = await store.dialect.query(("SELECT COUNT(*) FROM kine WHERE name = ?1", (kv.key,)))
            assert rows[0][0] == 101
        assert max(used[2:]) - min(used[2:]) <= 2, f"pages after each cycle: {used}"
    finally:
        await store.close()


async def test_page_cache_per_connection_is_small(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        (reader,) = await store.dialect.query(("PRAGMA cache_size", ()))
        assert reader[0][0] == -READER_CACHE_KIB <= -1024
        writer = await store.dialect.write("PRAGMA cache_size", ())
        assert writer is not None and writer[0] == -WRITER_CACHE_KIB
    finally:
        await store.close()
