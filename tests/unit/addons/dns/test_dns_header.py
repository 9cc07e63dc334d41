"""header: CoreDNS plugin/header's README examples and setup tests, on a real server queried over UDP."""

from __future__ import annotations

from typing import Any

import dns.flags
import dns.message
import dns.rcode
import pytest
from dns_support import rrs
from test_dns_forward_lane import answer, ask, query, stand_in  # noqa: F401  (fixture)

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError

HOSTS = "hosts {\n  10.9.0.1 a.example.org\n}\n"
AA, RA, RD = dns.flags.AA, dns.flags.RA, dns.flags.RD


async def test_response_set_ra_aa_clear_rd(make_dns: Any) -> None:
    plain = await make_dns(body=HOSTS, load=False)
    r = await plain.q("a.example.org", "A")
    assert r.flags & AA and r.flags & RD and not r.flags & RA
    h = await make_dns(body="header {\n  response set ra aa\n  response clear rd\n}\n" + HOSTS, load=False)
    r = await h.q("a.example.org", "A")
    assert r.flags & RA and r.flags & AA and not r.flags & RD
    assert rrs(r) == {"a.example.org. A 10.9.0.1"}
    r = await h.q("nope.example.org", "A")              # every reply, whatever its rcode
    assert r.flags & RA and not r.flags & RD


async def test_later_rules_win(make_dns: Any) -> None:
    h = await make_dns(body="header {\n  response set aa ra\n  response clear aa\n}\n" + HOSTS, load=False)
    r = await h.q("a.example.org", "A")
    assert not r.flags & AA and r.flags & RA


async def test_query_set_rd_is_what_later_plugins_see(make_dns: Any) -> None:
    h = await make_dns(body="header {\n  query set rd\n}\n" + HOSTS, load=False)
    q = dns.message.make_query("a.example.org", "A")
    q.flags &= ~RD
    r = await ask(h.port, q)
    assert r.flags & RD                                  # hosts copied the RD it saw


async def test_query_clear_rd_reaches_the_upstream(make_dns: Any, stand_in: Any) -> None:  # noqa: F811
    up = await stand_in()
    flags: list[int] = []

    def behave(q: dns.message.Message, proto: str) -> list[tuple[float, bytes]]:
        flags.append(int(q.flags))
        return [(0.0, answer(q, "10.99.0.55").to_wire())]

    up.behave = behave
    h = await make_dns(body=f"header {{\n  query clear rd\n  response set aa\n}}\nforward . 127.0.0.1:{up.port}\n",
                       load=False)
    r = await ask(h.port, query("www.example.test"))
    assert flags and not flags[0] & RD
    assert rrs(r) == {"www.example.test. A 10.99.0.55"} and r.flags & AA and not r.flags & RD


async def test_after_cache_as_in_coredns(make_dns: Any) -> None:
    h = await make_dns(body="cache 30\nheader {\n  response set ra\n  response clear aa\n}\n" + HOSTS, load=False)
    first = await h.q("a.example.org", "A")
    assert first.flags & RA and not first.flags & AA
    second = await h.q("a.example.org", "A")             # the cache writes hits: RA kept, AA set
    assert second.flags & RA and second.flags & AA


@pytest.mark.parametrize("body,needle", [
    ("header\n", "Wrong argument count"),
    ("header {\n}\n", "Wrong argument count"),
    ("header x {\n  response set ra\n}\n", "Wrong argument count"),
    ("header {\n  answer set ra\n}\n", "invalid selector=answer should be query or response"),
    ("header {\n  response\n}\n", "no flag action provided"),
    ("header {\n  response toggle ra\n}\n", "unknown flag action=toggle, should be set or clear"),
    ("header {\n  response set\n}\n", "invalid length for flags, at least one should be provided"),
    ("header {\n  response set ad\n}\n", "unknown/unsupported flag=ad"),
    ("header {\n  response set ra\n}\nheader {\n  query set rd\n}\n", "only be used once per Server Block"),
])
def test_setup_errors_name_file_line(body: str, needle: str) -> None:
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(".:53 {\n" + body + "}\n", "Corefile"), "Corefile")
    assert needle in str(ei.value) and "plugin/header: Corefile:" in str(ei.value)


def test_a_block_with_header_has_no_fast_answers() -> None:
    blocks = build_blocks(parse_corefile(".:53 {\n header {\n  response set ra\n }\n hosts\n}\n", "Corefile"),
                          "Corefile")
    assert not blocks[0].fast_ok and all(p.wire_hop() is None for p in blocks[0].plugins if p.name == "header")
