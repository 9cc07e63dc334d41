"""kubernetes plugin record kinds against the real server (spec dns.md sections 1 and 2).

Objects go in through `KubernetesPlugin.load`, the same entry point the informers use.
"""

from __future__ import annotations

import dns.flags
import dns.rcode
import pytest
from dns_support import rrs

NOERROR, NX = dns.rcode.NOERROR, dns.rcode.NXDOMAIN
Z = "cluster.local."

CASES = [
    # S6/P6 ClusterIP
    ("web.apps.svc.cluster.local", "A", NOERROR, {f"web.apps.svc.{Z} A 10.43.1.10"}),
    ("web.apps.svc.cluster.local", "AAAA", NOERROR, set()),
    ("ds.apps.svc.cluster.local", "AAAA", NOERROR, {f"ds.apps.svc.{Z} AAAA fd00:43::20"}),
    ("ds.apps.svc.cluster.local", "A", NOERROR, {f"ds.apps.svc.{Z} A 10.43.1.20"}),
    ("lonely.apps.svc.cluster.local", "A", NOERROR, {f"lonely.apps.svc.{Z} A 10.43.1.30"}),
    # S7/P13-P14 SRV
    ("_http._tcp.web.apps.svc.cluster.local", "SRV", NOERROR,
     {f"_http._tcp.web.apps.svc.{Z} SRV 0 100 80 web.apps.svc.{Z}"}),
    ("_http._udp.web.apps.svc.cluster.local", "SRV", NX, None),
    ("_nope._tcp.web.apps.svc.cluster.local", "SRV", NX, None),
    ("_http._tcp.ds.apps.svc.cluster.local", "SRV", NOERROR,
     {f"_http._tcp.ds.apps.svc.{Z} SRV 0 50 80 ds.apps.svc.{Z}"}),
    ("_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV", NOERROR,
     {f"_dns._udp.kube-dns.kube-system.svc.{Z} SRV 0 100 53 kube-dns.kube-system.svc.{Z}"}),
    # P19: SRV-shaped names answer A
    ("_http._tcp.web.apps.svc.cluster.local", "A", NOERROR, {f"_http._tcp.web.apps.svc.{Z} A 10.43.1.10"}),
    ("http.tcp.web.apps.svc.cluster.local", "A", NOERROR, {f"http.tcp.web.apps.svc.{Z} A 10.43.1.10"}),
    # S9/P7 headless
    ("db.apps.svc.cluster.local", "A", NOERROR, {f"db.apps.svc.{Z} A 10.42.2.10", f"db.apps.svc.{Z} A 10.42.2.11"}),
    ("empty.apps.svc.cluster.local", "A", NX, None),
    ("empty.apps.svc.cluster.local", "SRV", NX, None),
    # S10 hostnames, S11 headless SRV
    ("db-0.db.apps.svc.cluster.local", "A", NOERROR, {f"db-0.db.apps.svc.{Z} A 10.42.2.10"}),
    ("10-42-2-10.db.apps.svc.cluster.local", "A", NX, None),
    ("_pg._tcp.db.apps.svc.cluster.local", "SRV", NOERROR,
     {f"_pg._tcp.db.apps.svc.{Z} SRV 0 50 5432 db-0.db.apps.svc.{Z}",
      f"_pg._tcp.db.apps.svc.{Z} SRV 0 50 5432 db-1.db.apps.svc.{Z}"}),
    ("_pg._tcp.db-0.db.apps.svc.cluster.local", "SRV", NX, None),
    # P8: not-ready dropped, ready=null kept; P10 endpoint names of ClusterIP services
    ("10-42-1-10.web.apps.svc.cluster.local", "A", NOERROR, {f"10-42-1-10.web.apps.svc.{Z} A 10.42.1.10"}),
    ("10-42-1-12.web.apps.svc.cluster.local", "A", NOERROR, {f"10-42-1-12.web.apps.svc.{Z} A 10.42.1.12"}),
    ("10-42-1-11.web.apps.svc.cluster.local", "A", NX, None),
    # S13/P11/P12 ExternalName
    ("ext.apps.svc.cluster.local", "CNAME", NOERROR, {f"ext.apps.svc.{Z} CNAME www.example.test."}),
    ("ext-in.apps.svc.cluster.local", "A", NOERROR,
     {f"ext-in.apps.svc.{Z} CNAME web.apps.svc.{Z}", f"web.apps.svc.{Z} A 10.43.1.10"}),
    ("ext-in.apps.svc.cluster.local", "AAAA", NOERROR, set()),
    ("ext.apps.svc.cluster.local", "TXT", NOERROR, set()),
    ("ext.apps.svc.cluster.local", "SRV", NOERROR, set()),
    ("x.ext.apps.svc.cluster.local", "A", NX, None),
    ("ext-ip.apps.svc.cluster.local", "A", NX, None),
    # S8/P21/P22 PTR
    ("10.1.43.10.in-addr.arpa", "PTR", NOERROR, {f"10.1.43.10.in-addr.arpa. PTR web.apps.svc.{Z}"}),
    ("10.2.42.10.in-addr.arpa", "PTR", NOERROR, {f"10.2.42.10.in-addr.arpa. PTR db-0.db.apps.svc.{Z}"}),
    ("10.1.42.10.in-addr.arpa", "PTR", NOERROR, {f"10.1.42.10.in-addr.arpa. PTR 10-42-1-10.web.apps.svc.{Z}"}),
    ("0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa", "PTR", NOERROR,
     {f"0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa. PTR ds.apps.svc.{Z}"}),
    ("web.apps.svc.cluster.local", "PTR", NOERROR, set()),
    # S1/P25 dns-version, P26, P3 structural names
    ("dns-version.cluster.local", "TXT", NOERROR, {f'dns-version.{Z} TXT "1.1.0"'}),
    ("dns-version.cluster.local", "A", NX, None),
    ("cluster.local", "A", NOERROR, set()),
    ("cluster.local", "TXT", NX, None),
    ("svc.cluster.local", "A", NOERROR, set()),
    ("apps.svc.cluster.local", "A", NOERROR, set()),
    ("apps.svc.cluster.local", "TXT", NX, None),
    ("nope.svc.cluster.local", "A", NX, None),
    ("foo.cluster.local", "A", NX, None),
    ("web.nope.svc.cluster.local", "A", NX, None),
    ("a.b.c.web.apps.svc.cluster.local", "A", NX, None),
    ("web.apps.svc.cluster.local", "MX", NOERROR, set()),
    ("*.apps.svc.cluster.local", "A", NX, None),
    # P31/P32/P34 pods insecure
    ("10-42-1-50.apps.pod.cluster.local", "A", NOERROR, {f"10-42-1-50.apps.pod.{Z} A 10.42.1.50"}),
    ("x.10-42-1-50.apps.pod.cluster.local", "A", NOERROR, {f"x.10-42-1-50.apps.pod.{Z} A 10.42.1.50"}),
    ("10-42-1-50.apps.pod.cluster.local", "AAAA", NOERROR, set()),
    ("fd00--1.apps.pod.cluster.local", "AAAA", NOERROR, {f"fd00--1.apps.pod.{Z} AAAA fd00::1"}),
    ("256-1-1-1.apps.pod.cluster.local", "A", NX, None),
    ("10-42-1-50.nope.pod.cluster.local", "A", NX, None),
    ("10-42-1-50.apps.pod.cluster.local", "SRV", NOERROR, {f"10-42-1-50.apps.pod.{Z} SRV 0 100 0 10-42-1-50.apps.pod.{Z}"}),
    # search-path misses
    ("web.apps.svc.cluster.local.apps.svc.cluster.local", "A", NX, None),
    ("web.apps.svc.cluster.local.svc.cluster.local", "A", NX, None),
    ("web.apps.svc.cluster.local.cluster.local", "A", NX, None),
]


@pytest.mark.parametrize("name,qtype,rcode,answer", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
async def test_record_kinds(dns_server, name: str, qtype: str, rcode: int, answer: set[str] | None) -> None:  # noqa: ANN001
    for attempt in range(2):  # second query is served from the fast table or the cache
        r = await dns_server.q(name, qtype)
        assert r.rcode() == rcode, f"attempt {attempt}"
        assert r.flags & dns.flags.AA
        assert not r.flags & dns.flags.RA
        if answer is not None:
            assert rrs(r) == answer
        if rcode == NX or (answer == set() and not r.answer):
            soa = [rr for rr in r.authority if rr.rdtype == dns.rdatatype.SOA]
            assert len(soa) == 1, r
            assert soa[0][0].mname.to_text() in (f"ns.dns.{Z}", "ns.dns.in-addr.arpa.", "ns.dns.ip6.arpa.")


async def test_srv_additional_and_ttl(dns_server) -> None:  # noqa: ANN001
    r = await dns_server.q("_pg._tcp.db.apps.svc.cluster.local", "SRV")
    assert rrs(r, "additional") == {f"db-0.db.apps.svc.{Z} A 10.42.2.10", f"db-1.db.apps.svc.{Z} A 10.42.2.11"}
    assert {rr.ttl for rr in r.answer} == {5}
    r = await dns_server.q("dns-version.cluster.local", "TXT")
    assert r.answer[0].ttl == 30         # cache 30 rewrites the 28800 (X2)


async def test_soa_contents_and_case(dns_server) -> None:  # noqa: ANN001
    r = await dns_server.q("Nope.APPS.svc.Cluster.Local", "A")
    soa = r.authority[0]
    assert soa.name.to_text() == "Cluster.Local."
    rd = soa[0]
    assert (rd.rname.to_text(), rd.serial, rd.refresh, rd.retry, rd.expire, rd.minimum) == \
        (f"hostmaster.{Z}", 12345, 7200, 1800, 86400, 5)
    r = await dns_server.q("WEB.Apps.svc.cluster.LOCAL", "A")
    assert r.answer[0].name.to_text() == "WEB.Apps.svc.cluster.LOCAL."
    assert r.question[0].name.to_text() == "WEB.Apps.svc.cluster.LOCAL."


async def test_apex_soa_and_ns(dns_server) -> None:  # noqa: ANN001
    r = await dns_server.q("cluster.local", "SOA")
    assert r.answer[0].rdtype == dns.rdatatype.SOA
    r = await dns_server.q("cluster.local", "NS")
    assert rrs(r) == {f"{Z} NS ns.dns.{Z}"}


async def test_ptr_miss_falls_through_to_end_of_chain(dns_server) -> None:  # noqa: ANN001
    # fallthrough in-addr.arpa: nothing after kubernetes in this chain -> SERVFAIL
    r = await dns_server.q("99.99.99.10.in-addr.arpa", "PTR")
    assert r.rcode() == dns.rcode.SERVFAIL


async def test_index_swap_after_change(dns_server) -> None:  # noqa: ANN001
    from dns_support import NAMESPACES, PODS, SERVICES, SLICES, svc
    r = await dns_server.q("new.apps.svc.cluster.local", "A")
    assert r.rcode() == NX
    await dns_server.load(SERVICES + [svc("apps", "new", ["10.43.9.9"], [("http", 80, "TCP")])], SLICES, PODS,
                          NAMESPACES)
    r = await dns_server.q("new.apps.svc.cluster.local", "A")
    assert rrs(r) == {f"new.apps.svc.{Z} A 10.43.9.9"}


OPTION_CASES = [
    ("pods verified", "10-42-1-10.apps.pod.cluster.local", "A", NOERROR),
    ("pods verified", "10-42-1-50.apps.pod.cluster.local", "A", NX),
    ("pods disabled", "10-42-1-10.apps.pod.cluster.local", "A", NX),
    ("noendpoints", "db.apps.svc.cluster.local", "A", NX),
    ("noendpoints", "web.apps.svc.cluster.local", "A", NOERROR),
    ("ignore empty_service", "lonely.apps.svc.cluster.local", "A", NX),
    ("ignore empty_service", "web.apps.svc.cluster.local", "A", NOERROR),
    ("endpoint_pod_names", "web-a.web.apps.svc.cluster.local", "A", NOERROR),
    ("endpoint_pod_names", "10-42-1-10.web.apps.svc.cluster.local", "A", NX),
    ("namespaces apps", "kubernetes.default.svc.cluster.local", "A", NX),
    ("namespaces apps", "web.apps.svc.cluster.local", "A", NOERROR),
    ("fallthrough", "nope.apps.svc.cluster.local", "A", dns.rcode.SERVFAIL),
]


@pytest.mark.parametrize("option,name,qtype,rcode", OPTION_CASES, ids=[f"{c[0]}-{c[1]}" for c in OPTION_CASES])
async def test_options(make_dns, option: str, name: str, qtype: str, rcode: int) -> None:  # noqa: ANN001
    h = await make_dns(f"kubernetes cluster.local in-addr.arpa {{\n  pods insecure\n  {option}\n}}\n")
    r = await h.q(name, qtype)
    assert r.rcode() == rcode


async def test_ttl_option(make_dns) -> None:  # noqa: ANN001
    h = await make_dns("kubernetes cluster.local {\n  ttl 60\n}\n")
    r = await h.q("web.apps.svc.cluster.local", "A")
    assert r.answer[0].ttl == 60
    r = await h.q("nope.apps.svc.cluster.local", "A")
    assert r.authority[0].ttl == 60 and r.authority[0][0].minimum == 60


async def test_unsynced_index_answers_servfail(make_dns) -> None:  # noqa: ANN001
    h = await make_dns("kubernetes cluster.local\n", load=False)
    r = await h.q("web.apps.svc.cluster.local", "A")
    assert r.rcode() == dns.rcode.SERVFAIL
