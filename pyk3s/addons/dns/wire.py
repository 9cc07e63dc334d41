"""Wire forms for the forward lane: a client query and an upstream reply, read only as far as the lane needs.

Rules:
- `WireQuery.parse` takes plain queries only: QR=0, opcode QUERY, QDCOUNT 1, no answer or authority, at
  most one OPT (version 0, last), class IN, an uncompressed question whose name is letters, digits, `-`,
  `_` and `*` (so its text form is exactly what dnspython writes). Anything else is None and goes to the
  plugin chain with dnspython.
- `WireReply.read` walks the upstream reply's records once: where each starts, its type and TTL offset,
  the OPT (which must be the last record). It checks what dnspython's parser checks, so a reply kept as
  bytes is one the slow path would have taken: names (label types, compression pointers each pointing
  before the last, never into the name itself), and the rdata of the common types (class IN A, AAAA,
  NS, CNAME, PTR, MX, SRV, SOA, TXT). A reply that is not well formed is None; one whose question is not
  the query's is `MISMATCH` (CoreDNS answers FORMERR).
- A reply stays bytes unless a plugin needs more (`to_message`): then dnspython takes over, exactly as on
  the slow path. Anything else (other types or classes, an extended rcode, an OPT not last, TSIG, an
  opcode but QUERY) starts as a message: dnspython decides whether it is well formed.
- `render` writes the client's reply: its ID, the upstream's flags, the client's own question bytes, the
  records (owner names point into the question, which has the same length), and an OPT when the client
  sent one (DO copied, size clamped to 512..4096). None when it would not fit the client's buffer: the
  message path truncates it.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rdatatype as T

__all__ = ["MISMATCH", "WireQuery", "WireReply", "render_message", "rcode_reply"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HDR = struct.Struct(">HHHHH")
_COUNTS = struct.Struct(">HHHH")
_OPT = struct.Struct(">BHHBBHH")
_SAFE_NAME = re.compile(rb"[a-z0-9_*.-]+")
_A, _AAAA, _OPT_T, _TXT = 1, 28, 41, 16
# rdata layouts with names in them (compression allowed): bytes before the first name, how many names,
# bytes after them
_NAMED = {2: (0, 1, 0), 5: (0, 1, 0), 12: (0, 1, 0), 15: (2, 1, 0), 33: (6, 1, 0), 6: (0, 2, 20)}
_MAX_HOPS = 16              # dnspython's longest chain of compression pointers
MISMATCH: Any = object()       # an upstream reply that is not for the question asked


class WireQuery:
    """One plain client query on the forward lane. The lane and the plugin that sends it upstream keep
    their state for the query in the slots after `do` (each sets its own before use)."""

    __slots__ = ("data", "qend", "qname", "name", "qtype", "edns", "payload", "do", "cd", "addr", "sink",
                 "start", "lane", "zone", "sender", "ups", "tried", "up", "deadline", "qid", "sent", "held")

    def __init__(self, data: bytes, qend: int, qname: bytes, name: str, qtype: int, edns: bool, payload: int,
                 do: bool) -> None:
        self.data = data            # the query as the client sent it
        self.qend = qend            # end of the question (after type and class)
        self.qname = qname          # lower-case wire name
        self.name = name            # lower-case text FQDN, as the chain's DnsRequest.name
        self.qtype = qtype
        self.edns = edns
        self.payload = payload      # the client's EDNS buffer size (0 without EDNS)
        self.do = do
        self.cd = bool(data[3] & 0x10)
        # the lane's: addr, sink (the listener), start, lane, zone; the sender's: sender, ups, tried, up,
        # deadline, held (a reply kept while the next upstream is asked); the channel's: qid, sent
        self.addr: Any
        self.sink: Any
        self.start: float
        self.lane: Any
        self.zone: str
        self.sender: Any
        self.ups: Any
        self.tried: int
        self.up: Any
        self.deadline: float
        self.qid: int
        self.sent: float
        self.held: Any

    @classmethod
    def parse(cls, data: bytes) -> WireQuery | None:
        n = len(data)
        if n < 17 or data[2] & 0xF8 or data[4:10] != b"\x00\x01\x00\x00\x00\x00":
            return None
        i = 12
        dots = []
        while True:
            ln = data[i]
            if ln == 0:
                break
            if ln > 63:
                return None
            dots.append(i - 13)
            i += ln + 1
            if i >= n:
                return None
        qend = i + 5
        if qend > n or data[qend - 2] or data[qend - 1] != 1 or not dots:
            return None
        arcount = data[10] << 8 | data[11]
        edns, payload, do = False, 0, False
        if arcount == 0:
            if qend != n:
                return None
        elif arcount == 1:
            # the OPT: root owner, type 41, payload, extended rcode and version 0, flags, options
            if qend + 11 > n or data[qend] or data[qend + 1] or data[qend + 2] != 41 or data[qend + 5] or \
                    data[qend + 6] or qend + 11 + (data[qend + 9] << 8 | data[qend + 10]) != n:
                return None
            edns, payload, do = True, data[qend + 3] << 8 | data[qend + 4], bool(data[qend + 7] & 0x80)
        else:
            return None
        qname = data[12:i + 1].lower()
        text = bytearray(qname[1:])     # the labels with their length bytes turned into dots
        for d in dots[1:]:
            text[d] = 46
        text[-1] = 46
        # letters, digits, - _ * only, and no dot inside a label
        if _SAFE_NAME.fullmatch(text) is None or text.count(46) != len(dots):
            return None
        return cls(data, qend, qname, text.decode("ascii"), data[qend - 4] << 8 | data[qend - 3], edns, payload,
                   do)

    @property
    def limit(self) -> int:
        """The largest reply the client takes over UDP."""
        return max(512, self.payload) if self.edns else 512

    def opt(self) -> bytes:
        """The OPT of our reply (empty without EDNS)."""
        if not self.edns:
            return b""
        return _OPT.pack(0, 41, min(max(self.payload, 512), 4096), 0, 0, 0x8000 if self.do else 0, 0)

    def message(self) -> dns.message.Message:
        return dns.message.from_wire(self.data)


def rcode_reply(q: WireQuery, rcode: int) -> bytes:
    """A reply with only the question (what DnsRequest.reply renders): RD/CD copied, EDNS as the client's."""
    d = q.data
    flags = 0x8000 | ((d[2] << 8 | d[3]) & 0x0110) | rcode
    return d[:2] + _HDR.pack(flags, 1, 0, 0, 1 if q.edns else 0) + d[12:q.qend] + q.opt()


def _skip_name(d: bytes, i: int, n: int) -> int:
    """Offset after the name at `i` without following pointers; -1 when it runs past `n` or has a bad label."""
    while i < n:
        ln = d[i]
        if ln == 0:
            return i + 1
        if ln >= 0xC0:
            return i + 2 if i + 2 <= n else -1
        if ln > 63:
            return -1
        i += ln + 1
    return -1


def _name_end(d: bytes, i: int, limit: int) -> int:
    """Where the name at `i` ends in place (after its root label or its first pointer); -1 when dnspython
    would refuse it: a label past `limit`, a label type it does not know, a pointer not pointing before
    the previous one, a target running into the part that points to it, a chain over _MAX_HOPS."""
    biggest = start = i
    end = -1
    hops = 0
    while i < limit:
        c = d[i]
        if c == 0:
            return i + 1 if end < 0 else end
        if c < 64:
            i += c + 1
            continue
        if c < 192 or i + 1 >= limit:
            return -1
        target = (c & 0x3F) << 8 | d[i + 1]
        hops += 1
        if target >= biggest or hops > _MAX_HOPS:
            return -1
        if end < 0:
            end = i + 2
        limit = start               # the target may not run into what was read so far
        biggest = target
        i = start = target
    return -1


def _name_lower(d: bytes, i: int) -> bytes | None:
    """The name at `i` with pointers followed (each must point back), lower case; None when it is not a
    well-formed name."""
    out: list[bytes] = []
    n = len(d)
    while i < n:
        ln = d[i]
        if ln == 0:
            return b"".join(out) + b"\x00"
        if ln >= 0xC0:
            if i + 1 >= n:
                return None
            target = (ln & 0x3F) << 8 | d[i + 1]
            if target >= i:
                return None
            i = target
            continue
        if ln > 63 or i + ln + 1 > n:
            return None
        out.append(d[i:i + ln + 1].lower())
        i += ln + 1
    return None


class WireReply:
    """An upstream reply to a WireQuery: its records' places, the OPT, and the body the client gets
    (the records after the question, without the OPT), which plugins may edit (`set_ttl`, `rotate`)."""

    __slots__ = ("data", "q", "rrs", "an", "ns", "ar", "opt_at", "body", "msg", "_groups")

    def __init__(self, data: bytes, q: WireQuery, rrs: list[tuple[int, int, int, int]], an: int, ns: int,
                 ar: int, opt_at: int) -> None:
        self.data = data
        self.q = q
        self.rrs = rrs              # (start, type, TTL offset, end) of each record but the OPT
        self.an, self.ns, self.ar = an, ns, ar      # section counts without the OPT
        self.opt_at = opt_at        # where the OPT starts (len(data) without one)
        self.body: bytes | bytearray = data[q.qend:opt_at]
        self.msg: dns.message.Message | None = None  # set once a plugin needed dnspython
        self._groups: list[tuple[int, int]] | None | bool = False

    @classmethod
    def read(cls, data: bytes, q: WireQuery) -> WireReply | None:
        """The reply, None when it is not well formed, MISMATCH when it answers another question."""
        n = len(data)
        if n < 12:
            return None
        qd, an, ns, ar = _COUNTS.unpack_from(data, 4)
        qend = q.qend
        if qd != 1 or not data[2] & 0x80:
            return MISMATCH
        if n < qend or data[12:qend - 4].lower() != q.qname or data[qend - 4:qend - 2] != q.data[qend - 4:qend - 2]:
            e = _skip_name(data, 12, n)
            return MISMATCH if 0 < e <= n - 4 else None
        i = qend
        rrs = []
        opt_at = -1
        unusual = bool(data[2] & 0x78)      # an opcode but QUERY
        total = an + ns + ar
        for k in range(total):
            start = i
            if i + 1 < n and data[i] == 0xC0 and data[i + 1] == 12:     # the usual owner: the question's name
                i += 2
            else:
                i = _name_end(data, i, n)
                if i < 0:
                    return None
            if i + 10 > n:
                return None
            rtype = data[i] << 8 | data[i + 1]
            end = i + 10 + (data[i + 8] << 8 | data[i + 9])
            if end > n:
                return None
            if rtype == _OPT_T:
                if k != total - 1 or k < an + ns or data[i + 4] or i != start + 1:
                    unusual = True          # not last, outside additional, an extended rcode, not the root
                opt_at = start
                i = end
                continue
            if data[i + 2] or data[i + 3] != 1:
                unusual = True              # not class IN
            elif rtype == _A:
                if end - i != 14:
                    return None
            elif rtype == _AAAA:
                if end - i != 26:
                    return None
            elif rtype in _NAMED:
                before, names, after = _NAMED[rtype]
                j = i + 10 + before
                for _ in range(names):
                    j = _name_end(data, j, end) if j < end else -1
                    if j < 0:
                        return None
                if j + after != end:
                    return None
            elif rtype == _TXT:
                j = i + 10
                if j == end:
                    return None             # no string at all
                while j < end:
                    j += data[j] + 1
                if j != end:
                    return None
            else:
                unusual = True
            rrs.append((start, rtype, i + 4, end))
            i = end
        if opt_at >= 0:
            ar -= 1
        else:
            opt_at = i
        r = cls(data, q, rrs, an, ns, ar, opt_at)
        if unusual:
            r.to_message()          # raises dns.exception.DNSException when dnspython refuses it
        return r

    @property
    def rcode(self) -> int:
        if self.msg is not None:
            return int(self.msg.rcode())
        return self.data[3] & 0x0F

    @property
    def flags(self) -> int:
        if self.msg is not None:
            return int(self.msg.flags)
        return self.data[2] << 8 | self.data[3]

    def min_ttl(self) -> int | None:
        """The smallest TTL of the records (the OPT aside); one over 2^31 - 1 counts as 0, as in dnspython."""
        d = self.data
        low = None
        for rr in self.rrs:
            off = rr[2]
            t = d[off] << 24 | d[off + 1] << 16 | d[off + 2] << 8 | d[off + 3]
            if t > 0x7FFFFFFF:
                t = 0
            if low is None or t < low:
                low = t
        return low

    def set_ttl(self, ttl: int) -> None:
        """Give every record (the OPT aside) this TTL."""
        b = bytearray(self.body)
        base = self.q.qend
        t = _U32.pack(ttl)
        for rr in self.rrs:
            off = rr[2] - base
            b[off:off + 4] = t
        self.body = b

    def ttl_offsets(self) -> tuple[int, ...]:
        """Where each record's TTL is in the body."""
        base = self.q.qend
        return tuple(off - base for _, _, off, _ in self.rrs)

    def wire(self) -> bytes:
        """The reply as it now stands (ID, question and OPT as the upstream wrote them)."""
        return self.data[:self.q.qend] + bytes(self.body) + self.data[self.opt_at:]

    def to_message(self) -> dns.message.Message:
        """The reply as dnspython's message, from here on the reply plugins see (raises DNSException)."""
        if self.msg is None:
            self.msg = dns.message.from_wire(self.wire(), ignore_trailing=True)
        return self.msg

    # -- rotation (loadbalance) --------------------------------------------------------------
    def groups(self, types: frozenset[int]) -> list[tuple[int, int]] | None:
        """Runs [i, j) of `rrs` that are one RRset of a type in `types` with more than one record, in the
        answer or additional section; None when such a set cannot be rotated as bytes (not contiguous,
        owners written out, records of different sizes, a name in its rdata, duplicates)."""
        if self._groups is not False:
            return self._groups  # type: ignore[return-value]
        out: list[tuple[int, int]] | None = []
        rrs, d, an, ns = self.rrs, self.data, self.an, self.ns
        if len(rrs) - ns < 2:               # the usual reply: nothing that could be rotated
            return self._set_groups(out)
        for lo, hi in ((0, an), (an + ns, len(rrs))):
            typed = [rrs[k][1] for k in range(lo, hi) if rrs[k][1] in types]
            if len(set(typed)) == len(typed):
                continue                    # no type twice: nothing to rotate here
            seen: dict[tuple[bytes, int], int] = {}
            run_key: tuple[bytes, int] | None = None
            for k in range(lo, hi):
                start, rtype, off, end = rrs[k]
                if rtype not in types:
                    run_key = None
                    continue
                owner = _name_lower(d, start)
                if owner is None:
                    return self._set_groups(None)
                key = (owner, rtype)
                if key == run_key:
                    continue
                if key in seen:
                    return self._set_groups(None)      # the same set again, apart
                seen[key] = k
                run_key = key
            for key, first in seen.items():
                last = first
                while last + 1 < hi and rrs[last + 1][1] == key[1] and _name_lower(d, rrs[last + 1][0]) == key[0]:
                    last += 1
                if last == first:
                    continue
                run = rrs[first:last + 1]
                size = run[0][3] - run[0][0]
                rdatas = set()
                for start, rtype, off, end in run:
                    if end - start != size or off - start != 6 or d[start] < 0xC0 or rtype in _NAMED:
                        return self._set_groups(None)
                    rdatas.add(d[off + 6:end])
                if len(rdatas) != len(run):
                    return self._set_groups(None)
                assert out is not None
                out.append((first, last + 1))
        return self._set_groups(out)

    def _set_groups(self, g: list[tuple[int, int]] | None) -> list[tuple[int, int]] | None:
        self._groups = g
        return g

    def rotated(self, groups: list[tuple[int, int]], shift: int) -> bytes:
        """The body with each group's records rotated left by `shift` (dnspython's loadbalance order)."""
        body = self.body
        base = self.q.qend
        out = []
        pos = 0
        for i, j in groups:
            s0 = self.rrs[i][0] - base
            size = self.rrs[i][3] - self.rrs[i][0]
            count = j - i
            k = shift % count
            out.append(body[pos:s0])
            out.append(body[s0 + k * size:s0 + count * size])
            out.append(body[s0:s0 + k * size])
            pos = s0 + count * size
        out.append(body[pos:])
        return b"".join(out)

    def width(self, groups: list[tuple[int, int]]) -> int:
        return max((j - i for i, j in groups), default=1)

    # -- the client's reply --------------------------------------------------------------------
    def render(self) -> bytes | None:
        """The client's reply as bytes; None when it does not fit the client's buffer (the message path
        then truncates it as the slow path does)."""
        q = self.q
        d = q.data
        opt = q.opt()
        body = self.body
        if q.qend + len(body) + len(opt) > q.limit:
            return None
        return d[:2] + self.data[2:4] + _COUNTS.pack(1, self.an, self.ns, self.ar + (1 if opt else 0)) + \
            d[12:q.qend] + body + opt


def render_message(q: dns.message.Message, reply: dns.message.Message, proto: str) -> bytes | None:
    """`reply` to the query `q` as the client gets it: the query's ID, EDNS as the client's (payload
    clamped to 512..4096), and truncated to what the client takes (additional first, then whole RRsets,
    with TC set)."""
    reply.id = q.id
    rcode = reply.rcode()
    if q.edns >= 0:
        reply.use_edns(0, q.ednsflags & dns.flags.DO, max(512, min(q.payload, 4096)))
    else:
        reply.use_edns(False)
    reply.set_rcode(rcode)
    limit = 65535 if proto == "tcp" else (max(512, q.payload) if q.edns >= 0 else 512)
    try:
        return reply.to_wire(max_size=limit, want_shuffle=False)
    except dns.exception.TooBig:
        pass
    reply.additional = []
    try:
        return reply.to_wire(max_size=limit, want_shuffle=False)
    except dns.exception.TooBig:
        pass
    reply.flags |= dns.flags.TC
    kept = []
    for rr in reply.answer:              # keep as many whole RRsets as fit
        kept.append(rr)
        reply.answer = kept
        try:
            reply.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            kept.pop()
            break
    reply.answer = kept
    reply.authority = []
    try:
        return reply.to_wire(max_size=limit, want_shuffle=False)
    except dns.exception.TooBig:
        reply.answer = []
        return reply.to_wire(max_size=limit, want_shuffle=False)


ROTATED_TYPES = frozenset({T.A, T.AAAA, T.MX})
