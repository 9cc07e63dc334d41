"""The Store contract (pyk3s/api/store/base.py), run unchanged against every engine."""

from __future__ import annotations

import asyncio
import time

import pytest

from pyk3s.api.store.base import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    Store,
)

P = "/registry/core/pods/"


async def next_batch(watch, timeout: float = 5.0) -> list[Event]:
    return await asyncio.wait_for(watch.__anext__(), timeout)


async def collect(watch, count: int, timeout: float = 5.0) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        events += await next_batch(watch, max(0.01, deadline - time.monotonic()))
    return events


async def test_create_get(store: Store) -> None:
    kv = await store.create(P + "ns/a", b'{"a":1}')
    assert kv.key == P + "ns/a" and kv.value == b'{"a":1}'
    assert kv.create_revision == kv.mod_revision > 0
    rev, got = await store.get(P + "ns/a")
    assert got == kv and rev >= kv.mod_revision
    rev, missing = await store.get(P + "ns/missing")
    assert missing is None and rev == await store.current_revision()
    with pytest.raises(KeyExists):
        await store.create(P + "ns/a", b"again")


async def test_list_prefix_limit_start_after(store: Store) -> None:
    names = [f"ns/p{i:02}" for i in range(12)]
    for n in reversed(names):
        await store.create(P + n, n.encode())
    await store.create("/registry/core/services/ns/s", b"svc")
    await store.create("/registry/core/pods", b"not under the prefix")
    rev, items = await store.list(P)
    assert [kv.key for kv in items] == [P + n for n in names]
    assert rev == await store.current_revision()
    _, first = await store.list(P, limit=5)
    assert [kv.key for kv in first] == [P + n for n in names[:5]]
    pages, after = [], ""
    while True:
        _, page = await store.list(P, revision=rev, limit=5, start_after=after)
        pages += page
        if len(page) < 5:
            break
        after = page[-1].key
    assert [kv.key for kv in pages] == [P + n for n in names]
    _, everything = await store.list("")
    assert len(everything) == 14
    assert (await store.count(P))[1] == 12


async def test_list_and_get_at_past_revision(store: Store) -> None:
    a = await store.create(P + "ns/a", b"1")
    b = await store.create(P + "ns/b", b"1")
    await store.update(P + "ns/a", b"2", a.mod_revision)
    await store.delete(P + "ns/b", b.mod_revision)
    _, items = await store.list(P, revision=b.mod_revision)
    assert [(kv.key, kv.value) for kv in items] == [(P + "ns/a", b"1"), (P + "ns/b", b"1")]
    assert (await store.get(P + "ns/a", a.mod_revision))[1].value == b"1"
    assert (await store.get(P + "ns/b", a.mod_revision))[1] is None
    _, now = await store.list(P)
    assert [(kv.key, kv.value) for kv in now] == [(P + "ns/a", b"2")]
    with pytest.raises(FutureRevision):
        await store.get(P + "ns/a", await store.current_revision() + 100)
    with pytest.raises(FutureRevision):
        await store.list(P, revision=await store.current_revision() + 100)


async def test_update_conflict_and_missing(store: Store) -> None:
    kv = await store.create(P + "ns/a", b"1")
    new = await store.update(P + "ns/a", b"2", kv.mod_revision)
    assert new.mod_revision > kv.mod_revision and new.create_revision == kv.create_revision
    with pytest.raises(RevisionConflict):
        await store.update(P + "ns/a", b"3", kv.mod_revision)
    with pytest.raises(KeyNotFound):
        await store.update(P + "ns/none", b"3", kv.mod_revision)
    assert (await store.get(P + "ns/a"))[1].value == b"2"
    unconditional = await store.update(P + "ns/a", b"4", 0)
    assert unconditional.value == b"4" and unconditional.mod_revision > new.mod_revision


async def test_delete_and_recreate(store: Store) -> None:
    kv = await store.create(P + "ns/a", b"1")
    with pytest.raises(RevisionConflict):
        await store.delete(P + "ns/a", kv.mod_revision + 1000)
    gone = await store.delete(P + "ns/a", kv.mod_revision)
    assert gone.value == b"1" and gone.mod_revision > kv.mod_revision
    assert (await store.get(P + "ns/a"))[1] is None
    with pytest.raises(KeyNotFound):
        await store.delete(P + "ns/a")
    with pytest.raises(KeyNotFound):
        await store.update(P + "ns/a", b"x", gone.mod_revision)
    again = await store.create(P + "ns/a", b"2")
    assert again.create_revision == again.mod_revision > gone.mod_revision
    assert (await store.delete(P + "ns/a")).value == b"2"
    assert (await store.count(P))[1] == 0


async def test_revisions_monotonic(store: Store) -> None:
    last = await store.current_revision()
    kv = await store.create(P + "ns/a", b"0")
    for i in range(10):
        assert kv.mod_revision > last
        assert await store.current_revision() >= kv.mod_revision
        last = kv.mod_revision
        kv = await store.update(P + "ns/a", str(i).encode(), kv.mod_revision)


async def test_watch_from_old_revision(store: Store) -> None:
    start = await store.current_revision()
    a = await store.create(P + "ns/a", b"1")
    a2 = await store.update(P + "ns/a", b"2", a.mod_revision)
    await store.create("/registry/core/services/ns/s", b"svc")
    d = await store.delete(P + "ns/a", a2.mod_revision)
    watch = store.watch(P, start)
    events = await collect(watch, 3)
    assert [(e.type, e.kv.value, e.revision) for e in events] == [
        ("PUT", b"1", a.mod_revision),
        ("PUT", b"2", a2.mod_revision),
        ("DELETE", b"2", d.mod_revision),
    ]
    assert events[0].prev is None
    assert events[1].prev.value == b"1" and events[1].prev.mod_revision == a.mod_revision
    assert events[2].prev.value == b"2" and events[2].prev.mod_revision == a2.mod_revision
    live = await store.create(P + "ns/b", b"live")
    events = await collect(watch, 1)
    assert [(e.type, e.kv.key, e.revision) for e in events] == [("PUT", P + "ns/b", live.mod_revision)]
    await watch.aclose()


async def test_watch_from_middle_and_future(store: Store) -> None:
    a = await store.create(P + "ns/a", b"1")
    b = await store.create(P + "ns/b", b"1")
    watch = store.watch(P, a.mod_revision)
    assert [e.revision for e in await collect(watch, 1)] == [b.mod_revision]
    await watch.aclose()
    cur = await store.current_revision()
    future = store.watch(P, cur + 1)
    pending = asyncio.ensure_future(next_batch(future))
    first = await store.create(P + "ns/c", b"1")
    second = await store.create(P + "ns/d", b"1")
    assert first.mod_revision == cur + 1
    batch = await pending
    got = [e.revision for e in batch]
    if second.mod_revision not in got:
        got += [e.revision for e in await next_batch(future)]
    assert got == [second.mod_revision]
    await future.aclose()


async def test_watch_live_in_order(store: Store) -> None:
    watch = store.watch(P, await store.current_revision())
    pending = asyncio.ensure_future(collect(watch, 40))
    await asyncio.sleep(0.05)
    written = await asyncio.gather(*(store.create(P + f"ns/k{i:02}", b"v") for i in range(40)))
    events = await pending
    revisions = [e.revision for e in events]
    assert revisions == sorted(revisions) == sorted(kv.mod_revision for kv in written)
    await watch.aclose()


async def test_watch_sees_second_instance(engine, store: Store) -> None:
    other = await engine.open()
    watch = store.watch(P, await store.current_revision())
    pending = asyncio.ensure_future(collect(watch, 3))
    await asyncio.sleep(0.05)
    kv = await other.create(P + "ns/remote", b"1")
    kv2 = await other.update(P + "ns/remote", b"2", kv.mod_revision)
    local = await store.create(P + "ns/local", b"1")
    events = await pending
    assert [(e.kv.key, e.revision) for e in events] == [
        (P + "ns/remote", kv.mod_revision),
        (P + "ns/remote", kv2.mod_revision),
        (P + "ns/local", local.mod_revision),
    ]
    assert events[1].prev.value == b"1"
    assert (await other.get(P + "ns/local"))[1].value == b"1"
    await watch.aclose()


async def test_compaction(store: Store) -> None:
    kv = await store.create(P + "ns/a", b"0")
    old = kv.mod_revision
    for i in range(1, 6):
        kv = await store.update(P + "ns/a", str(i).encode(), kv.mod_revision)
    gone = await store.create(P + "ns/gone", b"x")
    await store.delete(P + "ns/gone")
    keep = await store.create(P + "ns/b", b"b")
    target = keep.mod_revision
    point = await store.compact(target)
    assert point == target == await store.compact_revision()
    with pytest.raises(Compacted) as info:
        await store.get(P + "ns/a", old)
    assert info.value.compacted == target
    with pytest.raises(Compacted):
        await store.list(P, revision=gone.mod_revision)
    with pytest.raises(Compacted):
        await next_batch(store.watch(P, old))
    rev, items = await store.list(P)
    assert [(i.key, i.value) for i in items] == [(P + "ns/a", b"5"), (P + "ns/b", b"b")]
    assert rev >= target
    assert (await store.get(P + "ns/a", target))[1].value == b"5"
    assert await store.compact(old) == target  # never goes back
    later = await store.update(P + "ns/a", b"6", kv.mod_revision)
    watch = store.watch(P, target)
    events = await collect(watch, 1)
    assert [(e.revision, e.prev.value) for e in events] == [(later.mod_revision, b"5")]
    await watch.aclose()
    again = await store.create(P + "ns/gone", b"back")
    assert again.create_revision == again.mod_revision


async def test_concurrent_update_race_one_winner(engine, store: Store) -> None:
    other = await engine.open()
    kv = await store.create(P + "ns/race", b"0")

    async def attempt(s: Store, i: int) -> str:
        try:
            await s.update(P + "ns/race", str(i).encode(), kv.mod_revision)
            return "won"
        except RevisionConflict:
            return "lost"

    results = await asyncio.gather(*(attempt(store if i % 2 else other, i) for i in range(20)))
    assert results.count("won") == 1
    cur = (await store.get(P + "ns/race"))[1]
    assert cur.mod_revision > kv.mod_revision


async def test_concurrent_increments_no_lost_update(engine, store: Store) -> None:
    other = await engine.open()
    await store.create(P + "ns/counter", b"0")
    revisions: list[int] = []

    async def worker(s: Store) -> None:
        for _ in range(10):
            while True:
                _, kv = await s.get(P + "ns/counter")
                try:
                    new = await s.update(P + "ns/counter", str(int(kv.value) + 1).encode(), kv.mod_revision)
                except RevisionConflict:
                    continue
                revisions.append(new.mod_revision)
                break

    await asyncio.gather(*(worker(s) for s in (store, other, store, other)))
    assert (await store.get(P + "ns/counter"))[1].value == b"40"
    assert len(set(revisions)) == 40


async def test_concurrent_create_one_winner(engine, store: Store) -> None:
    other = await engine.open()

    async def attempt(s: Store) -> bool:
        try:
            await s.create(P + "ns/once", b"x")
            return True
        except KeyExists:
            return False

    results = await asyncio.gather(*(attempt(s) for s in [store, other] * 8))
    assert results.count(True) == 1


async def test_count(store: Store) -> None:
    for i in range(7):
        await store.create(P + f"ns/c{i}", b"x")
    await store.delete(P + "ns/c0")
    rev, n = await store.count(P)
    assert n == 6 and rev == await store.current_revision()
    assert (await store.count("/registry/nothing/"))[1] == 0


@pytest.mark.parametrize("engine", ["memory", "sqlite", "postgres"], indirect=True)
async def test_list_10000_keys_in_order(store: Store) -> None:
    # how fast this is belongs to bench/store.py; here only that a large list is whole and ordered
    value = b'{"kind":"Pod","metadata":{"name":"x"}}' * 10
    batch = 500
    for start in range(0, 10_000, batch):
        await asyncio.gather(*(store.create(P + f"ns/p{i:05}", value) for i in range(start, start + batch)))
    _, items = await store.list(P)
    assert [kv.key for kv in items] == [P + f"ns/p{i:05}" for i in range(10_000)]
