"""Wire behaviour (spec dns.md O14): EDNS, truncation and TCP retry, FORMERR/NOTIMP/REFUSED, fuzzing, dig."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import pytest
from dns_support import NAMESPACES, PODS, SERVICES, SLICES, ep, eps, rrs, svc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk3s.addons.dns.core import DnsCore


async def udp_raw(port: int, data: bytes, timeout: float = 1.0) -> bytes | None:
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        await loop.sock_connect(s, ("127.0.0.1", port))
        await loop.sock_sendall(s, data)
        return await asyncio.wait_for(loop.sock_recv(s, 65535), timeout)
    except TimeoutError:
        return None
    finally:
        s.close()


async def test_edns_echo_and_do_bit(dns_server) -> None:  # noqa: ANN001
    r = await dns_server.q("web.apps.svc.cluster.local", "A", use_edns=0, payload=1232, want_dnssec=True)
    assert r.edns == 0 and r.ednsflags & dns.flags.DO
    r = await dns_server.q("web.apps.svc.cluster.local", "A")
    assert r.edns == -1


async def test_badvers(dns_server) -> None:  # noqa: ANN001
    r = await dns_server.q("web.apps.svc.cluster.local", "A", use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS


async def test_truncation_and_tcp_retry(make_dns) -> None:  # noqa: ANN001
    many = [ep(f"10.42.7.{i}") for i in range(1, 60)]
    h = await make_dns(load=False)
    await h.load(SERVICES + [svc("apps", "big", None, [("p", 1, "TCP")])],
                 SLICES + [eps("apps", "big-1", "big", many, [("p", 1, "TCP")])], PODS, NAMESPACES)
    r = await h.q("big.apps.svc.cluster.local", "A")
    assert r.flags & dns.flags.TC
    r = await h.q("big.apps.svc.cluster.local", "A", use_edns=0, payload=4096)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 59
    r = await h.q("big.apps.svc.cluster.local", "A", tcp=True)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 59


async def test_formerr_notimp_refused(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(extra="", body="kubernetes cluster.local\n")
    q = dns.message.make_query("web.apps.svc.cluster.local", "A")
    wire = bytearray(q.to_wire())
    wire[12] = 80                                  # label length beyond the packet
    raw = await udp_raw(h.port, bytes(wire))
    assert raw is not None and raw[3] & 0xF == dns.rcode.FORMERR
    q.set_opcode(dns.opcode.UPDATE)
    raw = await udp_raw(h.port, q.to_wire())
    assert raw is not None and raw[3] & 0xF == dns.rcode.NOTIMP
    q = dns.message.make_query("web.apps.svc.cluster.local", "A", rdclass=dns.rdataclass.CH)
    r = dns.message.from_wire(await udp_raw(h.port, q.to_wire()))
    assert r.rcode() == dns.rcode.REFUSED
    # no server block for the name: the only block is cluster.local, here "." is absent
    assert await udp_raw(h.port, b"\x00\x01") is None   # no header: dropped


async def test_zone_routing_refused(make_dns, tmp_path) -> None:  # noqa: ANN001
    corefile = tmp_path / "Corefile2"
    corefile.write_text("cluster.local:0 {\n  bind 127.0.0.1\n  kubernetes\n}\n")
    from pyk3s.addons.dns.runtime import DnsRuntime
    rt = DnsRuntime(str(corefile))
    await rt.start()
    try:
        q = dns.message.make_query("www.example.test", "A")
        r = dns.message.from_wire(await udp_raw(rt.port_of(), q.to_wire()))
        assert r.rcode() == dns.rcode.REFUSED
    finally:
        await rt.stop()


async def test_compression_loop_and_wrong_counts(dns_server) -> None:  # noqa: ANN001
    hdr = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0)
    loop_pkt = hdr + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    raw = await udp_raw(dns_server.port, loop_pkt)
    assert raw is not None and raw[3] & 0xF == dns.rcode.FORMERR
    q = dns.message.make_query("web.apps.svc.cluster.local", "A").to_wire()
    wrong = q[:4] + b"\x00\x05" + q[6:]
    raw = await udp_raw(dns_server.port, wrong)
    assert raw is not None and raw[3] & 0xF == dns.rcode.FORMERR


async def test_fast_path_matches_slow_path(dns_server) -> None:  # noqa: ANN001
    core: DnsCore = dns_server.runtime.listeners[("127.0.0.1", 0)].core
    fast = core.routing.fast
    assert fast is not None and len(fast) > 10
    for name, t in [("web.apps.svc.cluster.local", "A"), ("_http._tcp.web.apps.svc.cluster.local", "SRV"),
                    ("Db-0.DB.apps.svc.cluster.local", "A"), ("10.1.43.10.in-addr.arpa", "PTR"),
                    ("web.apps.svc.cluster.local.svc.cluster.local", "A"),
                    ("x.apps.svc.cluster.local.apps.svc.cluster.local", "AAAA")]:
        for kw in ({}, {"use_edns": 0, "payload": 1232}):
            wire = dns.message.make_query(name, t, **kw).to_wire()
            fa = core.fast_answer(wire)
            assert fa is not None, name
            slow = dns.message.from_wire(await core.slow_answer(wire, "udp", ("127.0.0.1", 1)))
            f = dns.message.from_wire(fa)
            assert (f.rcode(), f.flags, rrs(f), rrs(f, "authority"), rrs(f, "additional")) == \
                (slow.rcode(), slow.flags, rrs(slow), rrs(slow, "authority"), rrs(slow, "additional"))
            assert f.question[0].name.to_text() == name + "."
            assert f.edns == slow.edns


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"]))
def test_fuzz_core_never_raises(data: bytes, prefix: bytes) -> None:
    from dns_support import DEFAULT_BODY  # noqa: F401
    core = _fuzz_core()
    pkt = prefix + data
    core.fast_answer(pkt)
    out = asyncio.run(core.slow_answer(pkt, "udp", ("127.0.0.1", 1)))
    assert out is None or len(out) >= 12


_CORE: list[DnsCore] = []


def _fuzz_core() -> DnsCore:
    if not _CORE:
        from dns_support import DEFAULT_BODY

        from pyk3s.addons.dns.config import build_blocks
        from pyk3s.addons.dns.core import Routing
        from pyk3s.addons.dns.corefile import parse_corefile
        from pyk3s.addons.dns.plugins.kubernetes import KubernetesPlugin
        from pyk3s.addons.dns.precompute import build_fast
        blocks = build_blocks(parse_corefile(".:53 {\n" + DEFAULT_BODY + "}\n"), "Corefile")
        next(p for p in blocks[0].plugins if isinstance(p, KubernetesPlugin)).load(SERVICES, SLICES, PODS, NAMESPACES)
        routing = asyncio.run(build_fast(Routing.of(blocks)))
        _CORE.append(DnsCore(routing))
    return _CORE[0]


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig not installed")
async def test_dig(dns_server) -> None:  # noqa: ANN001
    proc = await asyncio.create_subprocess_exec(
        "dig", "@127.0.0.1", "-p", str(dns_server.port), "+short", "+time=2", "+tries=1",
        "_http._tcp.web.apps.svc.cluster.local", "SRV", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out.decode().strip() == "0 100 80 web.apps.svc.cluster.local."
    proc = await asyncio.create_subprocess_exec(
        "dig", "@127.0.0.1", "-p", str(dns_server.port), "+tcp", "+time=2", "+tries=1",
        "nope.apps.svc.cluster.local", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert "status: NXDOMAIN" in out.decode() and "flags: qr aa rd" in out.decode()
