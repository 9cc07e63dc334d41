"""Fast table (fast.py): the common-query dict, the general path for the other forms, NXDOMAIN memo, counts."""

from __future__ import annotations

import asyncio
import socket

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype as T
from dns_support import rrs

from pyk3s.addons.dns.core import DnsCore
from pyk3s.addons.dns.fast import FastTable


def _core(dns_server) -> DnsCore:  # noqa: ANN001
    return dns_server.runtime.listeners[("127.0.0.1", 0)].core


def _table(dns_server) -> FastTable:  # noqa: ANN001
    fast = _core(dns_server).routing.fast
    assert fast is not None
    return fast


def _wire(name: str, rdtype: str = "A", qid: int = 0x1234, flags: int | None = None, **kw) -> bytes:
    kw.setdefault("use_edns", False)
    m = dns.message.make_query(name, rdtype, **kw)
    m.id = qid
    if flags is not None:
        m.flags = flags
    return m.to_wire()


async def _same_as_slow(core: DnsCore, wire: bytes) -> dns.message.Message:
    fa = core.fast_answer(wire)
    assert fa is not None
    f = dns.message.from_wire(fa)
    slow = dns.message.from_wire(await core.slow_answer(wire, "udp", ("127.0.0.1", 1)))
    assert f.id == slow.id
    assert (f.rcode(), f.flags, rrs(f), rrs(f, "authority"), rrs(f, "additional"), f.edns) == \
        (slow.rcode(), slow.flags, rrs(slow), rrs(slow, "authority"), rrs(slow, "additional"), slow.edns)
    return f


async def test_common_query_is_one_lookup(dns_server) -> None:  # noqa: ANN001
    fast = _table(dns_server)
    wire = _wire("web.apps.svc.cluster.local")
    assert wire[2:] in fast.direct
    reply = _core(dns_server).fast_answer(wire)
    assert reply == wire[:2] + fast.direct[wire[2:]][0]
    f = await _same_as_slow(_core(dns_server), wire)
    assert f.id == 0x1234 and f.flags & dns.flags.RD and rrs(f) == {"web.apps.svc.cluster.local. A 10.43.1.10"}
    srv = _wire("_http._tcp.web.apps.svc.cluster.local", "SRV", qid=7)
    assert srv[2:] in fast.direct
    await _same_as_slow(_core(dns_server), srv)


async def test_other_forms_take_the_general_path(dns_server) -> None:  # noqa: ANN001
    core = _core(dns_server)
    fast = _table(dns_server)
    forms = [
        _wire("WEB.Apps.svc.cluster.local"),                                   # mixed case
        _wire("web.apps.svc.cluster.local", flags=0),                          # RD=0
        _wire("web.apps.svc.cluster.local", flags=dns.flags.RD | dns.flags.CD),
        _wire("web.apps.svc.cluster.local", use_edns=0, payload=1232),
        _wire("web.apps.svc.cluster.local", use_edns=0, payload=4096, want_dnssec=True),
    ]
    for wire in forms:
        assert wire[2:] not in fast.direct
        f = await _same_as_slow(core, wire)
        assert f.question[0].name.to_text() == dns.message.from_wire(wire).question[0].name.to_text()
    f = dns.message.from_wire(core.fast_answer(forms[0]))
    assert f.question[0].name.to_text() == "WEB.Apps.svc.cluster.local."
    assert f.answer[0].name.to_text() == "WEB.Apps.svc.cluster.local."   # owner points into the question


async def test_rotating_answers_stay_out_of_the_direct_dict(dns_server) -> None:  # noqa: ANN001
    core = _core(dns_server)
    fast = _table(dns_server)
    wire = _wire("db.apps.svc.cluster.local")
    assert wire[2:] not in fast.direct
    firsts = set()
    for qid in range(4):
        wire = _wire("db.apps.svc.cluster.local", qid=qid)
        f = await _same_as_slow(core, wire)
        firsts.add(f.answer[0][0].to_text())
    assert firsts == {"10.42.2.10", "10.42.2.11"}


async def test_nxdomain_memo(dns_server) -> None:  # noqa: ANN001
    core = _core(dns_server)
    fast = _table(dns_server)
    fast.drain()
    wire = _wire("web.apps.svc.cluster.local.svc.cluster.local")
    first = core.fast_answer(wire)
    assert wire[2:] in fast.nx_direct
    again = _wire("web.apps.svc.cluster.local.svc.cluster.local", qid=99)
    second = core.fast_answer(again)
    assert first is not None and second is not None and second[:2] == again[:2] and second[2:] == first[2:]
    f = await _same_as_slow(core, again)
    assert f.rcode() == dns.rcode.NXDOMAIN
    assert fast.drain() == {(T.A, dns.rcode.NXDOMAIN): 3}     # two here, one in _same_as_slow
    mixed = _wire("Web.apps.svc.cluster.local.svc.cluster.local")
    await _same_as_slow(core, mixed)
    assert mixed[2:] not in fast.nx_direct


async def test_udp_socket_path_counts_and_survives_rebuild(dns_server) -> None:  # noqa: ANN001
    fast = _table(dns_server)
    fast.drain()
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        await loop.sock_connect(s, ("127.0.0.1", dns_server.port))
        for qid in range(5):
            wire = _wire("web.apps.svc.cluster.local", qid=qid)
            await loop.sock_sendall(s, wire)
            reply = await asyncio.wait_for(loop.sock_recv(s, 65535), 2)
            assert reply == wire[:2] + fast.direct[wire[2:]][0]
    finally:
        s.close()
    await dns_server.runtime.rebuild_fast()
    new = _table(dns_server)
    assert new is not fast
    assert new.drain() == {(T.A, dns.rcode.NOERROR): 5}
