"""local: CoreDNS plugin/local's README and test table, on a real server queried over UDP."""

from __future__ import annotations

from typing import Any

import dns.flags
import dns.rcode
import pytest
from dns_support import DEFAULT_BODY, rrs
from test_dns_forward_lane import ask, query, slow_calls, stand_in  # noqa: F401  (fixture)

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError

SOA = "{} SOA localhost. root.localhost. 1 0 0 0 604800"
NOERROR, NX = dns.rcode.NOERROR, dns.rcode.NXDOMAIN

CASES = [   # name, type, rcode, answer, authority (CoreDNS's local_test.go, then more)
    ("localhost.", "A", NOERROR, {"localhost. A 127.0.0.1"}, set()),
    ("localHOst.", "A", NOERROR, {"localhost. A 127.0.0.1"}, set()),
    ("localhost.", "AAAA", NOERROR, {"localhost. AAAA ::1"}, set()),
    ("localhost.", "NS", NOERROR, {"localhost. NS localhost."}, set()),
    ("localhost.", "SOA", NOERROR, {SOA.format("localhost.")}, set()),
    ("127.in-addr.arpa.", "A", NOERROR, set(), {SOA.format("127.in-addr.arpa.")}),
    ("localhost.", "MX", NOERROR, set(), {SOA.format("localhost.")}),
    ("a.localhost.", "A", NOERROR, {"a.localhost. A 127.0.0.1"}, set()),
    ("a.localhost.", "AAAA", NOERROR, {"a.localhost. AAAA ::1"}, set()),
    ("a.localhost.", "MX", NOERROR, set(), {SOA.format("a.localhost.")}),
    ("1.0.0.127.in-addr.arpa.", "PTR", NOERROR, {"1.0.0.127.in-addr.arpa. PTR localhost."}, set()),
    ("1.0.0.127.in-addr.arpa.", "MX", NOERROR, set(), {SOA.format("127.in-addr.arpa.")}),
    ("2.0.0.127.in-addr.arpa.", "PTR", NX, set(), {SOA.format("127.in-addr.arpa.")}),
    ("0.in-addr.arpa.", "NS", NOERROR, {"0.in-addr.arpa. NS localhost."}, set()),
    ("255.255.255.255.in-addr.arpa.", "PTR", NX, set(), {SOA.format("255.in-addr.arpa.")}),
    ("localhost.example.org.", "A", NOERROR, {"localhost.example.org. A 127.0.0.1"}, set()),
    ("localhost.default.svc.cluster.local.", "A", NOERROR, {"localhost.default.svc.cluster.local. A 127.0.0.1"},
     set()),
]


@pytest.fixture
async def local(make_dns: Any) -> Any:
    return await make_dns(body=DEFAULT_BODY + "local\n")


@pytest.mark.parametrize("name,qtype,rcode,answer,authority", CASES, ids=lambda x: str(x))
async def test_local_names(local: Any, name: str, qtype: str, rcode: int, answer: set[str],
                           authority: set[str]) -> None:
    r = await local.q(name, qtype)
    assert r.rcode() == rcode and not r.flags & dns.flags.AA
    assert rrs(r) == answer and rrs(r, "authority") == authority
    assert all(rr.ttl == 604800 for rr in r.answer + r.authority)


async def test_owner_spelling_and_counter(local: Any) -> None:
    r = await local.q("X.LocalHost", "A")
    assert r.answer[0].name.to_text() == "X.LocalHost."
    r = await local.q("9.0.0.127.In-Addr.Arpa", "PTR")
    assert r.authority[0].name.to_text() == "127.In-Addr.Arpa."
    counted = local.runtime.metrics.counters["coredns_local_localhost_requests_total"]
    assert counted == {(): 1.0}
    await local.q("localhost", "A")                       # the apex is not counted
    assert counted == {(): 1.0}


async def test_other_names_go_on(local: Any) -> None:
    assert rrs(await local.q("web.apps.svc.cluster.local", "A")) == {"web.apps.svc.cluster.local. A 10.43.1.10"}
    assert (await local.q("nope.apps.svc.cluster.local", "A")).rcode() == NX


async def test_prefix_off(make_dns: Any) -> None:
    h = await make_dns(body=DEFAULT_BODY + "local {\n  localhost_prefix off\n}\n")
    r = await h.q("localhost.apps.svc.cluster.local", "A")
    assert r.rcode() == NX                               # kubernetes answers it
    assert rrs(await h.q("a.localhost", "A")) == {"a.localhost. A 127.0.0.1"}


async def test_lane_takes_other_names(make_dns: Any, stand_in: Any,  # noqa: F811
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    up = await stand_in()
    h = await make_dns(body=f"local\nforward . 127.0.0.1:{up.port}\n", load=False)
    chain = slow_calls(h, monkeypatch)
    assert rrs(await ask(h.port, query("www.example.test"))) == {"www.example.test. A 10.99.0.55"}
    assert chain == []
    assert rrs(await ask(h.port, query("localhost.example.test"))) == {"localhost.example.test. A 127.0.0.1"}
    assert len(chain) == 1 and [n for _, _, n, _ in up.seen] == ["www.example.test."]


@pytest.mark.parametrize("body,needle", [
    ("local x\n", "Wrong argument count"),
    ("local {\n  localhost_prefix\n}\n", "Wrong argument count"),
    ("local {\n  localhost_prefix yes\n}\n", "localhost_prefix expects 'on' or 'off', got 'yes'"),
    ("local {\n  prefix on\n}\n", "unknown property 'prefix'"),
])
def test_setup_errors_name_file_line(body: str, needle: str) -> None:
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(".:53 {\n" + body + "}\n", "Corefile"), "Corefile")
    assert needle in str(ei.value) and "plugin/local: Corefile:" in str(ei.value)
