"""UDP serving loop (server.UdpDns) with recvmmsg/sendmmsg batches (mmsg.py) and its recvfrom fallback:
real sockets on loopback, many queries in flight, fast and slow answers mixed, IPv4 and IPv6."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from types import SimpleNamespace

import dns.message
import dns.rcode
import pytest
from dns_support import rrs

from pyk3s.addons.dns import mmsg, server
from pyk3s.addons.dns.mmsg import Batch
from pyk3s.addons.dns.server import UdpDns


def _batched() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return Batch.open(s) is not None


pytestmark = pytest.mark.skipif(not _batched(), reason="no recvmmsg/sendmmsg here")


def _v6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HOSTS = [("127.0.0.1", socket.AF_INET)] + ([("::1", socket.AF_INET6)] if _v6() else [])


def _exchange(host: str, family: int, port: int, queries: list[bytes], nsock: int = 4,
              timeout: float = 5.0, expect: int | None = None) -> dict[int, bytes]:
    """Send every query at once (spread over nsock sockets), then collect replies until `expect` (all)
    came or `timeout` passes; keyed by ID. A reply must come back to the socket its query left from."""
    socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(nsock)]
    owner: dict[int, int] = {}
    got: dict[int, bytes] = {}
    try:
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((host, 0))
        for j, q in enumerate(queries):
            k = j % nsock
            owner[int.from_bytes(q[:2], "big")] = k
            socks[k].sendto(q, (host, port))
        deadline = time.monotonic() + timeout
        expect = len(queries) if expect is None else expect
        while len(got) < expect and time.monotonic() < deadline:
            ready, _, _ = select.select(socks, [], [], min(0.2, max(0.0, deadline - time.monotonic())))
            for s in ready:
                data, src = s.recvfrom(65535)
                assert src[1] == port
                qid = int.from_bytes(data[:2], "big")
                assert qid not in got, "two replies to one query"
                assert owner[qid] == socks.index(s)
                got[qid] = data
    finally:
        for s in socks:
            s.close()
    return got


class _Fast:
    """Stands in for FastTable: `direct` maps a query without its ID to (reply body, class)."""

    def __init__(self, bodies: dict[bytes, bytes]) -> None:
        self.direct = {k: (v, 0) for k, v in bodies.items()}
        self.hits = [0]

    def answer_other(self, data: bytes) -> bytes | None:
        return data[:2] + b"other:" + data[2:] if data[2:3] == b"O" else None


class _Core:
    def __init__(self, fast: _Fast | None) -> None:
        self.routing = SimpleNamespace(fast=fast, lanes=None)
        self.gate: asyncio.Event | None = None
        self.peers: list[tuple] = []

    async def slow_answer(self, data: bytes, proto: str, addr: tuple) -> bytes | None:
        assert proto == "udp"
        self.peers.append(addr)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        return None if data[2:3] == b"D" else data[:2] + b"slow:" + data[2:]


def _queries(n: int) -> tuple[list[bytes], dict[int, bytes | None], dict[bytes, bytes]]:
    """n queries cycling through the kinds: F (direct, short and long bodies), O (answer_other),
    S (slow), D (slow, no reply). Returns the queries, the expected reply per ID, the direct bodies."""
    bodies: dict[bytes, bytes] = {}
    queries, want = [], {}
    for qid in range(n):
        kind = "FFOSFDFF"[qid % 8]
        payload = kind.encode() + b"-%d" % (qid % 37)
        q = qid.to_bytes(2, "big") + payload
        if kind == "F":
            body = bodies.setdefault(payload, b"body" + payload * (1 + qid % 37 % 3 * 20))
            want[qid] = q[:2] + body
        elif kind == "O":
            want[qid] = q[:2] + b"other:" + payload
        elif kind == "S":
            want[qid] = q[:2] + b"slow:" + payload
        else:
            want[qid] = None
        queries.append(q)
    return queries, want, bodies


def _check(got: dict[int, bytes], want: dict[int, bytes | None]) -> None:
    assert {k for k, v in want.items() if v is not None} == set(got)
    for qid, reply in got.items():
        assert reply == want[qid]


async def _serve(host: str, family: int, core: _Core) -> tuple[UdpDns, int]:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((host, 0))
    sock.setblocking(False)
    return UdpDns(core, sock), sock.getsockname()[1]  # type: ignore[arg-type]


@pytest.mark.parametrize(("host", "family"), HOSTS)
@pytest.mark.parametrize("mode", ["batch", "no-libc", "off"])
async def test_many_in_flight_mixed(host: str, family: int, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "no-libc":
        monkeypatch.setattr(mmsg, "_funcs", None)
    elif mode == "off":
        monkeypatch.setattr(server, "BATCHED", False)
    queries, want, bodies = _queries(1200)
    core = _Core(_Fast(bodies))
    udp, port = await _serve(host, family, core)
    try:
        assert (udp.batch is not None) == (mode == "batch")
        got = await asyncio.to_thread(_exchange, host, family, port, queries, 4, 5.0,
                                      sum(1 for v in want.values() if v is not None))
        _check(got, want)
        assert core.routing.fast.hits[0] == sum(1 for q in queries if q[2:3] == b"F")
        # the slow path gets the sender's address as recvfrom gives it
        assert all(p[0] == host and len(p) == (4 if family == socket.AF_INET6 else 2) for p in core.peers)
    finally:
        udp.close()


@pytest.mark.parametrize(("host", "family"), HOSTS)
async def test_queued_datagrams_come_in_full_batches(host: str, family: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries already waiting when the reader starts: slots fill up, runs of fast replies are split
    by slow queries and by replies too big for a slot (those go out through sendto)."""
    monkeypatch.setattr(server, "SEND_SIZE", 64)
    queries, want, bodies = _queries(500)
    core = _Core(_Fast(bodies))
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((host, 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    sizes: list[int] = []
    client = socket.socket(family, socket.SOCK_DGRAM)
    try:
        client.bind((host, 0))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for q in queries:
            client.sendto(q, (host, port))
        udp = UdpDns(core, sock)  # type: ignore[arg-type]
        assert udp.batch is not None
        recvmmsg = udp.batch._recv

        def counted(*args: object) -> int:
            n = recvmmsg(*args)
            sizes.append(n)
            return n

        udp.batch._recv = counted
        assert any(len(b) > 64 for b in bodies.values()) and any(len(b) <= 64 for b in bodies.values())
        got: dict[int, bytes] = {}
        client.setblocking(False)
        deadline = time.monotonic() + 5
        expected = sum(1 for v in want.values() if v is not None)
        while len(got) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            while True:
                try:
                    data = client.recv(65535)
                except BlockingIOError:
                    break
                got[int.from_bytes(data[:2], "big")] = data
        _check(got, want)
        assert sizes[:7] == [server.DRAIN] * 7
        udp.close()
    finally:
        client.close()
        sock.close()


async def test_slow_queries_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_PENDING", 5)
    core = _Core(_Fast({b"F-1": b"fast"}))
    core.gate = asyncio.Event()
    udp, port = await _serve("127.0.0.1", socket.AF_INET, core)
    try:
        slow = [qid.to_bytes(2, "big") + b"S-%d" % qid for qid in range(60)]
        fast = [qid.to_bytes(2, "big") + b"F-1" for qid in range(100, 110)]
        task = asyncio.ensure_future(asyncio.to_thread(_exchange, "127.0.0.1", socket.AF_INET, port,
                                                       slow + fast, 1, 3.0, 15))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(udp.pending) == 5 and core.routing.fast.hits[0] == 10:
                break
        await asyncio.sleep(0.1)
        assert len(udp.pending) == 5        # the other 55 were dropped, fast ones still answered
        core.gate.set()
        got = await task
        assert sorted(got) == list(range(5)) + list(range(100, 110))
    finally:
        udp.close()


async def test_no_fast_table_yet() -> None:
    core = _Core(None)
    udp, port = await _serve("127.0.0.1", socket.AF_INET, core)
    try:
        queries = [qid.to_bytes(2, "big") + b"F-1" for qid in range(50)]
        got = await asyncio.to_thread(_exchange, "127.0.0.1", socket.AF_INET, port, queries)
        assert got == {qid: qid.to_bytes(2, "big") + b"slow:F-1" for qid in range(50)}
    finally:
        udp.close()


def test_batch_addresses_and_replies() -> None:
    for host, family in HOSTS:
        srv = socket.socket(family, socket.SOCK_DGRAM)
        cli = socket.socket(family, socket.SOCK_DGRAM)
        try:
            srv.bind((host, 0))
            srv.setblocking(False)
            cli.bind((host, 0))
            cli.settimeout(2)
            b = Batch.open(srv, slots=4, recv_size=64, send_size=16)
            assert b is not None and b.recv() == 0
            for i in range(6):
                cli.sendto(b"%02d" % i + b"x" * i, srv.getsockname())
            time.sleep(0.05)
            assert b.recv() == 4
            for i in range(4):
                off, soff, li, bi = b.slot[i]
                assert b.rbuf[off:off + b.lengths[li]].tobytes() == b"%02d" % i + b"x" * i
                assert b.address(i) == cli.getsockname()
                b.sbuf[soff:soff + 3] = b"abc"
                b.body_lengths[bi] = 3
            b.send(1, 3)                    # slot 0 gets no reply
            assert [cli.recvfrom(100)[0] for _ in range(3)] == [b"01abc", b"02abc", b"03abc"]
            assert b.recv() == 2 and b.recv() == 0
        finally:
            srv.close()
            cli.close()


def test_batch_only_for_udp_ip() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        assert Batch.open(s) is None
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        assert Batch.open(s) is None


def _wire(name: str, rdtype: str, qid: int, **kw) -> bytes:
    kw.setdefault("use_edns", False)
    m = dns.message.make_query(name, rdtype, **kw)
    m.id = qid
    return m.to_wire()


async def test_runtime_answers_in_flight_match_slow_path(dns_server) -> None:  # noqa: ANN001
    """The real server under a burst: direct hits, the general fast path (case, EDNS), the NXDOMAIN
    memo and slow queries, each answered as DnsCore.slow_answer would."""
    core = dns_server.runtime.listeners[("127.0.0.1", 0)].core
    assert dns_server.runtime.listeners[("127.0.0.1", 0)].udp.batch is not None
    forms = [("web.apps.svc.cluster.local", "A", {}), ("_http._tcp.web.apps.svc.cluster.local", "SRV", {}),
             ("WEB.apps.svc.cluster.local", "A", {}), ("web.apps.svc.cluster.local", "A", {"use_edns": 0}),
             ("db.apps.svc.cluster.local", "A", {}), ("nope.apps.svc.cluster.local", "A", {}),
             ("web.apps.svc.cluster.local.svc.cluster.local", "A", {}), ("ds.apps.svc.cluster.local", "AAAA", {}),
             ("10.1.43.10.in-addr.arpa", "PTR", {}), ("web.apps.svc.cluster.local", "TXT", {})]
    queries = [_wire(name, t, qid, **kw) for qid, (name, t, kw) in
               ((qid, forms[qid % len(forms)]) for qid in range(800))]
    expect = []
    for name, t, kw in forms:
        m = dns.message.from_wire(await core.slow_answer(_wire(name, t, 0, **kw), "udp", ("127.0.0.1", 1)))
        expect.append((m.rcode(), m.flags, rrs(m), rrs(m, "authority"), m.edns))
    got = await asyncio.to_thread(_exchange, "127.0.0.1", socket.AF_INET, dns_server.port, queries)
    assert set(got) == set(range(len(queries)))
    for qid, reply in got.items():
        m = dns.message.from_wire(reply)
        assert m.id == qid
        assert (m.rcode(), m.flags, rrs(m), rrs(m, "authority"), m.edns) == expect[qid % len(forms)], forms[qid % len(forms)]
    assert any(e[0] == dns.rcode.NXDOMAIN for e in expect)
