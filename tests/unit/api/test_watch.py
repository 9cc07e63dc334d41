"""The shared watch history stays bounded by count and age, and watchers older than it still get
every event (from the store) or 410 Gone below the compaction point."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pyk3s.api.store.base import Compacted
from pyk3s.api.store.memory import MemoryStore
from pyk3s.api.watch import Subscription, WatchCache

PREFIX = "/registry/core/configmaps/"
KEY = PREFIX + "default/soak-0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    s = MemoryStore(compact_min_retain=0)
    await s.start()
    yield s
    await s.close()


async def updates(store: MemoryStore, count: int) -> list[int]:
    """``count`` updates of one key (created first if needed); the revisions written."""
    rev = await store.current_revision()
    revs = []
    _, kv = await store.get(KEY)
    if kv is None:
        kv = await store.create(KEY, b'{"data":{"n":"0"}}')
        revs.append(kv.mod_revision)
    for i in range(count):
        kv = await store.update(KEY, b'{"data":{"n":"%d"}}' % i, kv.mod_revision)
        revs.append(kv.mod_revision)
    assert revs[-1] > rev
    return revs


async def drain(sub: Subscription, last: int) -> list[int]:
    """Revisions delivered to ``sub`` until ``last`` arrives."""
    got: list[int] = []
    while not got or got[-1] < last:
        batch = await sub.next_batch(2.0)
        assert batch is not None, f"no event after {got[-1:]} (waiting for {last})"
        assert batch or not sub.closed, f"watch closed: {sub.error}"
        got += [we.rev for we in batch]
    return got


async def settle(cache: WatchCache, revision: int) -> None:
    """Wait until the hub has taken in every event up to ``revision``."""
    probe = await cache.subscribe(PREFIX, revision - 1)
    await drain(probe, revision)
    probe.cancel()


async def test_history_is_bounded_by_count(store: MemoryStore) -> None:
    cache = WatchCache(store, history=200, min_history=10)
    live = await cache.subscribe(PREFIX, await store.current_revision())
    revs = await updates(store, 1000)
    assert await drain(live, revs[-1]) == revs
    await settle(cache, revs[-1])
    assert cache.history_sizes()[PREFIX] == 200
    live.cancel()
    await cache.close()


async def test_history_is_bounded_by_age(store: MemoryStore) -> None:
    clock = Clock()
    cache = WatchCache(store, history=5000, history_seconds=60, min_history=20, clock=clock)
    live = await cache.subscribe(PREFIX, await store.current_revision())
    for _ in range(10):  # a steady writer: 100 events per 30 s for 5 minutes
        revs = await updates(store, 100)
        await drain(live, revs[-1])
        clock.now += 30
    await settle(cache, revs[-1])
    # the last 60 s: the batch written at the last tick (30 s ago) and the one before it (60 s ago, at the edge)
    assert cache.history_sizes()[PREFIX] <= 200
    clock.now += 3600  # quiet for an hour: the newest few stay for watchers resuming from them
    await settle(cache, revs[-1])
    assert cache.history_sizes()[PREFIX] == 20
    live.cancel()
    await cache.close()


async def test_watcher_older_than_the_history_gets_every_event(store: MemoryStore) -> None:
    cache = WatchCache(store, history=50, min_history=0)
    start = await store.current_revision()
    live = await cache.subscribe(PREFIX, start)
    revs = await updates(store, 500)
    await drain(live, revs[-1])
    # from the store (the hub's history no longer reaches back that far), then live events
    old = await cache.subscribe(PREFIX, start)
    more = await updates(store, 5)
    assert await drain(old, more[-1]) == revs + more
    # a recent resourceVersion is served from the history, in order and without duplicates
    recent = await cache.subscribe(PREFIX, revs[-10])
    assert await drain(recent, more[-1]) == revs[-9:] + more
    for sub in (live, old, recent):
        sub.cancel()
    await cache.close()


async def test_watch_below_the_compaction_point_is_gone(store: MemoryStore) -> None:
    cache = WatchCache(store, history=50)
    start = await store.current_revision()
    revs = await updates(store, 100)
    await store.compact(revs[50])
    with pytest.raises(Compacted):
        await cache.subscribe(PREFIX, start)
    sub = await cache.subscribe(PREFIX, revs[60])
    assert await drain(sub, revs[-1]) == revs[61:]
    sub.cancel()
    await cache.close()


async def test_watcher_older_than_the_history_replays_only_its_scope(store: MemoryStore) -> None:
    cache = WatchCache(store, history=20, min_history=0)
    start = await store.current_revision()
    live = await cache.subscribe(PREFIX, start)
    revs = await updates(store, 200)  # default/soak-0, a busy object in another namespace
    kv = await store.create(PREFIX + "kube-system/coredns", b"{}")
    await drain(live, kv.mod_revision)
    # a kube-system informer resuming from before all that: its own namespace's events only
    old = await cache.subscribe(PREFIX, start, scope=PREFIX + "kube-system/")
    assert await drain(old, kv.mod_revision) == [kv.mod_revision]
    # an unrelated scope is ignored: the whole prefix is replayed
    whole = await cache.subscribe(PREFIX, start, scope="/registry/core/secrets/")
    assert await drain(whole, kv.mod_revision) == revs + [kv.mod_revision]
    for sub in (live, old, whole):
        sub.cancel()
    await cache.close()
