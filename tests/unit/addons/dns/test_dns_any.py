"""any: CoreDNS plugin/any's README example and tests, on a real server queried over UDP."""

from __future__ import annotations

from typing import Any

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest
from dns_support import rrs
from test_dns_forward_lane import ask, query, slow_calls, stand_in  # noqa: F401  (fixture)

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError

BODY = """
any
hosts {
  10.9.0.1 example.org
}
"""


async def test_any_gets_the_rfc8482_hinfo(make_dns: Any) -> None:
    h = await make_dns(body=BODY, load=False)
    r = await h.q("Example.ORG", "ANY")
    assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.AA and r.flags & dns.flags.RD
    assert rrs(r) == {'example.org. HINFO "any obsoleted" "see rfc 8482"'}
    assert r.answer[0].ttl == 8482 and r.answer[0].name.to_text() == "Example.ORG."   # the name as asked
    assert not r.authority and not r.additional
    r = await h.q("nothing.here", "ANY")           # whatever the name
    assert len(r.answer) == 1 and r.answer[0].rdtype == dns.rdatatype.HINFO


@pytest.mark.parametrize("qtype", ["A", "AAAA", "MX", "TXT", "CNAME"])
async def test_other_types_go_down_the_chain(make_dns: Any, qtype: str) -> None:
    h = await make_dns(body=BODY, load=False)
    r = await h.q("example.org", qtype)
    assert all(rr.rdtype != dns.rdatatype.HINFO for rr in r.answer)
    if qtype == "A":
        assert rrs(r) == {"example.org. A 10.9.0.1"}


async def test_fast_table_and_forward_lane_stay(make_dns: Any, stand_in: Any,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    up = await stand_in()
    h = await make_dns(body=f"any\nforward . 127.0.0.1:{up.port}\n", load=False)
    assert h.runtime.config.blocks[0].fast_ok
    chain = slow_calls(h, monkeypatch)
    r = await ask(h.port, query("www.example.test"))
    assert rrs(r) == {"www.example.test. A 10.99.0.55"} and chain == []      # on the lane
    r = await ask(h.port, query("www.example.test", "ANY"))
    assert r.answer[0].rdtype == dns.rdatatype.HINFO and len(chain) == 1      # the chain answered it
    assert [name for _, _, name, _ in up.seen] == ["www.example.test."]


@pytest.mark.parametrize("body,needle", [
    ("any x\n", "Wrong argument count"),
    ("any {\n  foo\n}\n", "unknown property 'foo'"),
])
def test_setup_errors_name_file_line(body: str, needle: str) -> None:
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(".:53 {\n" + body + "}\n", "Corefile"), "Corefile")
    assert needle in str(ei.value) and "plugin/any: Corefile:2" in str(ei.value)
