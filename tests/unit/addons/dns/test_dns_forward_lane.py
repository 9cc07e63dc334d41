"""forward on the forward lane (spec dns.md O7), on real sockets against a local stand-in upstream: IDs
rewritten and restored, identical queries in flight together, timeouts, late and wrong-ID replies,
truncation and TCP, failover/next/expire, and replies the same as the plugin chain writes them."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from dns_support import rrs

from pyk3s.addons.dns.core import DnsCore
from pyk3s.addons.dns.plugins.cache import CachePlugin
from pyk3s.addons.dns.plugins.forward import ForwardPlugin

Reply = list[tuple[float, bytes]]       # (delay, datagram) to send back


def answer(q: dns.message.Message, *rdatas: str, rdtype: str = "A", ttl: int = 300) -> dns.message.Message:
    r = dns.message.make_response(q)
    r.flags |= dns.flags.RA
    qn = q.question[0].name
    if rdatas:
        r.answer.append(dns.rrset.from_text(qn, ttl, "IN", rdtype, *rdatas))
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
        r.authority.append(dns.rrset.from_text("example.test.", 60, "IN", "SOA",
                                               "ns.example.test. h.example.test. 1 7200 1800 86400 60"))
    return r


class StandIn(asyncio.DatagramProtocol):
    """A stand-in upstream resolver on loopback, UDP and TCP on one port. `behave(query, proto)` says what
    it sends back; by default www.example.test A 10.99.0.55 and NXDOMAIN for the rest. It records every
    query: (proto, ID, lower-case name, source port)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str, int]] = []
        self.transport: Any = None
        self.port = 0
        self.behave: Callable[[dns.message.Message, str], Reply] = self.default

    @staticmethod
    def default(q: dns.message.Message, proto: str) -> Reply:
        name = q.question[0].name.to_text().lower()
        r = answer(q, "10.99.0.55") if name == "www.example.test." else answer(q)
        return [(0.0, r.to_wire())]

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def _note(self, data: bytes, proto: str, port: int) -> dns.message.Message:
        q = dns.message.from_wire(data)
        self.seen.append((proto, q.id, q.question[0].name.to_text().lower(), port))
        return q

    def datagram_received(self, data: bytes, addr: Any) -> None:
        q = self._note(data, "udp", addr[1])
        loop = asyncio.get_running_loop()
        for delay, out in self.behave(q, "udp"):
            if delay:
                loop.call_later(delay, self.transport.sendto, out, addr)
            else:
                self.transport.sendto(out, addr)

    async def tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                n = struct.unpack(">H", await reader.readexactly(2))[0]
                q = self._note(await reader.readexactly(n), "tcp", writer.get_extra_info("peername")[1])
                for delay, out in self.behave(q, "tcp"):
                    await asyncio.sleep(delay)
                    writer.write(struct.pack(">H", len(out)) + out)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def stand_in() -> Any:
    made: list[tuple[Any, Any]] = []

    async def make() -> StandIn:
        loop = asyncio.get_running_loop()
        proto = StandIn()
        for _ in range(20):     # one port free for both UDP and TCP
            tr, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
            port = tr.get_extra_info("sockname")[1]
            try:
                srv = await asyncio.start_server(proto.tcp, "127.0.0.1", port)
                break
            except OSError:
                tr.close()
        else:
            pytest.fail("no port free for both UDP and TCP")
        proto.port = port
        made.append((tr, srv))
        return proto

    yield make
    for tr, srv in made:
        tr.close()
        srv.close()


@pytest.fixture
def quick_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ForwardPlugin, "read_timeout", 0.3)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.put_nowait(data)


async def client(port: int) -> tuple[Any, _Client]:
    tr, proto = await asyncio.get_running_loop().create_datagram_endpoint(
        _Client, remote_addr=("127.0.0.1", port))
    return tr, proto


async def ask(port: int, q: dns.message.Message, timeout: float = 3.0) -> dns.message.Message:
    """One UDP query from a socket of its own; the reply must carry the query's ID."""
    tr, c = await client(port)
    try:
        tr.sendto(q.to_wire())
        data = await asyncio.wait_for(c.got.get(), timeout)
    finally:
        tr.close()
    r = dns.message.from_wire(data)
    assert r.id == q.id
    return r


def query(name: str, rdtype: str = "A", qid: int = 4242, **kw: Any) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    q.id = qid
    return q


def _core(h: Any) -> DnsCore:
    return next(iter(h.runtime.listeners.values())).core


def _forward(h: Any) -> ForwardPlugin:
    return next(p for p in h.runtime.plugins() if isinstance(p, ForwardPlugin))


def slow_calls(h: Any, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Queries that went to the plugin chain (the lane took the others)."""
    core = _core(h)
    calls: list[bytes] = []
    real = core.slow_answer

    async def counted(data: bytes, *a: Any, **kw: Any) -> bytes | None:
        calls.append(data)
        return await real(data, *a, **kw)
    monkeypatch.setattr(core, "slow_answer", counted)
    return calls


# -- IDs ------------------------------------------------------------------------------------------

async def test_ids_are_rewritten_upstream_and_restored(make_dns: Any, stand_in: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    up = await stand_in()
    h = await make_dns(body=f"errors\ncache 30\nforward . 127.0.0.1:{up.port}\n", load=False)
    chain = slow_calls(h, monkeypatch)
    for i in range(8):
        r = await ask(h.port, query(f"n{i}.example.test", qid=4242))
        assert r.rcode() == dns.rcode.NXDOMAIN and r.question[0].name.to_text() == f"n{i}.example.test."
    ids = [qid for _, qid, _, _ in up.seen]
    assert len(ids) == 8 and len(set(ids)) == 8, ids          # an ID of its own for each query
    assert chain == []                                         # all of them on the lane
    ports = {port for _, _, _, port in up.seen}
    assert len(ports) == 1                                     # one kept socket to the upstream


async def test_identical_queries_in_flight_together(make_dns: Any, stand_in: Any) -> None:
    """Twenty clients ask the same question with the same ID at once; the upstream answers slowly. Each
    client gets one reply, with its ID; the upstream saw twenty distinct IDs."""
    up = await stand_in()
    up.behave = lambda q, proto: [(0.1, answer(q, "10.99.0.55").to_wire())]
    h = await make_dns(body=f"forward . 127.0.0.1:{up.port}\n", load=False)
    clients = [await client(h.port) for _ in range(20)]
    wire = query("www.example.test", qid=777).to_wire()
    for tr, _ in clients:
        tr.sendto(wire)
    try:
        for _, c in clients:
            r = dns.message.from_wire(await asyncio.wait_for(c.got.get(), 3))
            assert r.id == 777 and rrs(r) == {"www.example.test. A 10.99.0.55"}
        await asyncio.sleep(0.2)
        assert all(c.got.empty() for _, c in clients)          # no second reply anywhere
    finally:
        for tr, _ in clients:
            tr.close()
    assert len({qid for _, qid, _, _ in up.seen}) == 20


async def test_a_reply_with_a_wrong_id_is_dropped(make_dns: Any, stand_in: Any) -> None:
    up = await stand_in()

    def wrong_then_right(q: dns.message.Message, proto: str) -> Reply:
        bogus = answer(q, "10.66.6.6")
        bogus.id = (q.id + 1) & 0xFFFF
        return [(0.0, bogus.to_wire()), (0.05, answer(q, "10.99.0.55").to_wire())]
    up.behave = wrong_then_right
    h = await make_dns(body=f"cache 30\nforward . 127.0.0.1:{up.port}\n", load=False)
    r = await ask(h.port, query("www.example.test"))
    assert rrs(r) == {"www.example.test. A 10.99.0.55"}


async def test_a_reply_for_another_question_is_formerr(make_dns: Any, stand_in: Any) -> None:
    up = await stand_in()

    def other(q: dns.message.Message, proto: str) -> Reply:
        r = answer(dns.message.make_query("evil.example.test", "A"), "10.66.6.6")
        r.id = q.id
        return [(0.0, r.to_wire())]
    up.behave = other
    h = await make_dns(body=f"cache 30\nforward . 127.0.0.1:{up.port}\n", load=False)
    for tcp in (False, True):       # the lane, and the chain
        q = query("www.example.test")
        r = await h.q("www.example.test", tcp=True) if tcp else await ask(h.port, q)
        assert r.rcode() == dns.rcode.FORMERR and not r.answer
    assert not _cache(h).success and not _cache(h).denial


# -- time ---------------------------------------------------------------------------------------------

def _cache(h: Any) -> CachePlugin:
    return next(p for p in h.runtime.plugins() if isinstance(p, CachePlugin))


@pytest.mark.timing_sensitive
async def test_no_answer_is_servfail_after_the_timeout_and_a_late_one_is_dropped(
        make_dns: Any, stand_in: Any, quick_timeouts: None, caplog: pytest.LogCaptureFixture) -> None:
    up = await stand_in()
    up.behave = lambda q, proto: [(0.6, answer(q, "10.99.0.55").to_wire())]     # after the 0.3 s timeout
    h = await make_dns(body=f"errors\ncache 30\nforward . 127.0.0.1:{up.port}\n", load=False)
    tr, c = await client(h.port)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with caplog.at_level(logging.ERROR, logger="pyk3s.dns.errors"):
            tr.sendto(query("www.example.test").to_wire())
            r = dns.message.from_wire(await asyncio.wait_for(c.got.get(), 3))
        took = loop.time() - start
        assert r.rcode() == dns.rcode.SERVFAIL and r.id == 4242
        assert 0.25 <= took < 1.0, took
        assert "plugin/errors: 2 www.example.test. A" in caplog.text and "no answer" in caplog.text
        await asyncio.sleep(0.6)                                   # the late answer comes and goes
        assert c.got.empty()
    finally:
        tr.close()
    assert not _cache(h).success and not _cache(h).wire.entries   # a failure is not cached
    up.behave = StandIn.default
    r = await ask(h.port, query("www.example.test"))
    assert rrs(r) == {"www.example.test. A 10.99.0.55"} and len(up.seen) == 2


@pytest.mark.timing_sensitive
async def test_a_silent_upstream_hands_over_to_the_next_and_gets_probed(
        make_dns: Any, stand_in: Any, quick_timeouts: None) -> None:
    silent, good = await stand_in(), await stand_in()
    silent.behave = lambda q, proto: []
    h = await make_dns(body=f"""
        forward . 127.0.0.1:{silent.port} 127.0.0.1:{good.port} {{
          policy sequential
          max_fails 1
          health_check 0.1s
        }}
        """, load=False)
    for i in range(2):
        r = await ask(h.port, query("www.example.test", qid=100 + i))
        assert rrs(r) == {"www.example.test. A 10.99.0.55"}
    fwd = _forward(h)
    assert fwd.upstreams[0].fails >= 2
    await asyncio.sleep(0.3)
    assert any(name == "." for _, _, name, _ in silent.seen)       # health checks: ". IN NS"
    silent.behave = StandIn.default
    await asyncio.sleep(0.5)
    assert fwd.upstreams[0].fails == 0                              # answered a probe: healthy again


# -- truncation --------------------------------------------------------------------------------------

def _truncating(q: dns.message.Message, proto: str) -> Reply:
    full = answer(q, *(f"10.99.1.{i}" for i in range(1, 9)))
    if proto == "tcp":
        return [(0.0, full.to_wire())]
    tc = dns.message.make_response(q)
    tc.flags |= dns.flags.TC | dns.flags.RA
    return [(0.0, tc.to_wire())]


async def test_truncated_reply_reaches_the_client_which_retries_over_tcp(make_dns: Any, stand_in: Any) -> None:
    up = await stand_in()
    up.behave = _truncating
    h = await make_dns(body=f"cache 30\nforward . 127.0.0.1:{up.port}\n", load=False)
    r = await ask(h.port, query("big.example.test"))
    assert r.flags & dns.flags.TC and not r.answer
    r = await ask(h.port, query("big.example.test"))           # TC is not cached: asked again
    assert r.flags & dns.flags.TC
    assert [p for p, *_ in up.seen] == ["udp", "udp"]
    r = await h.q("big.example.test", tcp=True)                # the client's retry: TCP all the way
    assert len(rrs(r)) == 8 and not r.flags & dns.flags.TC
    assert up.seen[-1][0] == "tcp"


async def test_prefer_udp_asks_again_over_tcp_when_truncated(make_dns: Any, stand_in: Any) -> None:
    up = await stand_in()
    up.behave = _truncating
    h = await make_dns(body=f"cache 30\nforward . 127.0.0.1:{up.port} {{\n  prefer_udp\n}}\n", load=False)
    r = await ask(h.port, query("big.example.test", use_edns=0, payload=1232))
    assert len(rrs(r)) == 8 and not r.flags & dns.flags.TC
    assert [p for p, *_ in up.seen] == ["udp", "tcp"]
    r = await ask(h.port, query("big.example.test", use_edns=0, payload=1232))
    assert len(rrs(r)) == 8 and len(up.seen) == 2              # cached
    r = await h.q("other.example.test", tcp=True)              # a TCP client: UDP first (prefer_udp)
    assert len(rrs(r)) == 8 and [p for p, *_ in up.seen[2:]] == ["udp", "tcp"]


async def test_a_reply_too_big_for_the_client_is_truncated_as_the_chain_does(make_dns: Any,
                                                                             stand_in: Any) -> None:
    up = await stand_in()
    # the upstream ignores the client's 512 bytes: 40 addresses do not fit
    up.behave = lambda q, proto: [(0.0, answer(q, *(f"10.99.2.{i}" for i in range(1, 41))).to_wire())]
    h = await make_dns(body=f"forward . 127.0.0.1:{up.port}\n", load=False)
    tr, c = await client(h.port)
    try:
        tr.sendto(query("many.example.test").to_wire())
        data = await asyncio.wait_for(c.got.get(), 3)
    finally:
        tr.close()
    assert len(data) <= 512
    r = dns.message.from_wire(data)
    assert r.flags & dns.flags.TC


# -- options --------------------------------------------------------------------------------------------

async def test_failover_asks_the_next_upstream(make_dns: Any, stand_in: Any) -> None:
    bad, good = await stand_in(), await stand_in()

    def servfail(q: dns.message.Message, proto: str) -> Reply:
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.SERVFAIL)
        return [(0.0, r.to_wire())]
    bad.behave = servfail
    h = await make_dns(body=f"""
        forward . 127.0.0.1:{bad.port} 127.0.0.1:{good.port} {{
          policy sequential
          failover SERVFAIL
        }}
        """, load=False)
    r = await ask(h.port, query("www.example.test"))
    assert rrs(r) == {"www.example.test. A 10.99.0.55"}
    r = await h.q("www.example.test", tcp=True)
    assert rrs(r) == {"www.example.test. A 10.99.0.55"}
    assert len(bad.seen) == 2 and len(good.seen) == 2
    good.behave = servfail                                     # none left: the last reply stands
    r = await ask(h.port, query("x.example.test"))
    assert r.rcode() == dns.rcode.SERVFAIL


async def test_next_hands_over_to_the_next_forward(make_dns: Any, stand_in: Any) -> None:
    first, second = await stand_in(), await stand_in()
    second.behave = lambda q, proto: [(0.0, answer(q, "10.99.3.3").to_wire())]
    h = await make_dns(body=f"""
        forward . 127.0.0.1:{first.port} {{
          next NXDOMAIN
        }}
        forward . 127.0.0.1:{second.port}
        """, load=False)
    r = await ask(h.port, query("www.example.test"))
    assert rrs(r) == {"www.example.test. A 10.99.0.55"} and not second.seen
    r = await ask(h.port, query("elsewhere.example.test"))
    assert rrs(r) == {"elsewhere.example.test. A 10.99.3.3"}


async def test_an_idle_socket_expires(make_dns: Any, stand_in: Any) -> None:
    up = await stand_in()
    h = await make_dns(body=f"forward . 127.0.0.1:{up.port} {{\n  expire 200ms\n}}\n", load=False)
    await ask(h.port, query("www.example.test"))
    channel = _forward(h).upstreams[0].udp
    assert channel.sock is not None
    await asyncio.sleep(0.5)
    assert channel.sock is None                                # closed once idle
    await ask(h.port, query("www.example.test", qid=2))
    assert up.seen[0][3] != up.seen[1][3]                     # a fresh socket: another source port


async def test_max_concurrent_on_the_lane(make_dns: Any, stand_in: Any) -> None:
    up = await stand_in()
    up.behave = lambda q, proto: [(0.3, answer(q, "10.99.0.55").to_wire())]
    h = await make_dns(body=f"prometheus 127.0.0.1:0\nforward . 127.0.0.1:{up.port} {{\n  max_concurrent 2\n}}\n",
                       load=False)
    got = await asyncio.gather(*(ask(h.port, query("www.example.test", qid=i)) for i in range(4)))
    assert sorted(r.rcode() for r in got) == [dns.rcode.NOERROR] * 2 + [dns.rcode.REFUSED] * 2
    assert len(up.seen) == 2
    assert "coredns_forward_max_concurrent_rejects_total 2" in h.runtime.metrics.render()


# -- the same replies as the chain -------------------------------------------------------------------

def _varied(q: dns.message.Message, proto: str) -> Reply:
    name = q.question[0].name.to_text().lower()
    qt = q.question[0].rdtype
    if name.startswith("multi"):
        r = answer(q, "10.99.0.1", "10.99.0.2", "10.99.0.3")
    elif name.startswith("cname"):
        r = answer(q, "www.example.test.", rdtype="CNAME", ttl=120)
        r.answer.append(dns.rrset.from_text("www.example.test.", 300, "IN", "A", "10.99.0.55", "10.99.0.56"))
    elif name.startswith("mx"):
        r = answer(q, "10 a.mx.example.test.", "20 b.mx.example.test.", rdtype="MX")
        r.additional.append(dns.rrset.from_text("a.mx.example.test.", 300, "IN", "A", "10.99.9.1"))
    elif name.startswith("six") and qt == dns.rdatatype.AAAA:
        r = answer(q, "fd00::1", "fd00::2", rdtype="AAAA", ttl=7)
    elif name.startswith("empty"):
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
    else:
        r = answer(q)
    return [(0.0, r.to_wire(want_shuffle=False))]       # records in a known order: rotations compare


# each a cache key of its own: the first round is all misses
MISSES = [("multi.example.test", "A", {}), ("cname.example.test", "A", {}), ("mx.example.test", "MX", {}),
          ("six.example.test", "AAAA", {}), ("empty.example.test", "TXT", {}), ("nx.example.test", "A", {}),
          ("multi.example.test", "A", {"use_edns": 0, "payload": 1232, "want_dnssec": True}),
          ("Cname.Example.TEST", "AAAA", {"use_edns": 0, "payload": 4096})]
HITS = [*MISSES, ("Multi.Example.TEST", "A", {}), ("cname.example.test", "A", {"use_edns": 0, "payload": 4096})]


def _view(r: dns.message.Message, order: bool) -> tuple[Any, ...]:
    """What the client sees (TTLs aside); with `order`, which record of each set comes first (rotation)."""
    def text(rr: dns.rrset.RRset) -> str:
        return " ".join([rr.name.to_text(), dns.rdatatype.to_text(rr.rdtype), *sorted(rd.to_text() for rd in rr)])
    sections = tuple(sorted(text(rr) for rr in getattr(r, s)) for s in ("answer", "authority", "additional"))
    firsts = tuple(next(iter(rr)).to_text() for rr in r.answer) if order else ()
    return (r.id, r.flags, r.rcode(), r.edns, r.payload if r.edns >= 0 else 0, r.ednsflags, sections, firsts,
            r.question[0].name.to_text())


def _same(a: dns.message.Message, b: dns.message.Message, order: bool) -> None:
    assert _view(a, order) == _view(b, order)
    ttls = [sorted(rr.ttl for rr in getattr(m, s)) for m in (a, b) for s in ("answer", "authority", "additional")]
    for x, y in zip(ttls[:3], ttls[3:], strict=True):
        assert all(abs(i - j) <= 1 for i, j in zip(x, y, strict=True))      # asked within a second


async def test_lane_replies_are_the_chains(make_dns: Any, stand_in: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same questions to a block with a lane and to one without (a rewrite rule for another name keeps
    its queries on the chain): the same replies, rotations included, and the same cache behaviour."""
    up = await stand_in()
    up.behave = _varied
    body = f"cache 30\nloadbalance\nforward . 127.0.0.1:{up.port}\n"
    lane = await make_dns(body=body, load=False)
    chain = await make_dns(body="rewrite name exact unrelated.invalid other.invalid\n" + body, load=False)
    lane_chain_calls = slow_calls(lane, monkeypatch)
    chain_calls = slow_calls(chain, monkeypatch)
    for name, rdtype, kw in MISSES:         # misses: the lane writes them, rotation included
        q = query(name, rdtype, qid=321, **kw)
        a, b = await ask(lane.port, q), await ask(chain.port, q)
        _same(a, b, order=True)
    assert lane_chain_calls == [] and len(chain_calls) == len(MISSES)
    # hits: the fast table answers the lane's block (it rotates with a counter of its own), the cache
    # plugin the other; the same records, TTLs and flags
    for _round in range(2):
        for name, rdtype, kw in HITS:
            q = query(name, rdtype, qid=321, **kw)
            a, b = await ask(lane.port, q), await ask(chain.port, q)
            _same(a, b, order=False)
    assert lane_chain_calls == [] and len(up.seen) == 2 * len(MISSES)


async def test_slow_path_hits_of_lane_entries(make_dns: Any, stand_in: Any) -> None:
    """An entry the lane kept as bytes serves the chain too (TCP clients), with the fast table's bytes."""
    up = await stand_in()
    up.behave = _varied
    h = await make_dns(body=f"cache 30\nforward . 127.0.0.1:{up.port}\n", load=False)
    await ask(h.port, query("cname.example.test"))
    r = await h.q("cname.example.test", tcp=True)
    assert rrs(r) == {"cname.example.test. CNAME www.example.test.", "www.example.test. A 10.99.0.55",
                      "www.example.test. A 10.99.0.56"}
    assert all(rr.ttl <= 30 for rr in r.answer) and r.flags & dns.flags.AA and len(up.seen) == 1
    q = query("cname.example.test")
    assert _core(h).fast_answer(q.to_wire()) == await _core(h).slow_answer(q.to_wire())


async def test_metrics_of_lane_queries(make_dns: Any, stand_in: Any) -> None:
    up = await stand_in()
    h = await make_dns(body=f"prometheus 127.0.0.1:0\ncache 30\nforward . 127.0.0.1:{up.port}\n", load=False)
    await ask(h.port, query("www.example.test"))
    await ask(h.port, query("nope.example.test"))
    text = h.runtime.metrics.render()
    assert 'coredns_dns_requests_total{family="1",proto="udp",server="dns://:0",type="A",view="",zone="."} 2' in text
    assert 'coredns_dns_responses_total{plugin="",rcode="NXDOMAIN",server="dns://:0",view="",zone="."} 1' in text
    assert 'coredns_cache_misses_total{server="dns://:0",view="",zones="."} 2' in text
    assert f'coredns_proxy_request_duration_seconds_count{{proxy_name="forward",rcode="NOERROR",to="127.0.0.1:{up.port}"}} 1' \
        in text


async def test_explain_asks_no_upstream_unless_told(stand_in: Any, tmp_path: Any) -> None:
    from pyk3s.addons.dns.explain import explain
    up = await stand_in()
    corefile = tmp_path / "Corefile"
    corefile.write_text(f".:0 {{\n    cache 30\n    forward . 127.0.0.1:{up.port}\n}}\n")
    out = io.StringIO()
    reply = await explain("www.example.test", "A", str(corefile), out=out)
    assert up.seen == [] and "would ask" in out.getvalue() and reply.rcode() == dns.rcode.SERVFAIL
    reply = await explain("www.example.test", "A", str(corefile), out=io.StringIO(), query_upstream=True)
    assert rrs(reply) == {"www.example.test. A 10.99.0.55"} and len(up.seen) == 1


async def test_listener_socket_closed_in_flight(make_dns: Any, stand_in: Any) -> None:
    """A reply that comes back after the config dropped its listener goes nowhere (no error)."""
    up = await stand_in()
    up.behave = lambda q, proto: [(0.2, answer(q, "10.99.0.55").to_wire())]
    h = await make_dns(body=f"forward . 127.0.0.1:{up.port}\n", load=False)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(query("www.example.test").to_wire(), ("127.0.0.1", h.port))
    s.close()
    await asyncio.sleep(0.05)
    for lst in h.runtime.listeners.values():
        lst.udp.close()
    await asyncio.sleep(0.3)
    assert len(up.seen) == 1
