"""Fast path: precompiled wire answers for the common cluster questions (the table; precompute.py builds it).

Rules:
- Built by running the real plugin chain (precompute mode: no cache writes, no upstream) on a
  lower-case, RD=1, no-EDNS query per question the plugins offer (`Plugin.fast_view`), so a fast answer
  is byte-for-byte what the slow path writes. Answers that would need the upstream are left out.
- The common query (lower case, RD=1, no EDNS: what stub resolvers and dnsperf send) is answered by
  one dict lookup keyed on the query bytes after the ID; the value is the whole reply after the ID.
  `UdpDns._readable_batch` and `UdpDns._readable` (server.py) do that lookup inline, so the per-packet work is one slice, one dict
  get, one list increment and one concatenation.
- Any other form (mixed case, RD=0, CD, EDNS) takes the general path: the reply is query ID + flags
  (RD/CD copied) + counts + the query's own question bytes (so the case the client used is kept;
  owner names are compression pointers into it) + the stored tail + OPT.
- Fast answers are counted per (qtype, rcode) class in a list and folded into the metrics on scrape;
  a rebuilt table takes over the counts the old one had not reported yet.
- Only plain queries qualify: QR=0, opcode QUERY, QDCOUNT 1, no answer/authority, at most one OPT
  (version 0) and nothing after it, class IN, no compression in the question. Anything else, and any
  reply larger than the client's buffer, goes to the slow path.
- Names a plugin's NxRule covers (kubernetes: search-path misses, `x.<ns>.svc.<zone>.svc.<zone>` and
  friends) are NXDOMAIN from one shared template whose SOA owner points at the zone inside the question.
  The common-form ones are remembered by query bytes (bounded, cleared when full).
- Cached replies: the wire form of the cache plugin's entries (wirecache.py) of the block a name routes to.
- A table is built off to the side and published with one assignment; the old one serves meanwhile.
  `updated` makes the copy an incremental update needs; the table also records what it was made from
  (each fast source's view, which source's SOA serial ends each negative answer, whose NxRule it holds).
"""

from __future__ import annotations

import itertools
import struct
from time import monotonic
from typing import TYPE_CHECKING

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype as T

from .wirecache import WireEntry, WireStore

if TYPE_CHECKING:
    from .plugin import FastView, NxRule, Plugin

__all__ = ["RD1_NO_EDNS", "Entry", "FastTable", "nx_template"]

_HDR = struct.Struct(">HHHHH")
_OPT = struct.Struct(">BHHBBHH")
NO_EDNS = b"\x00\x01\x00\x00\x00\x00\x00\x00"
ONE_OPT = b"\x00\x01\x00\x00\x00\x00\x00\x01"
NX_MEMO = 20000
_DO_CD = (b"\x00", b"\x01", b"\x02", b"\x03")   # the wire cache key's last byte: DO << 1 | CD
RD1_NO_EDNS = b"\x01\x00" + NO_EDNS          # flags (RD) and counts of the common query, after the ID
_FLAGS_COUNTS = struct.Struct(">H6sH")          # flags, QD/AN/NS counts, AR count

Entry = tuple[int, int, int, int, tuple[bytes, ...]]   # flags, AN, NS, AR counts, tails after the question


class FastTable:
    __slots__ = ("direct", "hits", "classes", "nx_direct", "entries", "nx", "_rr", "counts", "labels", "caches",
                 "_nx_memo", "root_cache", "_class_of", "negatives", "sources", "nx_source")

    def __init__(self, entries: dict[bytes, Entry], nx: NxRule | None, labels: tuple[str, str] | None = None,
                 caches: tuple[tuple[bytes, WireStore | None], ...] = (),
                 negatives: dict[bytes, Plugin] | None = None,
                 sources: dict[Plugin, FastView] | None = None,
                 nx_source: Plugin | None = None) -> None:
        # single-answer entries, keyed on the common query after its ID: (reply after the ID, class index);
        # entries keeps only the ones loadbalance rotates
        self.direct: dict[bytes, tuple[bytes, int]] = {}
        self.classes: list[tuple[int, int]] = []      # class index -> (qtype, rcode)
        self._class_of: dict[tuple[int, int], int] = {}
        self.entries: dict[bytes, Entry] = {}
        for question, e in entries.items():
            self._put(question, e)
        self.hits = [0] * len(self.classes)
        self.nx_direct: dict[bytes, bytes] = {}       # common-form NXDOMAIN queries after the ID -> reply
        self.nx = nx
        # (zone wire, the cache's wire store that may answer), longest zone first; None: that block has
        # a plugin the fast path must not skip
        self.caches = caches if any(c is not None for _, c in caches) else ()
        # the common layout, one catch-all block: its cache can be tried before parsing the question
        self.root_cache = caches[0][1] if len(caches) == 1 and caches[0][0] == b"\x00" else None
        self._nx_memo: dict[bytes, int] = {}    # lower-case qname -> nx.cut (nx never changes in a table)
        self._rr = itertools.count()
        self.counts: dict[tuple[int, int], int] = {}   # (qtype, rcode) -> answers, folded into metrics
        self.labels = labels                            # (server, zone) when the block has prometheus
        # what an incremental update needs: the negative answers (question -> the plugin whose SOA
        # serial ends them), the view each fast source's answers come from, and the plugin the NxRule
        # was made from
        self.negatives: dict[bytes, Plugin] = negatives or {}
        self.sources: dict[Plugin, FastView] = sources or {}
        self.nx_source = nx_source

    def _put(self, question: bytes, e: Entry) -> None:
        flags, an, ns, ar, tails = e
        if len(tails) != 1:
            self.direct.pop(RD1_NO_EDNS + question, None)
            self.entries[question] = e
            return
        self.entries.pop(question, None)
        k = (question[-4] << 8 | question[-3], flags & 0xF)
        cls = self._class_of.get(k)
        if cls is None:
            cls = self._class_of[k] = len(self.classes)
            self.classes.append(k)
        self.direct[RD1_NO_EDNS + question] = (_HDR.pack(flags | 0x0100, 1, an, ns, ar) + question + tails[0], cls)

    def updated(self, drop: set[bytes], add: dict[bytes, Entry], serials: dict[bytes, bytes], nx: NxRule | None,
                negatives: dict[bytes, Plugin], sources: dict[Plugin, FastView]) -> FastTable:
        """A copy with the `drop` questions gone, `add` put in and the SOA serial of the negative
        answers in `serials` (question -> 4 bytes) replaced; this table keeps serving meanwhile."""
        t = FastTable.__new__(FastTable)
        t.direct = self.direct.copy()
        t.entries = self.entries.copy()
        t.classes = list(self.classes)
        t._class_of = dict(self._class_of)
        for q in drop:
            t.direct.pop(RD1_NO_EDNS + q, None)
            t.entries.pop(q, None)
        for q, e in add.items():
            t._put(q, e)
        direct = t.direct
        for q, serial in serials.items():
            hit = direct.get(RD1_NO_EDNS + q)
            if hit is not None:     # a negative answer ends with the SOA: serial, then 16 bytes of timers
                direct[RD1_NO_EDNS + q] = (hit[0][:-20] + serial + hit[0][-16:], hit[1])
        t.hits = [0] * len(t.classes)
        same_nx = nx is self.nx
        t.nx = nx
        t.nx_direct = self.nx_direct if same_nx else {}
        t._nx_memo = self._nx_memo if same_nx else {}
        t.caches, t.root_cache, t.labels = self.caches, self.root_cache, self.labels
        t._rr = self._rr
        t.counts = {}
        t.negatives = negatives
        t.sources = sources
        t.nx_source = self.nx_source
        return t

    def drain(self) -> dict[tuple[int, int], int]:
        counts, self.counts = self.counts, {}
        hits = self.hits
        for i, n in enumerate(hits):
            if n:
                hits[i] = 0
                k = self.classes[i]
                counts[k] = counts.get(k, 0) + n
        return counts

    def take_counts(self, old: FastTable) -> None:
        """Carry over what `old` counted and has not reported yet (called right before the swap)."""
        c = self.counts
        for k, n in old.drain().items():
            c[k] = c.get(k, 0) + n

    def __len__(self) -> int:
        return len(self.direct) + len(self.entries)

    def answer(self, data: bytes) -> bytes | None:
        # the common query; the UDP loops in server.py repeat these lines inline to save the call
        hit = self.direct.get(data[2:])
        if hit is not None:
            self.hits[hit[1]] += 1
            return data[:2] + hit[0]
        return self.answer_other(data)

    def answer_other(self, data: bytes) -> bytes | None:
        """Everything but a `direct` hit."""
        n = len(data)
        if n < 17 or data[2] & 0xF8:
            return None
        counts = data[4:12]
        if counts == NO_EDNS:
            nxr = self.nx_direct.get(data[2:])
            if nxr is not None:
                k = (data[n - 4] << 8 | data[n - 3], 3)
                c = self.counts
                c[k] = c.get(k, 0) + 1
                return data[:2] + nxr
            e = self.entries.get(data[12:])
            if e is not None:       # a rotating entry, lower-case plain query: key is the question as is
                flags, an, ns, ar, tails = e
                tail = tails[0] if len(tails) == 1 else tails[next(self._rr) % len(tails)]
                if n + len(tail) > 512:
                    return None
                k = (data[n - 4] << 8 | data[n - 3], flags & 0xF)
                c = self.counts
                c[k] = c.get(k, 0) + 1
                return data[:2] + _HDR.pack(flags | (((data[2] << 8) | data[3]) & 0x0110), 1, an, ns, ar) + \
                    data[12:] + tail
            rc = self.root_cache        # a lower-case plain query for a name the cache holds
            if rc is not None and (w := rc.entries.get(data[12:] + _DO_CD[data[3] >> 4 & 1])) is not None:
                reply = self._wire_reply(rc, w, data, n - 4, n, ((data[2] << 8) | data[3]) & 0x0110, False, b"", 512)
                if reply is not None:
                    return reply
            if data[n - 5]:             # the name must end right before type and class
                return None
            end, edns, limit, opt = n, False, 512, b""
        elif counts == ONE_OPT:
            if n >= 28 and data[n - 11:n - 8] == b"\x00\x00\x29" and data[n - 2:] == b"\x00\x00":
                end = n - 11            # the usual shape: an OPT without options right after the question
            else:
                qe = _question_end(data)
                if qe is None or qe + 11 > n:
                    return None
                end = qe
            if data[end] != 0 or data[end + 1] != 0 or data[end + 2] != 41:
                return None
            _, _, payload, ext, version, dof, rdlen = _OPT.unpack_from(data, end)
            if ext or version or end + 11 + rdlen != n:
                return None
            edns = True
            limit = payload if payload > 512 else 512
            opt = _OPT.pack(0, 41, min(max(payload, 512), 4096), 0, 0, dof & 0x8000, 0)
        else:
            return None
        qend = end - 4
        if data[qend - 1]:
            return None
        qname = data[12:qend].lower()
        qflags = ((data[2] << 8) | data[3]) & 0x0110
        hit = self.direct.get(RD1_NO_EDNS + qname + data[qend:end])
        if hit is not None:
            r = hit[0]                          # flags, counts, question (end - 12 bytes), tail
            if 2 + len(r) + len(opt) > limit:
                return None
            self.hits[hit[1]] += 1
            return (data[:2] + _FLAGS_COUNTS.pack(((r[0] << 8 | r[1]) & ~0x0110) | qflags, r[2:8],
                                                  (r[8] << 8 | r[9]) + edns) +
                    data[12:end] + r[end - 2:] + opt)
        e = self.entries.get(qname + data[qend:end])
        if e is not None:
            flags, an, ns, ar, tails = e
            tail = tails[0] if len(tails) == 1 else tails[next(self._rr) % len(tails)]
            if end + len(tail) + len(opt) > limit:
                return None
            k = (data[qend] << 8 | data[qend + 1], flags & 0xF)
            c = self.counts
            c[k] = c.get(k, 0) + 1
            return data[:2] + _HDR.pack(flags | qflags, 1, an, ns, ar + edns) + data[12:end] + tail + opt
        if data[qend + 2:end] == b"\x00\x01":
            reply = self._nx(data, qname, qend, end, qflags, edns, opt, limit)
            if reply is None and self.caches:
                reply = self._cached(data, qname, qend, end, qflags, edns, opt, limit)
            return reply
        return None

    def _nx(self, data: bytes, qname: bytes, qend: int, end: int, qflags: int, edns: bool, opt: bytes,
            limit: int) -> bytes | None:
        nx = self.nx
        if nx is None:
            return None
        cut = self._nx_memo.get(qname)
        if cut is None:
            cut = nx.cut(qname)
            memo = self._nx_memo
            if len(memo) >= NX_MEMO:
                memo.clear()
            memo[qname] = cut
        if cut < 0:
            return None
        qtype = data[qend] << 8 | data[qend + 1]
        if qtype in (251, 252):
            return None
        ptr = 0xC000 | (12 + cut)
        if end + 2 + len(nx.soa) + len(opt) > limit:
            return None
        k = (qtype, 3)
        c = self.counts
        c[k] = c.get(k, 0) + 1
        reply = (data[:2] + _HDR.pack(nx.flags | qflags, 1, 0, 1, edns) + data[12:end] +
                 ptr.to_bytes(2, "big") + nx.soa + opt)
        if not edns and qflags == 0x0100 and data[2:4] == b"\x01\x00" and data[12:qend] == qname:
            nxd = self.nx_direct
            if len(nxd) >= NX_MEMO:
                nxd.clear()
            nxd[data[2:]] = reply[2:]
        return reply

    def _cached(self, data: bytes, qname: bytes, qend: int, end: int, qflags: int, edns: bool, opt: bytes,
                limit: int) -> bytes | None:
        """A hit in the wire form of the cache plugin of the block this name routes to."""
        cache = None
        for zone, store in self.caches:
            if zone == b"\x00" or qname == zone or (qname.endswith(zone) and _at_label(qname, len(qname) - len(zone))):
                cache = store
                break
        if cache is None:
            return None
        e = cache.entries.get(qname + data[qend:end] + _DO_CD[(2 if edns and opt[7] & 0x80 else 0) | (data[3] >> 4 & 1)])
        if e is None:
            return None
        return self._wire_reply(cache, e, data, qend, end, qflags, edns, opt, limit)

    def _wire_reply(self, cache: WireStore, e: WireEntry, data: bytes, qend: int, end: int, qflags: int,
                    edns: bool, opt: bytes, limit: int) -> bytes | None:
        tail = e.tail(monotonic(), cache.keepttl)
        if tail is None or end + len(tail) + len(opt) > limit:
            return None
        cache.counts[e.kind] += 1
        k = (data[qend] << 8 | data[qend + 1], e.flags & 0xF)
        c = self.counts
        c[k] = c.get(k, 0) + 1
        an, ns, ar = e.counts
        return data[:2] + _HDR.pack(e.flags | qflags, 1, an, ns, ar + edns) + data[12:end] + tail + opt


def _question_end(data: bytes) -> int | None:
    """Offset just past the (uncompressed) question of a query, or None."""
    i, n = 12, len(data)
    while True:
        if i >= n:
            return None
        ln = data[i]
        if ln == 0:
            break
        if ln > 63:
            return None
        i += ln + 1
    return i + 5 if i + 5 <= n else None


def _at_label(name: bytes, cut: int) -> bool:
    """Whether byte `cut` of a wire name starts a label (not a byte inside one)."""
    i = 0
    while i < cut:
        i += name[i] + 1
    return i == cut


def nx_template(reply: dns.message.Message) -> tuple[int, bytes] | None:
    """An NxRule's flags and SOA bytes from a precomputed NXDOMAIN whose only record is the zone's SOA."""
    if reply.rcode() != dns.rcode.NXDOMAIN or len(reply.authority) != 1 or reply.answer:
        return None
    soa_rr = reply.authority[0]
    if soa_rr.rdtype != T.SOA:
        return None
    rd = soa_rr[0]
    rdata = (_name_wire(rd.mname) + _name_wire(rd.rname) +
             struct.pack(">IIIII", rd.serial, rd.refresh, rd.retry, rd.expire, rd.minimum))
    soa = struct.pack(">HHIH", T.SOA, 1, soa_rr.ttl, len(rdata)) + rdata
    flags = int(((reply.flags & ~(dns.flags.RD | dns.flags.CD)) & 0xFFF0) | dns.rcode.NXDOMAIN)
    return flags, soa


def _name_wire(name: dns.name.Name) -> bytes:
    wire = name.to_wire()
    assert wire is not None         # None only when writing into a file
    return wire
