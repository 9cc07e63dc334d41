"""chaos: CoreDNS plugin/chaos's README examples and tests (CH TXT version/authors/hostname), on a real
server queried over UDP; CH questions reach only blocks that have `chaos`."""

from __future__ import annotations

import socket
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import pytest
from dns_support import DEFAULT_BODY, rrs

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError
from pyk3s.k3s.version import PYK3S_VERSION


def texts(r: dns.message.Message) -> list[str]:
    return [s.decode() for rr in r.answer for rd in rr for s in rd.strings]


async def test_version_authors_hostname(make_dns: Any) -> None:
    h = await make_dns(body="chaos CoreDNS-001 info@coredns.io miek@miek.nl info@coredns.io\n", load=False)
    r = await h.q("version.bind", "TXT", rdclass="CH")
    assert r.rcode() == dns.rcode.NOERROR and texts(r) == ["CoreDNS-001"] and not r.flags & dns.flags.AA
    assert r.answer[0].rdclass == dns.rdataclass.CH and r.answer[0].ttl == 0
    assert texts(await h.q("Version.Server", "TXT", rdclass="CH")) == ["CoreDNS-001"]
    authors = await h.q("authors.bind", "TXT", rdclass="CH")
    assert sorted(texts(authors)) == ["info@coredns.io", "miek@miek.nl"]            # deduplicated
    for name in ("hostname.bind", "id.server"):
        assert texts(await h.q(name, "TXT", rdclass="CH")) == [socket.gethostname()]


async def test_defaults_and_long_strings_are_cut(make_dns: Any) -> None:
    h = await make_dns(body="chaos\n", load=False)
    assert texts(await h.q("version.bind", "TXT", rdclass="CH")) == [f"pyk3s-{PYK3S_VERSION}"]
    assert texts(await h.q("authors.bind", "TXT", rdclass="CH")) == ["pyk3s"]
    long = "v" * 300
    h2 = await make_dns(body=f"chaos {long}\n", load=False)
    assert texts(await h2.q("version.bind", "TXT", rdclass="CH")) == ["v" * 255]


async def test_other_ch_questions_are_refused_and_in_goes_on(make_dns: Any) -> None:
    h = await make_dns(body=DEFAULT_BODY + "chaos v1\n")
    assert (await h.q("version.bind", "A", rdclass="CH")).rcode() == dns.rcode.REFUSED
    assert (await h.q("web.apps.svc.cluster.local", "A", rdclass="CH")).rcode() == dns.rcode.REFUSED
    assert (await h.q("version.bind", "TXT", rdclass="HS")).rcode() == dns.rcode.REFUSED
    assert rrs(await h.q("web.apps.svc.cluster.local", "A")) == {"web.apps.svc.cluster.local. A 10.43.1.10"}
    core = h.runtime.listeners[("127.0.0.1", 0)].core
    assert core.fast_answer(dns.message.make_query("web.apps.svc.cluster.local", "A", use_edns=False).to_wire())
    r = await h.q("version.bind", "TXT", rdclass="CH", tcp=True)
    assert texts(r) == ["v1"]


async def test_ch_is_refused_before_the_chain_without_chaos(make_dns: Any) -> None:
    h = await make_dns(body="whoami\n", load=False)
    r = await h.q("version.bind", "TXT", rdclass="CH")
    assert r.rcode() == dns.rcode.REFUSED and not r.answer          # the whoami block has no chaos
    blocks = build_blocks(parse_corefile(".:53 {\n whoami\n}\nversion.bind:53 {\n chaos\n}\n", "Corefile"),
                          "Corefile")
    assert [b.classes for b in blocks] == [frozenset(), frozenset({int(dns.rdataclass.CH)})]


def test_zones_of_the_readme() -> None:
    blocks = build_blocks(parse_corefile(
        "version.bind version.server authors.bind hostname.bind id.server:53 {\n chaos CoreDNS-001 info@coredns.io\n}\n",
        "Corefile"), "Corefile")
    assert blocks[0].zones == ("version.bind.", "version.server.", "authors.bind.", "hostname.bind.", "id.server.")


def test_setup_errors_name_file_line() -> None:
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(".:53 {\n chaos v1 {\n  x\n }\n}\n", "Corefile"), "Corefile")
    assert "unknown property 'x'" in str(ei.value) and "plugin/chaos: Corefile:2" in str(ei.value)
