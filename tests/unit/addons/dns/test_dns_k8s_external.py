"""k8s_external (CoreDNS plugin/k8s_external): Services' external IPs and load balancer addresses under
their own zone, the apex SOA/NS, headless Services, fallthrough; cases after CoreDNS's external_test.go
and apex_test.go, served by a real server with the kubernetes plugin's index."""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from dns_support import ep, eps, ns, rrs, svc

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.plugins.k8s_external import K8sExternalPlugin

HTTP = [("http", 80, "TCP")]


def _with(obj: dict, external_ips: list[str] = (), lb: list[dict] = ()) -> dict:
    if external_ips:
        obj["spec"]["externalIPs"] = list(external_ips)
    if lb:
        obj["spec"]["type"] = "LoadBalancer"
        obj["status"] = {"loadBalancer": {"ingress": list(lb)}}
    return obj


SERVICES = [
    _with(svc("testns", "svc1", ["10.0.0.1"], HTTP), ["1.2.3.4"]),
    _with(svc("testns", "svc6", ["10.0.0.6"], HTTP), ["1:2::5"]),
    _with(svc("testns", "svc11", ["10.0.0.11"], HTTP), lb=[{"ip": "2.3.4.5"}]),
    _with(svc("testns", "svc12", ["10.0.0.12"], HTTP), lb=[{"hostname": "dummy.hostname"}]),
    svc("testns", "svc-headless", None, HTTP),
    svc("testns", "svc0", ["10.0.0.10"], HTTP),                       # no external address
    _with(svc("svc-nons", "svc0", ["10.0.0.20"], HTTP), ["1.2.3.9"]),  # namespace unknown
]
SLICES = [eps("testns", "svc-headless-1", "svc-headless",
              [ep("1.2.3.4", hostname="endpoint-svc-0"), ep("1.2.3.5", hostname="endpoint-svc-1")], HTTP)]
NAMESPACES = [ns("testns")]

BODY = """
    hosts {
      10.99.0.9 dummy.hostname
      fallthrough
    }
    kubernetes cluster.local
    k8s_external example.com in-addr.arpa {
      headless
    }
"""
SOA = "example.com. SOA ns1.dns.example.com. hostmaster.dns.example.com. 12345 7200 1800 86400 5"


@pytest.fixture
async def ext(make_dns):  # noqa: ANN001, ANN201
    h = await make_dns(body=BODY, load=False)
    await h.load(services=SERVICES, slices=SLICES, pods=[], namespaces=NAMESPACES)
    return h


async def test_external_ips_and_load_balancer_addresses(ext) -> None:  # noqa: ANN001
    r = await ext.q("svc1.testns.example.com", "A")
    assert rrs(r) == {"svc1.testns.example.com. A 1.2.3.4"} and r.answer[0].ttl == 5 and r.flags & dns.flags.AA
    assert rrs(await ext.q("svc6.testns.example.com", "AAAA")) == {"svc6.testns.example.com. AAAA 1:2::5"}
    assert rrs(await ext.q("svc11.testns.example.com", "A")) == {"svc11.testns.example.com. A 2.3.4.5"}
    r = await ext.q("svc1.testns.example.com", "AAAA")                 # exists, no IPv6: NODATA
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and rrs(r, "authority") == {SOA}
    r = await ext.q("svc1.testns.example.com", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and rrs(r, "authority") == {SOA}


async def test_load_balancer_hostname_is_a_cname(ext) -> None:  # noqa: ANN001
    r = await ext.q("svc12.testns.example.com", "A")
    assert rrs(r) == {"svc12.testns.example.com. CNAME dummy.hostname.", "dummy.hostname. A 10.99.0.9"}
    r = await ext.q("svc12.testns.example.com", "SRV")
    assert rrs(r) == {"svc12.testns.example.com. SRV 0 100 80 dummy.hostname."}
    assert rrs(r, "additional") == {"dummy.hostname. A 10.99.0.9"}


async def test_srv(ext) -> None:  # noqa: ANN001
    for name in ("svc1.testns.example.com", "_http._tcp.svc1.testns.example.com"):
        r = await ext.q(name, "SRV")
        assert rrs(r) == {f"{name}. SRV 0 100 80 svc1.testns.example.com."}
        assert rrs(r, "additional") == {"svc1.testns.example.com. A 1.2.3.4"}
    r = await ext.q("_http._tcp.svc6.testns.example.com", "SRV")
    assert rrs(r, "additional") == {"svc6.testns.example.com. AAAA 1:2::5"}
    r = await ext.q("*._not-udp-or-tcp.svc1.testns.example.com", "SRV")
    assert r.rcode() == dns.rcode.NXDOMAIN and rrs(r, "authority") == {SOA}


async def test_missing_names_are_nxdomain(ext) -> None:  # noqa: ANN001
    for name in ("svc0.testns.example.com", "svc0.svc-nons.example.com", "nope.testns.example.com",
                 "a.b.c.svc1.testns.example.com"):
        r = await ext.q(name, "A")
        assert r.rcode() == dns.rcode.NXDOMAIN and rrs(r, "authority") == {SOA}, name
    r = await ext.q("testns.example.com", "A")                         # a namespace: exists, no records
    assert r.rcode() == dns.rcode.NOERROR and rrs(r, "authority") == {SOA}


async def test_headless(ext) -> None:  # noqa: ANN001
    r = await ext.q("svc-headless.testns.example.com", "A")
    assert rrs(r) == {"svc-headless.testns.example.com. A 1.2.3.4", "svc-headless.testns.example.com. A 1.2.3.5"}
    r = await ext.q("_http._tcp.svc-headless.testns.example.com", "SRV")
    assert rrs(r) == {"_http._tcp.svc-headless.testns.example.com. SRV 0 50 80 endpoint-svc-0.svc-headless.testns.example.com.",
                      "_http._tcp.svc-headless.testns.example.com. SRV 0 50 80 endpoint-svc-1.svc-headless.testns.example.com."}
    assert rrs(r, "additional") == {"endpoint-svc-0.svc-headless.testns.example.com. A 1.2.3.4",
                                    "endpoint-svc-1.svc-headless.testns.example.com. A 1.2.3.5"}
    r = await ext.q("endpoint-svc-1.svc-headless.testns.example.com", "A")
    assert rrs(r) == {"endpoint-svc-1.svc-headless.testns.example.com. A 1.2.3.5"}


async def test_headless_needs_the_option(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="kubernetes cluster.local\nk8s_external example.com\n", load=False)
    await h.load(services=SERVICES, slices=SLICES, pods=[], namespaces=NAMESPACES)
    r = await h.q("svc-headless.testns.example.com", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_ptr(ext) -> None:  # noqa: ANN001
    r = await ext.q("4.3.2.1.in-addr.arpa", "PTR")
    assert rrs(r) == {"4.3.2.1.in-addr.arpa. PTR svc1.testns.example.com."}
    r = await ext.q("svc1.testns.example.com", "PTR")                 # a forward name: NODATA
    assert r.rcode() == dns.rcode.NOERROR and rrs(r, "authority") == {SOA}


async def test_apex(ext) -> None:  # noqa: ANN001
    r = await ext.q("example.com", "SOA")
    assert rrs(r) == {SOA} and r.flags & dns.flags.AA
    r = await ext.q("example.com", "NS")
    assert rrs(r) == {"example.com. NS ns1.dns.example.com."}
    assert rrs(r, "additional") == {"ns1.dns.example.com. A 127.0.0.1"}       # the address it listens on
    assert rrs(await ext.q("ns1.dns.example.com", "A")) == {"ns1.dns.example.com. A 127.0.0.1"}
    for name, qtype in (("example.com", "SRV"), ("dns.example.com", "NS"), ("ns1.dns.example.com", "AAAA"),
                        ("ns1.dns.example.com", "SRV")):
        r = await ext.q(name, qtype)
        assert r.rcode() == dns.rcode.NOERROR and not r.answer and rrs(r, "authority") == {SOA}, (name, qtype)
    r = await ext.q("ns2.dns.example.com", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_ns_glue_is_the_external_ip_of_the_service_in_front(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="kubernetes cluster.local\nk8s_external example.com {\n  apex ext\n  ttl 30\n}\n",
                       load=False)
    dns_svc = _with(svc("kube-system", "kube-dns", ["10.43.0.10"], [("dns", 53, "UDP")]), lb=[{"ip": "192.0.2.53"}])
    dns_eps = eps("kube-system", "kube-dns-1", "kube-dns", [ep("127.0.0.1")], [("dns", 53, "UDP")])
    await h.load(services=[dns_svc], slices=[dns_eps], pods=[], namespaces=[ns("kube-system")])
    r = await h.q("example.com", "NS")
    assert rrs(r) == {"example.com. NS ns1.ext.example.com."} and r.answer[0].ttl == 30
    assert rrs(r, "additional") == {"ns1.ext.example.com. A 192.0.2.53"}


async def test_updates_follow_the_index(ext) -> None:  # noqa: ANN001
    from pyk3s.addons.dns.plugins.kubernetes.builder import change_of
    moved = _with(svc("testns", "svc1", ["10.0.0.1"], HTTP), ["1.2.3.44"])
    ext.kube.apply([change_of("services", moved)])
    assert rrs(await ext.q("svc1.testns.example.com", "A")) == {"svc1.testns.example.com. A 1.2.3.44"}


class _Upstream(asyncio.DatagramProtocol):
    """A stand-in resolver on loopback: every name has A 10.99.0.7."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "10.99.0.7"))
        self.transport.sendto(r.to_wire(), addr)


async def test_fallthrough(make_dns) -> None:  # noqa: ANN001
    tr, _ = await asyncio.get_running_loop().create_datagram_endpoint(_Upstream, local_addr=("127.0.0.1", 0))
    try:
        port = tr.get_extra_info("sockname")[1]
        for fall, missing in (("fallthrough", "A 10.99.0.7"), ("fallthrough other.test", None)):
            h = await make_dns(load=False, body=f"""
                kubernetes cluster.local
                k8s_external example.com {{
                  {fall}
                }}
                forward . 127.0.0.1:{port}
                """)
            await h.load(services=SERVICES, slices=SLICES, pods=[], namespaces=NAMESPACES)
            r = await h.q("svc0.testns.example.com", "A")               # not found: the next plugin
            if missing:
                assert rrs(r) == {f"svc0.testns.example.com. {missing}"}
            else:
                assert r.rcode() == dns.rcode.NXDOMAIN
            r = await h.q("svc1.testns.example.com", "TXT")             # found, no such records: NODATA here
            assert r.rcode() == dns.rcode.NOERROR and rrs(r, "authority") == {SOA}
            assert rrs(await h.q("svc1.testns.example.com", "A")) == {"svc1.testns.example.com. A 1.2.3.4"}
            assert rrs(await h.q("www.elsewhere.test", "A")) == {"www.elsewhere.test. A 10.99.0.7"}
    finally:
        tr.close()


async def test_cluster_names_and_forwarded_names_are_untouched(ext) -> None:  # noqa: ANN001
    assert rrs(await ext.q("svc1.testns.svc.cluster.local", "A")) == {"svc1.testns.svc.cluster.local. A 10.0.0.1"}


def _plugin(body: str) -> K8sExternalPlugin:
    (b,) = build_blocks(parse_corefile(f"example.org:53 {{\n kubernetes cluster.local\n {body}\n}}\n"), "Corefile")
    return next(p for p in b.plugins if isinstance(p, K8sExternalPlugin))


def test_options() -> None:
    o = _plugin("k8s_external").opts
    assert (o.zones, o.apex, o.ttl, o.headless, o.fall.enabled) == (("example.org.",), "dns", 5, False, False)
    o = _plugin("k8s_external a.test B.test {\n apex ns\n ttl 0\n headless\n fallthrough b.test\n }").opts
    assert (o.zones, o.apex, o.ttl, o.headless, o.fall.zones) == (("a.test.", "b.test."), "ns", 0, True, ("b.test.",))


@pytest.mark.parametrize(("corefile", "message"), [
    (".:53 {\n kubernetes\n k8s_external example.org {\n ttl 3601\n }\n}\n", "3601"),
    (".:53 {\n kubernetes\n k8s_external example.org {\n ttl x\n }\n}\n", "x"),
    (".:53 {\n kubernetes\n k8s_external example.org {\n ttl\n }\n}\n", "ttl needs a number"),
    (".:53 {\n kubernetes\n k8s_external example.org {\n apex\n }\n}\n", "apex needs a name"),
    (".:53 {\n kubernetes\n k8s_external example.org {\n transfer\n }\n}\n", "unknown property 'transfer'"),
    (".:53 {\n k8s_external example.org\n}\n", "kubernetes plugin not loaded"),
])
def test_bad_options(corefile: str, message: str) -> None:
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(corefile), "Corefile")
    assert message in str(ei.value) and "k8s_external" in str(ei.value)


async def test_ns_glue_of_a_server_listening_on_every_address(make_dns) -> None:  # noqa: ANN001
    from pyk3s.addons.dns.plugins.k8s_external import _local_ips
    local = _local_ips()
    if not local:
        pytest.skip("this machine has no non-loopback interface address")
    h = await make_dns(body="kubernetes cluster.local\nk8s_external example.com\n", load=False)
    dns_svc = _with(svc("kube-system", "kube-dns", ["10.43.0.10"], [("dns", 53, "UDP")]), ["192.0.2.54"])
    dns_eps = eps("kube-system", "kube-dns-1", "kube-dns", [ep(local[0])], [("dns", 53, "UDP")])
    await h.load(services=[dns_svc], slices=[dns_eps], pods=[], namespaces=[ns("kube-system")])
    plugin = next(p for p in h.runtime.plugins() if isinstance(p, K8sExternalPlugin))
    plugin.listen = [""]                                               # as after `bind` to no address
    assert rrs(await h.q("ns1.dns.example.com", "A")) == {"ns1.dns.example.com. A 192.0.2.54"}
