"""minimal: CoreDNS plugin/minimal's README and tests (plain answer, delegation, negative answers), on a
real server queried over UDP, with the fast table and the forward lane."""

from __future__ import annotations

import time
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from dns_support import DEFAULT_BODY, rrs
from test_dns_file import ZONE
from test_dns_forward_lane import answer, ask, query, slow_calls, stand_in  # noqa: F401  (fixture)

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.plugins.minimal import _valid_now, minimize

FILE_BODY = "minimal\nfile db.example.org example.org\n"
NS = {"example.org. NS ns1.example.org.", "example.org. NS ns2.elsewhere.test."}


async def test_positive_answer_loses_authority_and_additional(make_dns: Any) -> None:
    plain = await make_dns(body="file db.example.org example.org\n", files={"db.example.org": ZONE}, load=False)
    r = await plain.q("www.example.org", "A")
    assert rrs(r, "authority") == NS                      # what file writes without minimal
    h = await make_dns(body=FILE_BODY, files={"db.example.org": ZONE}, load=False)
    r = await h.q("www.example.org", "A")
    assert rrs(r) == {"www.example.org. A 10.98.0.80"} and not r.authority and not r.additional
    r = await h.q("example.org", "MX")
    assert rrs(r) == {"example.org. MX 10 mail.example.org."} and not r.authority and not r.additional


async def test_denial_delegation_and_errors_stay_whole(make_dns: Any) -> None:
    h = await make_dns(body=FILE_BODY, files={"db.example.org": ZONE}, load=False)
    r = await h.q("nope.example.org", "A")                # NXDOMAIN
    assert r.rcode() == dns.rcode.NXDOMAIN and len(r.authority) == 1
    r = await h.q("www.example.org", "TXT")               # NODATA
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority[0].rdtype == dns.rdatatype.SOA
    r = await h.q("x.sub.example.org", "A")               # delegation: NS and glue stay
    assert rrs(r, "authority") == {"sub.example.org. NS ns.sub.example.org."}
    assert rrs(r, "additional") == {"ns.sub.example.org. A 10.98.5.53"}


async def test_fast_answers_are_minimal_too(make_dns: Any) -> None:
    h = await make_dns(body=DEFAULT_BODY + "minimal\n")
    core = h.runtime.listeners[("127.0.0.1", 0)].core
    q = dns.message.make_query("_pg._tcp.db.apps.svc.cluster.local", "SRV", use_edns=False)
    fast = core.fast_answer(q.to_wire())
    assert fast is not None                               # the block keeps its fast table
    r = dns.message.from_wire(fast)
    assert len(r.answer[0]) == 2 and not r.additional
    r = await h.q("_pg._tcp.db.apps.svc.cluster.local", "SRV")
    assert len(r.answer[0]) == 2 and not r.additional
    nx = await h.q("nope.apps.svc.cluster.local", "A")
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority


async def test_forward_lane_replies_are_minimized(make_dns: Any, stand_in: Any,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    up = await stand_in()

    def behave(q: dns.message.Message, proto: str) -> list[tuple[float, bytes]]:
        r = answer(q, "10.99.0.55")
        r.authority.append(dns.rrset.from_text("example.test.", 60, "IN", "NS", "ns.example.test."))
        r.additional.append(dns.rrset.from_text("ns.example.test.", 60, "IN", "A", "10.99.0.53"))
        return [(0.0, r.to_wire())]

    up.behave = behave
    h = await make_dns(body=f"minimal\nforward . 127.0.0.1:{up.port}\n", load=False)
    chain = slow_calls(h, monkeypatch)
    r = await ask(h.port, query("www.example.test"))
    assert rrs(r) == {"www.example.test. A 10.99.0.55"} and not r.authority and not r.additional
    assert chain == []                                     # on the lane
    r = await ask(h.port, query("www.example.test", use_edns=0, want_dnssec=True))
    assert not r.authority and not r.additional and r.edns == 0


def test_expired_signatures_keep_a_dnssec_reply_whole() -> None:
    q = dns.message.make_query("www.example.org", "A", want_dnssec=True)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("www.example.org.", 60, "IN", "A", "10.0.0.1"))
    r.answer.append(dns.rrset.from_text("www.example.org.", 60, "IN", "RRSIG",
                                        "A 8 3 60 20000102000000 20000101000000 1 example.org. AAAA"))
    r.authority.append(dns.rrset.from_text("example.org.", 60, "IN", "NS", "ns1.example.org."))
    assert not minimize(r, 1, do=True) and r.authority
    assert minimize(r, 1, do=False) and not r.authority
    assert _valid_now(100, 200, 150) and not _valid_now(100, 200, 250)
    now = int(time.time())
    assert _valid_now(now - 60, now + 60, now)
    sig = "A 8 3 60 %d %d 1 example.org. AAAA"
    r.answer[1] = dns.rrset.from_text("www.example.org.", 60, "IN", "RRSIG", sig % (now + 60, now - 60))
    r.authority.append(dns.rrset.from_text("example.org.", 60, "IN", "NS", "ns1.example.org."))
    assert minimize(r, 1, do=True) and not r.authority       # a valid signature: minimized as any reply


@pytest.mark.parametrize("body", ["minimal on\n", "minimal {\n  x\n}\n"])
def test_setup_errors_name_file_line(body: str) -> None:
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(".:53 {\n" + body + "}\n", "Corefile"), "Corefile")
    assert "plugin/minimal: Corefile:2" in str(ei.value)
