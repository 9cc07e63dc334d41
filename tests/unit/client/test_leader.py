"""Leader election on Leases against the real API core (memory store, in-process client)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client
from pyk3s.client.leader import LeaderElectionConfig, LeaderElector


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, ApiConfig())
    await api.start()
    try:
        yield Client.in_process(api)
    finally:
        await api.stop()
        await store.close()


def cfg(identity: str, **kw: float) -> LeaderElectionConfig:
    return LeaderElectionConfig(name="pk-test", identity=identity, lease_duration=kw.get("lease", 2),
                                renew_deadline=kw.get("renew", 1.5), retry_period=kw.get("retry", 0.1))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def lease(client: Client) -> dict:
    return (await client.resource("coordination.k8s.io/v1", "leases").get("pk-test", "kube-system"))["spec"]


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="identity"):
        LeaderElectionConfig(name="x", identity="")
    with pytest.raises(ValueError, match="lease_duration > renew_deadline > retry_period"):
        LeaderElectionConfig(name="x", identity="a", lease_duration=10, renew_deadline=10)
    c = LeaderElectionConfig(name="x", identity="a")
    assert (c.lease_duration, c.renew_deadline, c.retry_period, c.namespace) == (15.0, 10.0, 2.0, "kube-system")


async def test_first_candidate_creates_and_holds_the_lease(client: Client) -> None:
    a = LeaderElector(client, cfg("a"))
    assert await a.try_acquire_or_renew()
    spec = await lease(client)
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 2
    assert spec["leaseTransitions"] == 0 and spec["acquireTime"] and spec["renewTime"].endswith("Z")
    assert await a.try_acquire_or_renew()  # renewing keeps acquireTime
    assert (await lease(client))["acquireTime"] == spec["acquireTime"]


async def test_other_candidate_waits_for_expiry_on_its_own_clock(client: Client) -> None:
    clock = Clock()
    a = LeaderElector(client, cfg("a"))
    b = LeaderElector(client, cfg("b"), clock=clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert b.leader == "a"
    clock.now += 1.9
    assert not await b.try_acquire_or_renew()  # not yet expired
    assert await a.try_acquire_or_renew()      # a renews: the record changes ...
    clock.now += 1.9
    assert not await b.try_acquire_or_renew()  # ... so b's observation starts over
    clock.now += 2.1
    assert await b.try_acquire_or_renew()      # no change for a whole lease duration: b takes over
    spec = await lease(client)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1


async def test_only_one_of_several_candidates_leads(client: Client) -> None:
    leading: list[str] = []
    second = asyncio.Event()

    def work(name: str):
        async def run() -> None:
            leading.append(name)
            if len(leading) == 2:
                second.set()
            await asyncio.Event().wait()
        return run

    electors = [LeaderElector(client, cfg(n)) for n in "abc"]
    tasks = [asyncio.create_task(e.run(work(e.config.identity))) for e in electors]
    try:
        await asyncio.sleep(0.8)
        assert len(leading) == 1
        assert sum(e.leading for e in electors) == 1
        first = leading[0]
        # a graceful stop releases the lease: another candidate leads within a few retry periods
        idx = "abc".index(first)
        tasks[idx].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[idx]
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(second.wait(), 3)
        assert len(leading) == 2 and leading[1] != first
        assert loop.time() - start < 1.5
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def test_crashed_leader_is_replaced_after_the_lease_duration(client: Client) -> None:
    a = LeaderElector(client, cfg("a"))
    await a.acquire()  # then "crashes": never renews, never releases
    took: list[float] = []
    taken = asyncio.Event()
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def work() -> None:
        took.append(loop.time() - start)
        taken.set()
        await asyncio.Event().wait()

    b = LeaderElector(client, cfg("b"))
    task = asyncio.create_task(b.run(work))
    try:
        await asyncio.wait_for(taken.wait(), 5)
        assert 2.0 <= took[0] < 3.0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert (await lease(client))["holderIdentity"] == ""  # b released it on the way out


async def test_leader_that_loses_the_lease_stops_its_work(client: Client) -> None:
    stopped = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    a = LeaderElector(client, cfg("a"))
    task = asyncio.create_task(a.run(work))
    try:
        for _ in range(50):
            if a.leading:
                break
            await asyncio.sleep(0.02)
        assert a.leading
        leases = client.resource("coordination.k8s.io/v1", "leases")
        obj = await leases.get("pk-test", "kube-system")
        obj["spec"]["holderIdentity"] = "intruder"
        await leases.update(obj)
        await asyncio.wait_for(stopped.wait(), 2)
        assert not a.leading or a.leader == "a"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
