"""acl: CoreDNS plugin/acl's README examples and test cases, on a real server queried over UDP and TCP
(the client is 127.0.0.1)."""

from __future__ import annotations

import asyncio
import io
import struct
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest
from dns_support import rrs

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.plugins.acl import AclPlugin

HOSTS = """
hosts {
  10.9.0.1 a.example.org b.example.org c.other.test
  fallthrough
}
"""


def _acl(h) -> AclPlugin:  # noqa: ANN001
    return next(p for p in h.runtime.plugins() if isinstance(p, AclPlugin))


async def test_block_type_from_net_is_refused_and_other_types_pass(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="acl {\n  block type A net 127.0.0.0/8\n}\n" + HOSTS, load=False)
    r = await h.q("a.example.org", "A")
    assert r.rcode() == dns.rcode.REFUSED and not r.answer and not r.flags & dns.flags.AA
    assert r.flags & dns.flags.RD
    r = await h.q("a.example.org", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR
    blocked = h.runtime.metrics.counters["coredns_acl_blocked_requests_total"]
    assert dict(next(iter(blocked))) == {"server": "dns://:0", "zone": ".", "view": ""}
    assert sum(h.runtime.metrics.counters["coredns_acl_allowed_requests_total"].values()) == 1


async def test_filter_is_an_empty_noerror(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="acl {\n  filter type A net 127.0.0.1\n}\n" + HOSTS, load=False)
    r = await h.q("a.example.org", "A", use_edns=0)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and not r.authority
    assert r.edns == 0 and not r.options        # no EDE (documented)
    assert sum(h.runtime.metrics.counters["coredns_acl_filtered_requests_total"].values()) == 1


async def test_allow_before_block_and_nets_that_do_not_match(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="acl {\n  allow net 127.0.0.0/24\n  block net 127.0.0.0/8\n}\n" + HOSTS, load=False)
    assert rrs(await h.q("a.example.org", "A")) == {"a.example.org. A 10.9.0.1"}
    h2 = await make_dns(body="acl {\n  allow net 192.168.0.0/24 192.168.1.0/24\n  block\n}\n" + HOSTS, load=False)
    assert (await h2.q("a.example.org", "A")).rcode() == dns.rcode.REFUSED
    h3 = await make_dns(body="acl {\n  block net 10.0.0.0/8 ::1\n}\n" + HOSTS, load=False)
    assert (await h3.q("a.example.org", "A")).rcode() == dns.rcode.NOERROR


async def test_zones_of_a_rule_and_several_rules(make_dns) -> None:  # noqa: ANN001
    body = ("acl a.example.org {\n  block net 127.0.0.0/8\n}\n"
            "acl other.test {\n  filter type A\n}\n" + HOSTS)
    h = await make_dns(body=body, load=False)
    assert (await h.q("a.example.org", "A")).rcode() == dns.rcode.REFUSED
    assert (await h.q("A.Example.ORG", "TXT")).rcode() == dns.rcode.REFUSED
    assert rrs(await h.q("b.example.org", "A")) == {"b.example.org. A 10.9.0.1"}
    r = await h.q("c.other.test", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert len(_acl(h).rules) == 2


async def test_allow_in_a_rule_skips_the_later_rules(make_dns) -> None:  # noqa: ANN001
    body = "acl {\n  allow type A\n}\nacl {\n  block\n}\n" + HOSTS
    h = await make_dns(body=body, load=False)
    assert rrs(await h.q("a.example.org", "A")) == {"a.example.org. A 10.9.0.1"}
    assert (await h.q("a.example.org", "AAAA")).rcode() == dns.rcode.REFUSED


async def test_drop_sends_nothing(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="acl {\n  drop type TXT net *\n}\n" + HOSTS, load=False)
    with pytest.raises(dns.exception.Timeout):
        await dns.asyncquery.udp(dns.message.make_query("a.example.org", "TXT"), "127.0.0.1", timeout=0.5,
                                 port=h.port)
    # over TCP: nothing for the dropped query, and the connection still answers the next one
    reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
    try:
        for qid, qtype in ((1, "TXT"), (2, "A")):
            q = dns.message.make_query("a.example.org", qtype)
            q.id = qid
            wire = q.to_wire()
            writer.write(struct.pack(">H", len(wire)) + wire)
        await writer.drain()
        n = struct.unpack(">H", await asyncio.wait_for(reader.readexactly(2), 3))[0]
        r = dns.message.from_wire(await reader.readexactly(n))
        assert r.id == 2 and rrs(r) == {"a.example.org. A 10.9.0.1"}
    finally:
        writer.close()
        await writer.wait_closed()
    assert sum(h.runtime.metrics.counters["coredns_acl_dropped_requests_total"].values()) == 2


async def test_acl_comes_before_cache(make_dns) -> None:  # noqa: ANN001
    # as in CoreDNS: an answer cached for one client is never served to a client acl stops
    from pyk3s.addons.dns.plugins import ORDER
    assert ORDER.index("acl") < ORDER.index("cache")
    h = await make_dns(body="cache 30\nacl {\n  block type MX\n}\n" + HOSTS, load=False)
    for _ in range(2):
        assert (await h.q("a.example.org", "MX")).rcode() == dns.rcode.REFUSED


async def test_explain_says_why(tmp_path: Path) -> None:
    from pyk3s.addons.dns.explain import explain
    corefile = tmp_path / "Corefile"
    corefile.write_text(".:53 {\n  acl {\n    block type MX\n    drop type TXT\n  }\n" + HOSTS + "}\n")
    out = io.StringIO()
    await explain("a.example.org", "TXT", str(corefile), out=out)
    assert "acl: drop (rule for .)" in out.getvalue() and "result: no reply (the query is dropped)" in out.getvalue()
    out = io.StringIO()
    await explain("a.example.org", "MX", str(corefile), out=out)
    assert "acl: block (rule for .)" in out.getvalue() and "result: REFUSED" in out.getvalue()


def test_addresses_ipv6_mapped_and_unreadable() -> None:
    blocks = build_blocks(parse_corefile(".:53 {\n acl {\n  block net 192.168.0.0/16 fd00::/8\n }\n}\n",
                                         "Corefile"), "Corefile")
    acl = blocks[0].plugins[0]
    assert isinstance(acl, AclPlugin)
    assert acl.decide("x.", 1, ("192.168.3.4", 53))[0] == "block"
    assert acl.decide("x.", 1, ("::ffff:192.168.3.4", 53, 0, 0))[0] == "block"
    assert acl.decide("x.", 1, ("fd00::1%eth0", 53, 0, 0))[0] == "block"
    assert acl.decide("x.", 1, ("10.0.0.1", 53))[0] == "allow"
    assert acl.decide("x.", 1, ("2001:db8::1", 53, 0, 0))[0] == "allow"
    assert acl.decide("x.", 1, None)[0] == "block"          # no address to check: blocked, as CoreDNS


def test_a_block_with_acl_has_no_fast_answers() -> None:
    blocks = build_blocks(parse_corefile(".:53 {\n acl\n hosts\n}\n", "Corefile"), "Corefile")
    assert not blocks[0].fast_ok
    assert blocks[0].plugins[0].wire_hop() is None


@pytest.mark.parametrize("body,needle", [
    ("acl {\n  deny net 10.0.0.0/8\n}\n", "unexpected token 'deny'; expect 'allow', 'block', 'filter' or 'drop'"),
    ("acl {\n  block from 10.0.0.0/8\n}\n", "unexpected token 'from'; expect 'type | net'"),
    ("acl {\n  block type\n}\n", "no token specified in 'type' section"),
    ("acl {\n  block net\n}\n", "no token specified in 'net' section"),
    ("acl {\n  block type BOGUS\n}\n", "unexpected token 'BOGUS'; expect legal QTYPE"),
    ("acl {\n  block type a\n}\n", "unexpected token 'a'; expect legal QTYPE"),
    ("acl {\n  block net 10.0.0.0/33\n}\n", "illegal CIDR notation '10.0.0.0/33'"),
    ("acl {\n  block net example.org\n}\n", "illegal CIDR notation 'example.org/32'"),
    ("acl {\n  block {\n    net\n  }\n}\n", "block takes no block"),
], ids=lambda x: x if len(x) < 40 else x[:40])
def test_setup_errors_name_file_line(body: str, needle: str) -> None:
    src = ".:53 {\n" + body + "}\n"
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(src, "Corefile"), "Corefile")
    assert needle in str(ei.value)
    assert "plugin/acl: Corefile:" in str(ei.value)
