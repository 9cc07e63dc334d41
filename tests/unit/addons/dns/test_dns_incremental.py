"""Incremental index and fast-table updates (fast path).

- IndexBuilder: random add/modify/delete sequences must leave exactly the index `compile_index` builds
  from the final objects (bounded, seeded: a property test without a framework).
- update_fast: after each change the table equals a full rebuild's, its answers equal the slow path's,
  and no full rebuild ran.
"""

from __future__ import annotations

import asyncio
import logging
import random

import dns.flags
import dns.message
import dns.rcode
import pytest
from dns_support import NAMESPACES, SERVICES, SLICES, ep, eps, ns, pod, rrs, svc

from pyk3s.addons.dns import precompute, runtime
from pyk3s.addons.dns.core import DnsCore
from pyk3s.addons.dns.fast import RD1_NO_EDNS, FastTable
from pyk3s.addons.dns.plugins.hosts import HostsPlugin
from pyk3s.addons.dns.plugins.kubernetes.builder import IndexBuilder, change_of
from pyk3s.addons.dns.plugins.kubernetes.config import KubeOptions
from pyk3s.addons.dns.plugins.kubernetes.index import KubeIndex, compile_index
from pyk3s.addons.dns.plugins.kubernetes.watch import DEBOUNCE_SECONDS, KubeWatch

KINDS = ("services", "endpointslices", "pods", "namespaces")
NS_POOL = ("a", "b", "c")
CLUSTER_IPS = ("10.43.0.1", "10.43.0.2", "10.43.0.3", "fd00:43::1")
EP_IPS = ("10.42.0.1", "10.42.0.2", "10.42.0.3", "fd00:42::1", "fd00:42:0::2")
PORTS = (("http", 80, "TCP"), ("", 8080, "TCP"), ("dns", 53, "UDP"), ("HTTP", 81, "tcp"))
OPTIONS = [
    KubeOptions(),
    KubeOptions(endpoint_pod_names=True, pods="verified"),
    KubeOptions(noendpoints=True),
    KubeOptions(namespaces=frozenset({"a", "b"}), pods="verified"),
]


# -- random objects ---------------------------------------------------------------------------------
def _rand_service(r: random.Random, namespace: str, name: str) -> dict:
    ports = r.sample(PORTS, r.randint(0, 2))
    kind = r.random()
    if kind < 0.5:
        return svc(namespace, name, r.sample(CLUSTER_IPS, r.randint(1, 2)), ports)
    if kind < 0.8:
        return svc(namespace, name, None, ports)
    return svc(namespace, name, None, external=r.choice(("db.example.test", "1.2.3.4", "x.a.svc.cluster.local")))


def _rand_slice(r: random.Random, namespace: str, name: str) -> dict:
    endpoints = []
    for _ in range(r.randint(0, 3)):
        e = ep(r.choice(EP_IPS), ready=r.choice((True, True, False, None)),
               hostname=r.choice((None, None, "h0", "h1")), pod=r.choice((None, "p0", "p1")))
        if r.random() < 0.2:
            e["addresses"].append(r.choice(EP_IPS))
        endpoints.append(e)
    s = eps(namespace, name, r.choice(("s0", "s1", "s2", "s3")), endpoints, r.sample(PORTS, r.randint(0, 2)))
    if r.random() < 0.1:
        del s["metadata"]["labels"]
    return s


def _rand_pod(r: random.Random, namespace: str, name: str) -> dict:
    p = pod(namespace, name, r.choice(EP_IPS))
    if r.random() < 0.2:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if r.random() < 0.1:
        p["status"] = {}
    return p


def _rand_change(r: random.Random, world: dict) -> tuple[str, str, str, dict | None]:
    kind = r.choice(KINDS)
    if kind == "namespaces":
        namespace, name = "", r.choice(NS_POOL + ("d",))
    else:
        namespace = r.choice(NS_POOL)
        name = r.choice({"services": ("s0", "s1", "s2", "s3"), "endpointslices": ("e0", "e1", "e2", "e3", "e4"),
                         "pods": ("p0", "p1", "p2")}[kind])
    key = (kind, namespace, name)
    if key in world and r.random() < 0.35:
        del world[key]
        return kind, namespace, name, None
    obj = {"services": _rand_service, "endpointslices": _rand_slice, "pods": _rand_pod,
           "namespaces": lambda _r, _ns, n: ns(n)}[kind](r, namespace, name)
    world[key] = obj
    return kind, namespace, name, obj


def _full(world: dict, opts: KubeOptions, serial: int) -> KubeIndex:
    of = {k: [o for (kind, _, _), o in sorted(world.items(), key=lambda kv: kv[0]) if kind == k] for k in KINDS}
    return compile_index(of["services"], of["endpointslices"], of["pods"] if opts.pods == "verified" else (),
                         of["namespaces"], opts, serial)


def _check_identity(idx: KubeIndex) -> None:
    """The lookup maps point at the very records in `services` (nothing stale kept alive)."""
    for rec in idx.by_cluster_ip.values():
        assert idx.services[(rec.namespace, rec.name)] is rec
    for pairs in idx.by_endpoint_ip.values():
        for rec, _ in pairs:
            assert idx.services[(rec.namespace, rec.name)] is rec


@pytest.mark.parametrize("opts", OPTIONS, ids=["default", "podnames-verified", "noendpoints", "namespaces"])
@pytest.mark.parametrize("seed", range(12))
def test_incremental_index_equals_full_compile(opts: KubeOptions, seed: int) -> None:
    r = random.Random(seed)
    world: dict = {}
    b = IndexBuilder(opts)
    b.reset((), (), (), (), serial=0)
    for step in range(1, 60):
        prev = b.index
        batch = [_rand_change(r, world) for _ in range(r.choice((1, 1, 2, 4)))]
        if r.random() < 0.05:                   # a relist now and then: start over from the objects
            of = {k: [o for (kind, _, _), o in world.items() if kind == k] for k in KINDS}
            got = b.reset(of["services"], of["endpointslices"], of["pods"], of["namespaces"], serial=step)
            assert b.changed_since(prev.generation) is None
        else:
            got = b.apply(batch, serial=step)
        want = _full(world, opts, b.index.serial)
        assert b.index == want, f"seed {seed} step {step}: {batch}"
        _check_identity(b.index)
        if got is None:
            assert b.index is prev and _full(world, opts, prev.serial) == prev
        else:
            assert got is b.index and got.generation == prev.generation + 1
            changed = b.changed_since(prev.generation)
            if changed is not None:
                assert changed == {k for k in set(prev.services) | set(got.services)
                                   if prev.services.get(k) != got.services.get(k)}


def test_changed_since_spans_generations_and_forgets() -> None:
    b = IndexBuilder(KubeOptions())
    b.reset((), (), (), [ns("a")], serial=1)
    g0 = b.index.generation
    b.apply([change_of("services", svc("a", "x", ["10.43.0.1"]))], serial=2)
    b.apply([change_of("services", svc("a", "y", ["10.43.0.2"]))], serial=3)
    assert b.changed_since(g0) == {("a", "x"), ("a", "y")}
    assert b.changed_since(b.index.generation) == frozenset()
    for i in range(80):
        b.apply([change_of("services", svc("a", "x", [f"10.43.1.{i}"]))], serial=4 + i)
    assert b.changed_since(g0) is None            # beyond the bounded history: the fast table rebuilds


def test_cluster_ip_claimed_twice_passes_to_the_next_owner() -> None:
    b = IndexBuilder(KubeOptions())
    b.reset([svc("a", "m", ["10.43.0.1"]), svc("a", "z", ["10.43.0.1"])], (), (), [ns("a")], serial=1)
    assert b.index.by_cluster_ip["10.43.0.1"].name == "m"
    b.apply([("services", "a", "m", None)], serial=2)
    assert b.index.by_cluster_ip["10.43.0.1"].name == "z"
    b.apply([("services", "a", "b", svc("a", "b", ["10.43.0.1"]))], serial=3)
    assert b.index.by_cluster_ip["10.43.0.1"].name == "b"
    b.apply([("services", "a", "b", None), ("services", "a", "z", None)], serial=4)
    assert "10.43.0.1" not in b.index.by_cluster_ip


def test_broken_object_keeps_its_last_good_version(caplog) -> None:  # noqa: ANN001
    b = IndexBuilder(KubeOptions())
    b.reset(SERVICES, SLICES, (), NAMESPACES, serial=1)
    good = b.index
    bad = svc("apps", "web", ["10.43.1.99"], [("http", 80, "TCP")])
    bad["spec"]["ports"][0]["port"] = "eighty"
    with caplog.at_level(logging.ERROR, "pyk3s.dns.kubernetes"):
        assert b.apply([change_of("services", bad)], serial=2) is None
    assert b.index is good
    assert "Service apps/web" in caplog.text
    # other changes still go through, the broken one is still the previous version
    b.apply([change_of("services", bad), change_of("services", svc("apps", "new", ["10.43.9.9"]))], serial=3)
    assert ("apps", "new") in b.index.services
    assert b.index.services[("apps", "web")] == good.services[("apps", "web")]
    # a full build leaves the broken object out instead of failing as a whole
    caplog.clear()
    with caplog.at_level(logging.ERROR, "pyk3s.dns.kubernetes"):
        idx = compile_index([*SERVICES[:2], bad], SLICES, (), NAMESPACES, KubeOptions(), 4)
        b.reset([*SERVICES[:2], bad], SLICES, (), NAMESPACES, serial=4)
    assert ("apps", "web") not in idx.services and len(idx.services) == 2 and b.index == idx
    assert caplog.text.count("Service apps/web") == 2


async def test_watch_folds_a_burst_into_one_apply() -> None:
    calls: list[list] = []

    class Plugin:
        def apply(self, changes: list) -> None:
            calls.append(changes)

    w = KubeWatch.__new__(KubeWatch)
    w.plugin, w.informers, w._timer, w._pending = Plugin(), {}, None, {}
    w.synced = asyncio.Event()
    w._changed("services", "ADDED", None, svc("a", "early", ["10.43.0.9"]))   # before sync: the lists cover it
    w.synced.set()
    first = svc("a", "x", ["10.43.0.1"])
    w._changed("services", "ADDED", None, first)
    for i in range(5):
        w._changed("services", "ADDED", None, svc("a", f"s{i}", [f"10.43.0.{10 + i}"]))
    w._changed("services", "DELETED", first, None)
    again = svc("a", "x", ["10.43.0.2"])
    w._changed("services", "ADDED", None, again)
    await asyncio.sleep(DEBOUNCE_SECONDS * 3)
    assert len(calls) == 1
    changes = {(k, n, name): obj for k, n, name, obj in calls[0]}
    assert len(changes) == 6 and changes[("services", "a", "x")] is again


# -- fast table -------------------------------------------------------------------------------------
BODY = """
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
    }
    loadbalance
"""


def _norm(t: FastTable) -> tuple:
    direct = {k: (reply, t.classes[cls]) for k, (reply, cls) in t.direct.items()}
    return direct, t.entries, t.nx, set(t.negatives)


def _query(key: bytes, qid: int = 0x4242) -> bytes:
    """The common-form query a direct key stands for."""
    return qid.to_bytes(2, "big") + key


class Incremental:
    def __init__(self, h, monkeypatch) -> None:  # noqa: ANN001
        self.h = h
        self.core: DnsCore = h.runtime.listeners[("127.0.0.1", 0)].core
        self.full_builds = 0
        self.build_fast = precompute.build_fast

        async def counting(routing):  # noqa: ANN001, ANN202
            self.full_builds += 1
            return await self.build_fast(routing)
        monkeypatch.setattr(precompute, "build_fast", counting)
        monkeypatch.setattr(runtime, "build_fast", counting)
        self.serial = 20000
        self.world = {change_of(kind, o)[:3]: o for kind, objs in (
            ("services", SERVICES), ("endpointslices", SLICES), ("namespaces", NAMESPACES)) for o in objs}

    @property
    def table(self) -> FastTable:
        t = self.core.routing.fast
        assert t is not None
        return t

    async def change(self, *changes) -> FastTable:  # noqa: ANN002
        before = self.table
        self.serial += 1
        changes = [change_of(*c) if len(c) == 2 else c for c in changes]
        assert self.h.kube.apply(changes, serial=self.serial)
        for kind, namespace, name, obj in changes:
            self.world[(kind, namespace, name)] = obj
        of = {k: [o for (kind, _, _), o in self.world.items() if kind == k and o is not None] for k in KINDS}
        assert self.h.kube.index == compile_index(of["services"], of["endpointslices"], (), of["namespaces"],
                                                  self.h.kube.opts, self.serial)
        await self.h.settle()
        after = self.table
        assert after is not before and self.full_builds == 0
        full = (await self.build_fast(self.core.routing)).fast
        assert _norm(after) == _norm(full)
        await self.same_as_slow(after)
        return after

    async def same_as_slow(self, t: FastTable) -> None:
        for key in list(t.direct)[:400]:
            wire = _query(key)
            f = dns.message.from_wire(self.core.fast_answer(wire))
            s = dns.message.from_wire(await self.core.slow_answer(wire, "udp", ("127.0.0.1", 1)))
            assert (f.rcode(), f.flags, rrs(f), rrs(f, "authority"), rrs(f, "additional")) == \
                (s.rcode(), s.flags, rrs(s), rrs(s, "authority"), rrs(s, "additional")), f.question

    def has(self, name: str, rdtype: str = "A") -> bool:
        key = dns.message.make_query(name, rdtype, use_edns=False).to_wire()[12:]
        return RD1_NO_EDNS + key in self.table.direct or key in self.table.entries


@pytest.fixture
async def inc(make_dns, monkeypatch) -> Incremental:  # noqa: ANN001
    h = await make_dns(BODY)
    return Incremental(h, monkeypatch)


async def test_fast_after_endpoint_and_service_changes(inc: Incremental) -> None:
    web = eps("apps", "web-1", "web", [ep("10.42.1.10", pod="web-a"), ep("10.42.1.13", pod="web-d")],
              [("http", 8000, "TCP"), ("", 8080, "TCP")])
    await inc.change(("endpointslices", web))
    assert inc.has("10-42-1-13.web.apps.svc.cluster.local") and not inc.has("10-42-1-12.web.apps.svc.cluster.local")
    assert inc.has("13.1.42.10.in-addr.arpa", "PTR") and not inc.has("12.1.42.10.in-addr.arpa", "PTR")
    await inc.change(("services", svc("apps", "new", ["10.43.9.9"], [("http", 80, "TCP")])),
                     ("endpointslices", eps("apps", "new-1", "new", [ep("10.42.9.1")], [("http", 80, "TCP")])))
    assert inc.has("new.apps.svc.cluster.local") and inc.has("_http._tcp.new.apps.svc.cluster.local", "SRV")
    assert inc.has("9.9.43.10.in-addr.arpa", "PTR")


async def test_fast_service_deleted_drops_its_ptr(inc: Incremental) -> None:
    assert inc.has("30.1.43.10.in-addr.arpa", "PTR") and inc.has("lonely.apps.svc.cluster.local")
    await inc.change(("services", "apps", "lonely", None))
    assert not inc.has("30.1.43.10.in-addr.arpa", "PTR") and not inc.has("lonely.apps.svc.cluster.local")
    # the ClusterIP goes away while the Service stays (turned headless)
    await inc.change(("services", svc("apps", "web", None, [("http", 80, "TCP")])))
    assert not inc.has("10.1.43.10.in-addr.arpa", "PTR")
    assert inc.has("10.1.42.10.in-addr.arpa", "PTR")          # its endpoint still has one


async def test_fast_headless_hostnames_and_slice_moves(inc: Incremental) -> None:
    db = eps("apps", "db-1", "db", [ep("10.42.2.10", hostname="db-0"), ep("10.42.2.11", hostname="db-2")],
             [("pg", 5432, "TCP")])
    await inc.change(("endpointslices", db))
    assert inc.has("db-2.db.apps.svc.cluster.local") and not inc.has("db-1.db.apps.svc.cluster.local")
    moved = eps("apps", "db-1", "ds", db["endpoints"], [("pg", 5432, "TCP")])
    t = await inc.change(("endpointslices", moved))
    assert inc.has("db-2.ds.apps.svc.cluster.local") and not inc.has("db-2.db.apps.svc.cluster.local")
    # db has no endpoints left: its A is a negative answer from the table
    key = RD1_NO_EDNS + dns.message.make_query("db.apps.svc.cluster.local", "A", use_edns=False).to_wire()[12:]
    reply = dns.message.from_wire(b"\x00\x00" + t.direct[key][0])
    assert reply.rcode() == dns.rcode.NXDOMAIN and reply.authority[0][0].serial == inc.serial


async def test_fast_negative_answers_follow_the_serial(inc: Incremental) -> None:
    negs = set(inc.table.negatives)
    assert negs                                   # empty.apps: headless without ready endpoints
    t = await inc.change(("services", svc("default", "other", ["10.43.7.7"])))
    for q in negs:
        reply = dns.message.from_wire(b"\x00\x00" + t.direct[RD1_NO_EDNS + q][0])
        assert reply.authority[0][0].serial == inc.serial
    wire = dns.message.make_query("x.nope.svc.cluster.local", "A", use_edns=False)
    f = dns.message.from_wire(inc.core.fast_answer(wire.to_wire()))
    assert f.rcode() == dns.rcode.NXDOMAIN and f.authority[0][0].serial == inc.serial


async def test_fast_namespace_deleted(inc: Incremental) -> None:
    search = dns.message.make_query("web.apps.svc.cluster.local.svc.cluster.local", "A", use_edns=False).to_wire()
    assert inc.core.fast_answer(search) is not None          # a search-path miss: shared NXDOMAIN
    inner = dns.message.make_query("x.web.apps.svc.cluster.local", "A", use_edns=False).to_wire()
    await inc.change(("namespaces", "", "apps", None))
    assert not inc.has("web.apps.svc.cluster.local") and not inc.has("10.1.43.10.in-addr.arpa", "PTR")
    assert inc.has("kubernetes.default.svc.cluster.local")
    f = dns.message.from_wire(inc.core.fast_answer(inner))    # the whole namespace is NXDOMAIN now
    assert f.rcode() == dns.rcode.NXDOMAIN and f.flags & dns.flags.AA
    await inc.change(("namespaces", ns("apps")))               # and back: its Services return
    assert inc.has("web.apps.svc.cluster.local") and inc.has("10.1.43.10.in-addr.arpa", "PTR")


async def test_fast_unchanged_when_nothing_answers_differently(inc: Incremental) -> None:
    before = inc.table
    assert inc.h.kube.apply([change_of("pods", pod("apps", "web-z", "10.42.1.99"))]) is None   # pods insecure
    assert inc.h.kube.apply([change_of("services", SERVICES[2])]) is None
    await inc.h.settle()
    assert inc.table is before


async def test_hosts_change_is_a_full_build(make_dns, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    hosts = tmp_path / "hosts"
    hosts.write_text("10.99.1.1 node-a\n")
    h = await make_dns(BODY.replace("    loadbalance\n", f"    hosts {hosts} {{\n      reload 0\n      fallthrough\n    }}\n"
                                                          "    loadbalance\n"))
    inc = Incremental(h, monkeypatch)
    assert inc.has("node-a") and inc.has("1.1.99.10.in-addr.arpa", "PTR")
    hosts.write_text("10.99.1.2 node-b node-b.local\n")
    await next(p for p in h.runtime.plugins() if isinstance(p, HostsPlugin)).refresh()
    await inc.h.settle()
    assert inc.full_builds == 1 and inc.has("node-b") and not inc.has("node-a")
    inc.h.kube.apply([change_of("services", svc("apps", "new", ["10.43.9.9"]))])
    await inc.h.settle()
    assert inc.full_builds == 1 and inc.has("new.apps.svc.cluster.local") and inc.has("node-b")
