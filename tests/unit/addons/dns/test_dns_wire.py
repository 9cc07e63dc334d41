"""wire.py: client queries and upstream replies read as bytes; what they accept, dnspython accepts."""

from __future__ import annotations

import random

import dns.exception
import dns.flags
import dns.message
import dns.rrset
import pytest

from pyk3s.addons.dns.wire import MISMATCH, WireQuery, WireReply


def _reply(q: dns.message.Message, *rrsets: dns.rrset.RRset, extra: tuple[dns.rrset.RRset, ...] = ()) -> bytes:
    r = dns.message.make_response(q)
    r.flags |= dns.flags.RA
    r.answer.extend(rrsets)
    r.additional.extend(extra)
    return r.to_wire(want_shuffle=False)


@pytest.mark.parametrize(("name", "kw", "text"), [
    ("www.Example.TEST", {}, "www.example.test."),
    ("a-b_c.x", {"use_edns": 0, "payload": 1232, "want_dnssec": True}, "a-b_c.x."),
    ("*.wild.test", {}, "*.wild.test."),
])
def test_plain_queries_parse(name: str, kw: dict, text: str) -> None:
    m = dns.message.make_query(name, "AAAA", **kw)
    q = WireQuery.parse(m.to_wire())
    assert q is not None and q.name == text == m.question[0].name.to_text().lower()
    assert q.qtype == 28 and q.edns == ("use_edns" in kw) and q.do == ("want_dnssec" in kw)
    assert q.qname == m.question[0].name.to_wire().lower()


@pytest.mark.parametrize("make", [
    lambda: dns.message.make_query("a\\.b.test", "A"),                  # a dot inside a label
    lambda: dns.message.make_query("a b.test", "A"),                    # a character dnspython escapes
    lambda: dns.message.make_query("x.test", "A", rdclass="CH"),
    lambda: dns.message.make_query(".", "NS"),
    lambda: dns.message.make_query("x.test", "A", use_edns=1),          # EDNS version 1
    lambda: dns.message.make_response(dns.message.make_query("x.test", "A")),
])
def test_other_queries_are_left_to_the_chain(make) -> None:  # noqa: ANN001
    assert WireQuery.parse(make().to_wire()) is None


def test_random_bytes_never_raise() -> None:
    rng = random.Random(7)
    base = dns.message.make_query("www.example.test", "A", use_edns=0).to_wire()
    for _ in range(5000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[:rng.randrange(len(data) + 1)] if rng.random() < 0.2 else data
        WireQuery.parse(bytes(data))
        WireQuery.parse(bytes(rng.randrange(256) for _ in range(rng.randrange(40))))


def test_reply_records_ttl_and_render() -> None:
    m = dns.message.make_query("www.example.test", "A", use_edns=0, payload=1232)
    m.id = 99
    q = WireQuery.parse(m.to_wire())
    assert q is not None
    data = _reply(m, dns.rrset.from_text("www.example.test.", 300, "IN", "A", "10.99.0.1", "10.99.0.2"),
                  extra=(dns.rrset.from_text("ns.example.test.", 40, "IN", "A", "10.99.0.53"),))
    r = WireReply.read(data, q)
    assert isinstance(r, WireReply) and r.msg is None
    assert (r.an, r.ns, r.ar, r.min_ttl()) == (2, 0, 1, 40)
    r.set_ttl(30)
    r.body = r.rotated(r.groups(frozenset({1})), 1)
    out = dns.message.from_wire(r.render())
    assert out.id == 99 and out.edns == 0 and out.payload == 1232
    assert [rd.to_text() for rd in out.answer[0]] == ["10.99.0.2", "10.99.0.1"]
    assert {rr.ttl for sec in (out.answer, out.additional) for rr in sec} == {30}


def test_reply_for_another_question_and_bad_pointers() -> None:
    m = dns.message.make_query("www.example.test", "A")
    q = WireQuery.parse(m.to_wire())
    other = _reply(dns.message.make_query("evil.example.test", "A"))
    assert WireReply.read(other, q) is MISMATCH
    data = bytearray(_reply(m, dns.rrset.from_text("www.example.test.", 300, "IN", "A", "10.99.0.1")))
    qend = q.qend
    data[qend:qend + 2] = (0xC000 | qend).to_bytes(2, "big")      # the owner points at itself
    assert WireReply.read(bytes(data), q) is None
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(bytes(data))


def _bases() -> list[tuple[WireQuery, bytes]]:
    soa = "ns.example.test. h.example.test. 1 7200 1800 86400 60"
    out = []
    for qtype, answer, authority, additional in [
        ("MX", [("www", "MX", ["10 a.mx.example.test.", "20 b.mx.example.test."])], [("example.test", "SOA", [soa])],
         [("a.mx.example.test", "A", ["10.99.0.1"])]),
        ("A", [("www", "CNAME", ["t.example.test."]), ("t.example.test", "A", ["10.1.1.1", "10.1.1.2"])], [], []),
        ("TXT", [("www", "TXT", ['"abc" "de"', '""'])], [], []),
        ("SRV", [("www", "SRV", ["0 5 80 a.example.test."])], [], [("a.example.test", "AAAA", ["fd00::1"])]),
        ("A", [], [("example.test", "SOA", [soa])], []),
    ]:
        m = dns.message.make_query("www.example.test", qtype, use_edns=0)
        r = dns.message.make_response(m)
        r.use_edns(0, 0, 1232)
        for section, rrs in ((r.answer, answer), (r.authority, authority), (r.additional, additional)):
            for owner, rdtype, rdatas in rrs:
                name = "www.example.test." if owner == "www" else owner + "."
                section.append(dns.rrset.from_text(name, 300, "IN", rdtype, *rdatas))
        q = WireQuery.parse(m.to_wire())
        assert q is not None
        out.append((q, r.to_wire()))
    return out


def test_whatever_it_accepts_dnspython_accepts() -> None:
    """Random damage to real replies: a reply read as bytes must be one the plugin chain would take, and
    what the plugins do with it then must not fail."""
    rng = random.Random(11)
    bases = _bases()
    accepted = 0
    for _ in range(6000):
        q, good = rng.choice(bases)
        data = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(q.qend, len(data))] = rng.randrange(256)
        try:
            got = WireReply.read(bytes(data), q)
        except dns.exception.DNSException:
            continue                    # an unusual reply dnspython refused: the same outcome
        if isinstance(got, WireReply) and got.msg is None:
            accepted += 1
            dns.message.from_wire(got.wire(), ignore_trailing=True)     # must not raise
            got.groups(frozenset({1, 28, 15}))
            got.min_ttl()
            got.set_ttl(5)
            got.render()
    assert accepted > 1000
