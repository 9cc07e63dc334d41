"""file: authoritative answers from a zone file (CoreDNS plugin/file's README and lookup tests), on a real
server queried over UDP/TCP."""

from __future__ import annotations

import asyncio
import os

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest
from dns_support import rrs

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.plugins.file import FilePlugin

ZONE = """\
$ORIGIN example.org.
$TTL 3600
@       IN SOA  ns1.example.org. hostmaster.example.org. 2017042745 7200 3600 1209600 3600
        IN NS   ns1.example.org.
        IN NS   ns2.elsewhere.test.
        IN MX   10 mail.example.org.
ns1     IN A    10.98.0.1
mail    IN A    10.98.0.25
www     IN A    10.98.0.80
        IN AAAA fd00:98::80
alias   IN CNAME alias2
alias2  IN CNAME www
ext     IN CNAME web.target.test.
*.wild  IN A    10.98.0.99
a.b.c   IN A    10.98.0.3
sub     IN NS   ns.sub
ns.sub  IN A    10.98.5.53
old     IN DNAME new.example.org.
www.new IN A    10.98.0.9
"""

BODY = """
hosts {
  10.99.7.7 web.target.test
  fallthrough
}
file db.example.org example.org {
  reload 0
}
"""


@pytest.fixture
async def zone(make_dns):  # noqa: ANN001, ANN201
    return await make_dns(body=BODY, files={"db.example.org": ZONE}, load=False)


def aa(r) -> bool:  # noqa: ANN001
    return bool(r.flags & dns.flags.AA)


SOA = "example.org. SOA ns1.example.org. hostmaster.example.org. 2017042745 7200 3600 1209600 3600"
NS = {"example.org. NS ns1.example.org.", "example.org. NS ns2.elsewhere.test."}


async def test_positive_answers_are_authoritative_with_ns(zone) -> None:  # noqa: ANN001
    r = await zone.q("www.example.org", "A")
    assert r.rcode() == dns.rcode.NOERROR and aa(r)
    assert rrs(r) == {"www.example.org. A 10.98.0.80"} and r.answer[0].ttl == 3600
    assert rrs(r, "authority") == NS
    r = await zone.q("WWW.Example.ORG", "AAAA")
    assert rrs(r) == {"www.example.org. AAAA fd00:98::80"}


async def test_apex_soa_ns_and_mx_with_additional(zone) -> None:  # noqa: ANN001
    r = await zone.q("example.org", "SOA")
    assert rrs(r) == {SOA} and rrs(r, "authority") == NS and aa(r)
    r = await zone.q("example.org", "NS")
    assert rrs(r) == NS and rrs(r, "additional") == {"ns1.example.org. A 10.98.0.1"}
    r = await zone.q("example.org", "MX")
    assert rrs(r) == {"example.org. MX 10 mail.example.org."}
    assert rrs(r, "additional") == {"mail.example.org. A 10.98.0.25"}


async def test_nodata_and_nxdomain_carry_the_soa(zone) -> None:  # noqa: ANN001
    r = await zone.q("www.example.org", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and aa(r)
    assert rrs(r, "authority") == {SOA}
    r = await zone.q("nope.example.org", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer and aa(r)
    assert rrs(r, "authority") == {SOA}
    r = await zone.q("example.org", "A")                 # apex without A
    assert r.rcode() == dns.rcode.NOERROR and rrs(r, "authority") == {SOA}


async def test_empty_non_terminal_is_nodata(zone) -> None:  # noqa: ANN001
    for name in ("b.c.example.org", "c.example.org"):
        r = await zone.q(name, "A")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert rrs(r, "authority") == {SOA}


async def test_cname_chased_inside_the_zone_and_through_the_chain(zone) -> None:  # noqa: ANN001
    r = await zone.q("alias.example.org", "A")
    assert rrs(r) == {"alias.example.org. CNAME alias2.example.org.", "alias2.example.org. CNAME www.example.org.",
                      "www.example.org. A 10.98.0.80"}
    assert aa(r)
    r = await zone.q("alias.example.org", "CNAME")
    assert rrs(r) == {"alias.example.org. CNAME alias2.example.org."}
    r = await zone.q("ext.example.org", "A")                # target outside the zone: hosts answers it
    assert rrs(r) == {"ext.example.org. CNAME web.target.test.", "web.target.test. A 10.99.7.7"}


async def test_wildcard(zone) -> None:  # noqa: ANN001
    r = await zone.q("anything.wild.example.org", "A")
    assert rrs(r) == {"anything.wild.example.org. A 10.98.0.99"} and aa(r)
    r = await zone.q("deeper.anything.wild.example.org", "A")
    assert rrs(r) == {"deeper.anything.wild.example.org. A 10.98.0.99"}
    r = await zone.q("anything.wild.example.org", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and rrs(r, "authority") == {SOA}


async def test_delegation_is_a_referral_with_glue(zone) -> None:  # noqa: ANN001
    r = await zone.q("host.sub.example.org", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and not aa(r)
    assert rrs(r, "authority") == {"sub.example.org. NS ns.sub.example.org."}
    assert rrs(r, "additional") == {"ns.sub.example.org. A 10.98.5.53"}
    r = await zone.q("sub.example.org", "NS")
    assert rrs(r, "authority") == {"sub.example.org. NS ns.sub.example.org."} and not aa(r)


async def test_dname_synthesises_a_cname(zone) -> None:  # noqa: ANN001
    r = await zone.q("www.old.example.org", "A")
    assert rrs(r) == {"old.example.org. DNAME new.example.org.", "www.old.example.org. CNAME www.new.example.org.",
                      "www.new.example.org. A 10.98.0.9"}


async def test_outside_the_zone_goes_on_and_transfers_are_refused(zone) -> None:  # noqa: ANN001
    r = await zone.q("web.target.test", "A")
    assert rrs(r) == {"web.target.test. A 10.99.7.7"}
    r = await zone.q("example.org", "AXFR", tcp=True)
    assert r.rcode() == dns.rcode.REFUSED


async def test_fallthrough_on_nxdomain_only(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="file db.example.org example.org {\n  fallthrough\n}\nwhoami\n",
                       files={"db.example.org": ZONE}, load=False)
    r = await h.q("nope.example.org", "A")               # NXDOMAIN in the zone: whoami answers
    assert r.rcode() == dns.rcode.NOERROR and any(rr.rdtype == dns.rdatatype.SRV for rr in r.additional)
    r = await h.q("www.example.org", "TXT")              # NODATA stays the zone's answer
    assert not r.additional and rrs(r, "authority") == {SOA}


async def test_reload_follows_the_serial(make_dns, tmp_path) -> None:  # noqa: ANN001
    h = await make_dns(body="file db.example.org example.org {\n  reload 0.1s\n}\n",
                       files={"db.example.org": ZONE}, load=False)
    path = tmp_path / "db.example.org"
    st = os.stat(path)
    # a change without a new serial is not served
    path.write_text(ZONE.replace("10.98.0.80", "10.98.0.81"))
    os.utime(path, (st.st_atime, st.st_mtime + 1))
    await asyncio.sleep(0.4)
    assert rrs(await h.q("www.example.org", "A")) == {"www.example.org. A 10.98.0.80"}
    path.write_text(ZONE.replace("10.98.0.80", "10.98.0.82").replace("2017042745", "2017042746"))
    os.utime(path, (st.st_atime, st.st_mtime + 2))
    for _ in range(40):
        r = await h.q("www.example.org", "A")
        if rrs(r) == {"www.example.org. A 10.98.0.82"}:
            break
        await asyncio.sleep(0.05)
    assert rrs(r) == {"www.example.org. A 10.98.0.82"}
    # a file that no longer parses keeps the zone
    path.write_text("this is not a zone\n")
    await asyncio.sleep(0.3)
    assert rrs(await h.q("www.example.org", "A")) == {"www.example.org. A 10.98.0.82"}


async def test_missing_file_is_servfail_until_it_appears(make_dns, tmp_path) -> None:  # noqa: ANN001
    h = await make_dns(body="file db.later example.org {\n  reload 0.1s\n}\n", load=False)
    r = await h.q("www.example.org", "A")
    assert r.rcode() == dns.rcode.SERVFAIL
    (tmp_path / "db.later").write_text(ZONE)
    for _ in range(40):
        r = await h.q("www.example.org", "A")
        if r.rcode() == dns.rcode.NOERROR:
            break
        await asyncio.sleep(0.05)
    assert rrs(r) == {"www.example.org. A 10.98.0.80"}


async def test_two_directives_in_one_block(make_dns) -> None:  # noqa: ANN001
    other = "$ORIGIN example.net.\n@ IN SOA ns. host. 1 2 3 4 5\nwww IN A 10.98.9.9\n"
    h = await make_dns(body="file db.example.org example.org\nfile db.example.net example.net\n",
                       files={"db.example.org": ZONE, "db.example.net": other}, load=False)
    assert rrs(await h.q("www.example.net", "A")) == {"www.example.net. A 10.98.9.9"}
    assert rrs(await h.q("www.example.org", "A")) == {"www.example.org. A 10.98.0.80"}
    assert sum(isinstance(p, FilePlugin) for p in h.runtime.plugins()) == 1


@pytest.mark.parametrize("body,files,needle", [
    ("file\n", {}, "file needs a DBFILE"),
    ("file db.none example.org {\n  reload 0\n}\n", {}, "open "),
    ("file db.bad example.org\n", {"db.bad": "www IN A not-an-ip\n"}, "failed to parse file"),
    ("file db.nosoa example.org\n", {"db.nosoa": "www IN A 10.0.0.1\n"}, "has no SOA record"),
    ("file db.out example.org\n", {"db.out": ZONE + "www.example.net. IN A 10.0.0.1\n"}, "failed to parse"),
    ("file db.example.org example.org {\n  bogus\n}\n", {"db.example.org": ZONE}, "unknown property 'bogus'"),
    ("file db.example.org example.org {\n  reload soon\n}\n", {"db.example.org": ZONE}, "invalid duration"),
], ids=lambda x: x if isinstance(x, str) and len(x) < 40 else str(x)[:40])
def test_setup_errors_name_file_line(tmp_path, body: str, files: dict[str, str], needle: str) -> None:  # noqa: ANN001
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    corefile = str(tmp_path / "Corefile")
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(".:53 {\n" + body + "}\n", corefile), corefile)
    assert needle in str(ei.value)
    assert "plugin/file: " in str(ei.value) and "Corefile:" in str(ei.value)


async def test_relative_include_is_beside_the_zone_file(make_dns) -> None:  # noqa: ANN001
    main = "$ORIGIN example.org.\n@ 60 IN SOA ns. host. 1 2 3 4 5\n$INCLUDE db.part\n"
    h = await make_dns(body="file db.example.org example.org\n",
                       files={"db.example.org": main, "db.part": "inc 60 IN A 10.98.1.1\n"}, load=False)
    r = await h.q("inc.example.org", "A")
    assert rrs(r) == {"inc.example.org. A 10.98.1.1"} and r.answer[0].ttl == 60


async def test_beside_kubernetes_in_one_block(make_dns) -> None:  # noqa: ANN001
    from dns_support import DEFAULT_BODY
    h = await make_dns(body=DEFAULT_BODY + "file db.example.org example.org\n", files={"db.example.org": ZONE})
    assert rrs(await h.q("web.apps.svc.cluster.local", "A")) == {"web.apps.svc.cluster.local. A 10.43.1.10"}
    assert rrs(await h.q("www.example.org", "A")) == {"www.example.org. A 10.98.0.80"}
    r = await h.q("nope.example.org", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and rrs(r, "authority") == {SOA}
