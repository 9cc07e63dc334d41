"""The cache plugin's wire form: cache hits answered from bytes on the socket path (spec dns.md O8, O9).

The reference is the dnspython path of the same cache: for the same query in the same second both must
write the same bytes.
"""

from __future__ import annotations

import asyncio
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from pyk3s.addons.dns.plugins.cache import CachePlugin
from pyk3s.addons.dns.wirecache import build_wire_entry, ttl_offsets


class Upstream(asyncio.DatagramProtocol):
    """Stand-in upstream on loopback: www.example.test A (one address), multi.example.test A (three)."""

    def __init__(self) -> None:
        self.count = 0
        self.transport = None

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        self.count += 1
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        qn = q.question[0].name
        name = qn.to_text().lower()
        if name == "www.example.test.":
            r.answer.append(dns.rrset.from_text(qn, 300, "IN", "A", "10.99.0.55"))
        elif name == "multi.example.test.":
            r.answer.append(dns.rrset.from_text(qn, 300, "IN", "A", "10.99.0.1", "10.99.0.2", "10.99.0.3"))
            r.answer.append(dns.rrset.from_text("cname.example.test.", 120, "IN", "CNAME", "www.example.test."))
        else:
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(dns.rrset.from_text("example.test.", 60, "IN", "SOA",
                                                   "ns.example.test. h.example.test. 1 7200 1800 86400 60"))
        self.transport.sendto(r.to_wire(), addr)


@pytest.fixture
async def upstream():  # noqa: ANN201
    proto = Upstream()
    tr, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    proto.port = tr.get_extra_info("sockname")[1]  # type: ignore[attr-defined]
    yield proto
    tr.close()


def _core(h):  # noqa: ANN001, ANN202
    return next(iter(h.runtime.listeners.values())).core


def _cache(h) -> CachePlugin:  # noqa: ANN001
    return next(p for p in h.runtime.plugins() if isinstance(p, CachePlugin))


async def _both(h, query: dns.message.Message) -> tuple[bytes | None, bytes | None]:  # noqa: ANN001
    """(socket-path answer, dnspython-path answer) for the same bytes."""
    core = _core(h)
    data = query.to_wire()
    fast = core.fast_answer(data)
    slow = await core.slow_answer(data)
    return fast, slow


async def test_hit_matches_slow_path_bytes(make_dns, upstream) -> None:  # noqa: ANN001
    h = await make_dns(body=f"errors\ncache 30\nforward . 127.0.0.1:{upstream.port}\n", load=False)
    await h.settle()
    r = await h.q("www.example.test", "A")
    assert r.answer[0].ttl == 30 and upstream.count == 1
    assert _cache(h).wire.entries
    for name, kw in (("www.example.test", {}), ("WwW.Example.TEST", {}),
                     ("www.example.test", {"use_edns": 0, "payload": 1232})):
        q = dns.message.make_query(name, "A", **kw)
        q.id = 4242
        fast, slow = await _both(h, q)
        assert fast is not None, name
        assert fast == slow, name
        m = dns.message.from_wire(fast)
        assert m.id == 4242 and m.flags & dns.flags.AA and m.flags & dns.flags.RA and m.flags & dns.flags.RD
        assert m.question[0].name.to_text() == name + "." and m.answer[0].ttl <= 30
    assert upstream.count == 1
    assert _cache(h).wire.counts["success"] == 3


async def test_do_bit_is_a_separate_entry(make_dns, upstream) -> None:  # noqa: ANN001
    h = await make_dns(body=f"cache 30\nforward . 127.0.0.1:{upstream.port}\n", load=False)
    await h.settle()
    await h.q("www.example.test", "A")
    q = dns.message.make_query("www.example.test", "A", want_dnssec=True)
    assert _core(h).fast_answer(q.to_wire()) is None
    await h.q("www.example.test", "A", want_dnssec=True)
    fast = _core(h).fast_answer(q.to_wire())
    assert fast is not None and dns.message.from_wire(fast).ednsflags & dns.flags.DO
    assert upstream.count == 2


async def test_denial_and_ttl_countdown(make_dns, upstream) -> None:  # noqa: ANN001
    h = await make_dns(body=f"cache 30\nforward . 127.0.0.1:{upstream.port}\n", load=False)
    await h.settle()
    r = await h.q("nothing.example.test", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].ttl == 30
    cache = _cache(h)
    entry = next(iter(cache.wire.entries.values()))
    entry.expires = time.monotonic() + 7.5            # as if 22.5 s had passed
    q = dns.message.make_query("nothing.example.test", "A")
    m = dns.message.from_wire(_core(h).fast_answer(q.to_wire()))
    assert m.rcode() == dns.rcode.NXDOMAIN and m.authority[0].ttl == 7 and m.flags & dns.flags.AA
    entry.expires = time.monotonic() - 1               # expired: the socket path steps aside
    assert _core(h).fast_answer(q.to_wire()) is None


async def test_loadbalance_rotates_wire_hits(make_dns, upstream) -> None:  # noqa: ANN001
    h = await make_dns(body=f"cache 30\nloadbalance\nforward . 127.0.0.1:{upstream.port}\n", load=False)
    await h.settle()
    await h.q("multi.example.test", "A")
    firsts = set()
    for _ in range(6):
        m = dns.message.from_wire(_core(h).fast_answer(dns.message.make_query("multi.example.test", "A").to_wire()))
        a = next(rr for rr in m.answer if rr.rdtype == dns.rdatatype.A)
        assert sorted(rd.address for rd in a) == ["10.99.0.1", "10.99.0.2", "10.99.0.3"]
        assert len({rr.ttl for rr in m.answer}) == 1 and m.answer[0].ttl <= 30
        firsts.add(next(iter(a)).address)
    assert len(firsts) == 3 and upstream.count == 1


async def test_not_used_when_a_plugin_must_see_every_query(make_dns, upstream) -> None:  # noqa: ANN001
    h = await make_dns(body=f"log\ncache 30\nforward . 127.0.0.1:{upstream.port}\n", load=False)
    await h.settle()
    await h.q("www.example.test", "A")
    assert not _cache(h).wire.entries
    assert _core(h).fast_answer(dns.message.make_query("www.example.test", "A").to_wire()) is None


def test_ttl_offsets_and_patch() -> None:
    m = dns.message.make_response(dns.message.make_query("a.example.test", "A"))
    m.answer.append(dns.rrset.from_text("a.example.test.", 30, "IN", "A", "10.99.0.1", "10.99.0.2"))
    m.authority.append(dns.rrset.from_text("example.test.", 30, "IN", "NS", "ns.example.test."))
    w = m.to_wire()
    offs = ttl_offsets(w, 12 + len(m.question[0].name.to_wire()) + 4, 3)
    assert [int.from_bytes(w[o:o + 4], "big") for o in offs] == [30, 30, 30]
    e = build_wire_entry(m, m.question[0].name, dns.rdatatype.A, time.monotonic() + 12.5, [(m.answer, m.additional)])
    tail = e.tail(time.monotonic(), keep=False)
    assert all(int.from_bytes(tail[o:o + 4], "big") == 12 for o in e.offsets[0])
