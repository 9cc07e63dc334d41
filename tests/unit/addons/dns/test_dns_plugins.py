"""hosts, forward, cache, rewrite, loadbalance, errors, health/ready/prometheus and reload (spec dns.md section 3)."""

from __future__ import annotations

import asyncio
import struct

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from dns_support import rrs


class Upstream(asyncio.DatagramProtocol):
    """Stand-in upstream resolver on loopback: knows www.example.test only."""

    def __init__(self, delay: float = 0.0) -> None:
        self.count = 0
        self.delay = delay
        self.transport = None

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def answer(self, data: bytes) -> bytes:
        self.count += 1
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        name = q.question[0].name.to_text().lower()
        if name == "www.example.test." and q.question[0].rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "A", "10.99.0.55"))
        elif name != "www.example.test.":
            r.set_rcode(dns.rcode.NXDOMAIN)
        return r.to_wire()

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, lambda: self.transport.sendto(self.answer(data), addr))
        else:
            self.transport.sendto(self.answer(data), addr)


@pytest.fixture
async def upstream():  # noqa: ANN201
    loop = asyncio.get_running_loop()
    proto = Upstream()

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = struct.unpack(">H", await reader.readexactly(2))[0]
        out = proto.answer(await reader.readexactly(n))
        writer.write(struct.pack(">H", len(out)) + out)
        await writer.drain()
        writer.close()
    # one port number for UDP and TCP: the TCP one may be taken by another program on a shared machine
    for _ in range(20):
        tr, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
        port = tr.get_extra_info("sockname")[1]
        try:
            srv = await asyncio.start_server(tcp, "127.0.0.1", port)
            break
        except OSError:
            tr.close()
    else:
        pytest.fail("no port free for both UDP and TCP")
    proto.port = port  # type: ignore[attr-defined]
    yield proto
    tr.close()
    srv.close()


HOSTS_FILE = "10.99.0.10 k3s-server\n10.99.0.11 agent-1 Agent-Host\nfd00::11 agent-1\n"


async def test_hosts_file_ttl_ptr_before_kubernetes(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(files={"NodeHosts": HOSTS_FILE}, body="""
        hosts NodeHosts {
          ttl 60
          reload 15s
          fallthrough
        }
        kubernetes cluster.local in-addr.arpa ip6.arpa {
          pods insecure
        }
        cache 30
        """)
    r = await h.q("K3S-Server", "A")
    assert rrs(r) == {"k3s-server. A 10.99.0.10"} and r.answer[0].ttl == 30
    r = await h.q("agent-host", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and not r.authority   # NODATA without SOA (O5)
    r = await h.q("agent-1", "AAAA")
    assert rrs(r) == {"agent-1. AAAA fd00::11"}
    # X1: the node IP is also the kubernetes endpoint, but hosts runs first
    r = await h.q("10.0.99.10.in-addr.arpa", "PTR")
    assert rrs(r) == {"10.0.99.10.in-addr.arpa. PTR k3s-server."}
    r = await h.q("web.apps.svc.cluster.local", "A")           # unknown to hosts: falls through
    assert rrs(r) == {"web.apps.svc.cluster.local. A 10.43.1.10"}


async def test_hosts_inline_without_fallthrough(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="hosts {\n  10.99.1.1 inline.example\n  ttl 7\n}\n")
    r = await h.q("inline.example", "A")
    assert rrs(r) == {"inline.example. A 10.99.1.1"} and r.answer[0].ttl == 7
    r = await h.q("other.example", "A")
    assert r.rcode() == dns.rcode.SERVFAIL


async def test_hosts_reload(make_dns, tmp_path) -> None:  # noqa: ANN001
    h = await make_dns(files={"NodeHosts": "10.99.0.10 n1\n"}, body="hosts NodeHosts {\n  reload 0.2s\n}\n")
    assert rrs(await h.q("n2", "A")) == set()
    (tmp_path / "NodeHosts").write_text("10.99.0.10 n1\n10.99.0.12 n2\n")
    await asyncio.sleep(0.6)
    assert rrs(await h.q("n2", "A")) == {"n2. A 10.99.0.12"}


async def test_forward_udp_tcp_and_resolv_conf(make_dns, upstream, tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "resolv.conf").write_text("search example\nnameserver 127.0.0.1\noptions ndots:5\n")
    h = await make_dns(body=f"""
        kubernetes cluster.local
        forward . 127.0.0.1:{upstream.port}
        """)
    r = await h.q("www.example.test", "A")
    assert rrs(r) == {"www.example.test. A 10.99.0.55"}
    r = await h.q("www.example.test", "A", tcp=True)
    assert rrs(r) == {"www.example.test. A 10.99.0.55"}
    r = await h.q("nothing.example.test", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    r = await h.q("nope.apps.svc.cluster.local", "A")            # cluster names never reach forward
    assert r.rcode() == dns.rcode.NXDOMAIN and upstream.count == 3


async def test_forward_resolv_conf_file(make_dns, upstream, tmp_path) -> None:  # noqa: ANN001
    from pyk3s.addons.dns.config import build_blocks
    from pyk3s.addons.dns.corefile import parse_corefile
    from pyk3s.addons.dns.plugins.forward import read_resolv_conf
    path = tmp_path / "resolv.conf"
    path.write_text("search x\nnameserver 127.0.0.1\nnameserver 127.0.0.2 # second\n")
    assert read_resolv_conf(str(path)) == ["127.0.0.1", "127.0.0.2"]
    (b,) = build_blocks(parse_corefile(f".:53 {{\n forward . {path}\n}}\n"), "Corefile")
    assert [(u.host, u.port) for u in b.plugins[0].upstreams] == [("127.0.0.1", 53), ("127.0.0.2", 53)]


async def test_forward_except_policy_and_dead_upstream(make_dns, upstream) -> None:  # noqa: ANN001
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()                       # nothing listens there: ICMP port unreachable
    h = await make_dns(body=f"""
        forward . 127.0.0.1:{dead} 127.0.0.1:{upstream.port} {{
          except blocked.test
          policy sequential
          max_fails 1
        }}
        """)
    r = await h.q("www.example.test", "A")
    assert rrs(r) == {"www.example.test. A 10.99.0.55"}
    r = await h.q("x.blocked.test", "A")
    assert r.rcode() == dns.rcode.SERVFAIL                      # excepted, nothing after forward


async def test_forward_max_concurrent_refused(make_dns) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    slow = Upstream(delay=0.5)
    tr, _ = await loop.create_datagram_endpoint(lambda: slow, local_addr=("127.0.0.1", 0))
    try:
        h = await make_dns(body=f"forward . 127.0.0.1:{tr.get_extra_info('sockname')[1]} {{\n  max_concurrent 1\n}}\n")
        a, b = await asyncio.gather(h.q("www.example.test", "A"), h.q("www.example.test", "A"))
        assert sorted([a.rcode(), b.rcode()]) == [dns.rcode.NOERROR, dns.rcode.REFUSED]
    finally:
        tr.close()


async def test_cache_ttl_rewrite_and_hits(make_dns, upstream) -> None:  # noqa: ANN001
    h = await make_dns(body=f"cache 30\nforward . 127.0.0.1:{upstream.port}\n")
    r = await h.q("www.example.test", "A")
    assert r.answer[0].ttl == 30 and upstream.count == 1
    r = await h.q("WWW.example.test", "A")
    assert r.answer[0].ttl <= 30 and upstream.count == 1 and r.flags & dns.flags.AA
    r = await h.q("nothing.example.test", "A")
    await h.q("nothing.example.test", "A")
    assert upstream.count == 2


async def test_cache_options_parse() -> None:
    from pyk3s.addons.dns.config import build_blocks
    from pyk3s.addons.dns.corefile import parse_corefile
    src = ".:53 {\n cache 60 example.org {\n  success 100 120 10\n  denial 50\n  prefetch 5 30s 20%\n  serve_stale 1h verify\n  servfail 2s\n }\n}\n"
    (b,) = build_blocks(parse_corefile(src), "Corefile")
    o = b.plugins[0].opts
    assert (o.success_cap, o.success_ttl, o.success_min, o.denial_cap, o.denial_ttl) == (100, 120, 10, 50, 60)
    assert (o.prefetch, o.prefetch_window, o.prefetch_percent, o.stale, o.stale_verify, o.servfail_ttl) == \
        (5, 30.0, 20, 3600.0, True, 2.0)
    assert o.zones == ("example.org.",)


async def test_rewrite_name_and_answer(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="""
        rewrite name exact api.example.test web.apps.svc.cluster.local answer auto
        rewrite name suffix .corp.test .apps.svc.cluster.local answer auto
        rewrite name regex (.*)-old\\.example\\.test {1}.apps.svc.cluster.local answer name (.*)\\.apps\\.svc\\.cluster\\.local {1}-old.example.test
        rewrite type AAAA A
        kubernetes cluster.local
        """)
    r = await h.q("api.example.test", "A")
    assert rrs(r) == {"api.example.test. A 10.43.1.10"}
    assert r.question[0].name.to_text() == "api.example.test."
    r = await h.q("db.corp.test", "A")
    assert len(r.answer[0]) == 2 and r.answer[0].name.to_text() == "db.corp.test."
    r = await h.q("web-old.example.test", "A")
    assert rrs(r) == {"web-old.example.test. A 10.43.1.10"}


async def test_loadbalance_rotates(make_dns) -> None:  # noqa: ANN001
    h = await make_dns()
    firsts = set()
    for _ in range(6):
        r = await h.q("db.apps.svc.cluster.local", "A")
        firsts.add(r.answer[0][0].address)
    assert firsts == {"10.42.2.10", "10.42.2.11"}


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_health_ready_prometheus(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(load=False, body="""
        health 127.0.0.1:0
        ready 127.0.0.1:0
        prometheus 127.0.0.1:0
        errors
        kubernetes cluster.local
        """)
    http = h.runtime.http
    ports = sorted({http.bound_port(*a) for a in http.servers})
    paths = {}
    for addr, routes in http.routes.items():
        for path in routes:
            paths[path] = http.bound_port(*addr)
    assert await http_get(paths["/health"], "/health") == (200, "OK")
    status, body = await http_get(paths["/ready"], "/ready")
    assert status == 503 and "kubernetes" in body
    await h.load()
    assert await http_get(paths["/ready"], "/ready") == (200, "OK")
    await h.q("nope.apps.svc.cluster.local", "A")
    status, body = await http_get(paths["/metrics"], "/metrics")
    assert status == 200
    assert 'coredns_dns_requests_total{' in body and 'coredns_dns_responses_total{' in body
    assert 'rcode="NXDOMAIN"' in body and "coredns_dns_request_duration_seconds_bucket" in body
    assert 'server="dns://:0"' in body
    assert len(ports) == 1      # three plugins on one address share one HTTP listener


async def test_reload_keeps_last_good_config(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="kubernetes cluster.local\nreload 2s\n")
    rt = h.runtime
    path = rt.corefile_path
    path.write_text(path.read_text().replace("kubernetes cluster.local", "kubernetes cluster.local {\n  bogus\n}"))
    assert await rt.reload() is False
    assert 'coredns_reload_failed_total 1' in rt.metrics.render()
    r = await h.q("web.apps.svc.cluster.local", "A")
    assert rrs(r) == {"web.apps.svc.cluster.local. A 10.43.1.10"}
    path.write_text(".:0 {\n  bind 127.0.0.1\n  hosts {\n    10.99.3.3 reloaded.test\n  }\n  reload 2s\n}\n")
    assert await rt.reload() is True
    r = await h.q("reloaded.test", "A")
    assert rrs(r) == {"reloaded.test. A 10.99.3.3"}


async def test_whoami_default(tmp_path) -> None:  # noqa: ANN001
    from pyk3s.addons.dns.runtime import DnsRuntime
    rt = DnsRuntime(None, dns_port=0)
    await rt.start()
    try:
        q = dns.message.make_query("example.org", "A")
        r = await dns.asyncquery.udp(q, "127.0.0.1", timeout=2, port=rt.port_of())
        assert {rr.rdtype for rr in r.additional} == {dns.rdatatype.A, dns.rdatatype.SRV}
    finally:
        await rt.stop()


