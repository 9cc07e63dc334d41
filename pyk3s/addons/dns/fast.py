"""Fast path: precompiled wire answers for the common cluster questions.

Rules:
- Built by running the real plugin chain (precompute mode: no cache writes, no upstream) on a
  lower-case, RD=1, no-EDNS query per question the kubernetes and hosts plugins name, so a fast answer
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
- Search-path misses (`x.<ns>.svc.<zone>.svc.<zone>` and friends) are NXDOMAIN from one shared
  template whose SOA owner points at the zone inside the question.
  The common-form ones are remembered by query bytes (bounded, cleared when full).
- A table is built off to the side and published with one assignment; the old one serves meanwhile.
- A whole build (`build_fast`) runs on config changes, hosts changes and the first sync. A Kubernetes
  change only recomputes the questions of the Services whose records changed and the PTRs of their
  addresses (`update_fast`), on a copy of the previous table. Precomputing answers from the very index
  the table records (`KubernetesPlugin.pinned`) keeps this exact even when the index moves on meanwhile.
- Negative answers end with the zone's SOA, whose serial is the time of the last change (P29) and so
  differs after every change: their serial bytes are patched in place instead of recomputing them, and
  the NXDOMAIN rule's SOA likewise.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from dataclasses import dataclass, replace
from time import monotonic
from typing import TYPE_CHECKING

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype as T

from .plugin import NotFast, Request
from .plugins.cache import CachePlugin
from .plugins.cache_wire import WireEntry
from .plugins.loadbalance import LoadbalancePlugin, rotate

if TYPE_CHECKING:
    from .core import Block, Routing
    from .plugins.kubernetes import KubernetesPlugin
    from .plugins.kubernetes.index import KubeIndex

__all__ = ["FastTable", "NxRule", "build_fast", "update_fast"]

log = logging.getLogger("pyk3s.dns.fast")
_HDR = struct.Struct(">HHHHH")
_OPT = struct.Struct(">BHHBBHH")
NO_EDNS = b"\x00\x01\x00\x00\x00\x00\x00\x00"
ONE_OPT = b"\x00\x01\x00\x00\x00\x00\x00\x01"
MAX_ROTATIONS = 8
NX_MEMO = 20000
_DO_CD = (b"\x00", b"\x01", b"\x02", b"\x03")   # the wire cache key's last byte: DO << 1 | CD
YIELD_EVERY = 200
RD1_NO_EDNS = b"\x01\x00" + NO_EDNS          # flags (RD) and counts of the common query, after the ID
_FLAGS_COUNTS = struct.Struct(">H6sH")          # flags, QD/AN/NS counts, AR count
NX_PROBE_NS = "pk-absent-ns"                    # a namespace the NXDOMAIN rule's probe assumes absent


@dataclass(frozen=True, slots=True)
class NxRule:
    zone: bytes                                 # lower-case wire form, e.g. b"\x07cluster\x05local\x00"
    namespaces: frozenset[bytes]
    services: dict[bytes, frozenset[bytes]]     # namespace -> service names
    shadowed: frozenset[bytes]                  # names another plugin (hosts) answers
    flags: int
    soa: bytes                                  # SOA RR after its owner name


Entry = tuple[int, int, int, int, tuple[bytes, ...]]   # flags, AN, NS, AR counts, tails after the question


class FastTable:
    __slots__ = ("direct", "hits", "classes", "nx_direct", "entries", "nx", "_rr", "counts", "labels", "caches",
                 "_nx_memo", "root_cache", "_class_of", "negatives", "sources", "nx_kube")

    def __init__(self, entries: dict[bytes, Entry], nx: NxRule | None, labels: tuple[str, str] | None = None,
                 caches: tuple[tuple[bytes, CachePlugin | None], ...] = (),
                 negatives: dict[bytes, KubernetesPlugin] | None = None,
                 sources: dict[KubernetesPlugin, KubeIndex] | None = None,
                 nx_kube: KubernetesPlugin | None = None) -> None:
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
        # (zone wire, the cache plugin whose wire entries may answer), longest zone first; None: that
        # block has a plugin the fast path must not skip
        self.caches = caches if any(c is not None for _, c in caches) else ()
        # the common layout, one catch-all block: its cache can be tried before parsing the question
        self.root_cache = caches[0][1] if len(caches) == 1 and caches[0][0] == b"\x00" else None
        self._nx_memo: dict[bytes, int] = {}    # lower-case qname -> _nx_cut (nx never changes in a table)
        self._rr = itertools.count()
        self.counts: dict[tuple[int, int], int] = {}   # (qtype, rcode) -> answers, folded into metrics
        self.labels = labels                            # (server, zone) when the block has prometheus
        # what an incremental update needs: the negative answers (question -> the kubernetes plugin
        # whose SOA serial ends them), the index each kubernetes plugin's answers come from, and the
        # plugin the NXDOMAIN rule was made from
        self.negatives: dict[bytes, KubernetesPlugin] = negatives or {}
        self.sources: dict[KubernetesPlugin, KubeIndex] = sources or {}
        self.nx_kube = nx_kube

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
                negatives: dict[bytes, KubernetesPlugin], sources: dict[KubernetesPlugin, KubeIndex]) -> FastTable:
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
        t.nx_kube = self.nx_kube
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
            if rc is not None and (e := rc.wire.get(data[12:] + _DO_CD[data[3] >> 4 & 1])) is not None:
                reply = self._wire_reply(rc, e, data, n - 4, n, ((data[2] << 8) | data[3]) & 0x0110, False, b"", 512)
                if reply is not None:
                    return reply
            if data[n - 5]:             # the name must end right before type and class
                return None
            end, edns, limit, opt = n, False, 512, b""
        elif counts == ONE_OPT:
            if n >= 28 and data[n - 11:n - 8] == b"\x00\x00\x29" and data[n - 2:] == b"\x00\x00":
                end = n - 11            # the usual shape: an OPT without options right after the question
            else:
                end = _question_end(data)
                if end is None or end + 11 > n:
                    return None
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
            cut = _nx_cut(nx, qname)
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
            memo = self.nx_direct
            if len(memo) >= NX_MEMO:
                memo.clear()
            memo[data[2:]] = reply[2:]
        return reply

    def _cached(self, data: bytes, qname: bytes, qend: int, end: int, qflags: int, edns: bool, opt: bytes,
                limit: int) -> bytes | None:
        """A hit in the wire form of the cache plugin of the block this name routes to."""
        cache = None
        for zone, plugin in self.caches:
            if zone == b"\x00" or qname == zone or (qname.endswith(zone) and _at_label(qname, len(qname) - len(zone))):
                cache = plugin
                break
        if cache is None:
            return None
        e = cache.wire.get(qname + data[qend:end] + _DO_CD[(2 if edns and opt[7] & 0x80 else 0) | (data[3] >> 4 & 1)])
        if e is None:
            return None
        return self._wire_reply(cache, e, data, qend, end, qflags, edns, opt, limit)

    def _wire_reply(self, cache: CachePlugin, e: WireEntry, data: bytes, qend: int, end: int, qflags: int,
                    edns: bool, opt: bytes, limit: int) -> bytes | None:
        tail = e.tail(monotonic(), cache.opts.keepttl)
        if tail is None or end + len(tail) + len(opt) > limit:
            return None
        cache.wire_counts[e.kind] += 1
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


def _nx_cut(nx: NxRule, qname: bytes) -> int:
    """Where the zone starts in `qname` if the shared NXDOMAIN answers it, else -1."""
    if not qname.endswith(nx.zone) or qname in nx.shadowed:
        return -1
    cut = len(qname) - len(nx.zone)
    labels = []
    pos = 0
    while pos < cut:
        ln = qname[pos]
        if ln > 63 or ln == 0:
            return -1
        labels.append(qname[pos + 1:pos + 1 + ln])
        pos += ln + 1
    if pos != cut or len(labels) < 2 or labels[-1] not in (b"svc", b"pod"):
        return -1
    ns = labels[-2]
    if ns in nx.namespaces:
        if labels[-1] != b"svc" or len(labels) < 3:
            return -1
        if len(labels) <= 5 and labels[-3] in nx.services.get(ns, ()):
            return -1
    return cut


def _at_label(name: bytes, cut: int) -> bool:
    """Whether byte `cut` of a wire name starts a label (not a byte inside one)."""
    i = 0
    while i < cut:
        i += name[i] + 1
    return i == cut


async def _precompute(block: Block, zone: str, name: str, qtype: int) -> dns.message.Message | None:
    q = dns.message.make_query(name, qtype)
    req = Request(q, q.question[0].name, name, qtype, "udp", None, zone, block.server, precompute=True,
                  root=block.handler)
    try:
        return await block.handler(req)
    except NotFast:
        return None


def _qkey(name: str, qtype: int) -> bytes:
    """A question as `_entry` keys it: the lower-case name in wire form, type, class IN."""
    return dns.name.from_text(name).to_wire() + struct.pack(">HH", qtype, 1)


def _entry(q: dns.message.Message, reply: dns.message.Message,
           balance: bool) -> tuple[bytes, Entry, bool] | None:
    """(question, entry, whether the answer ends with a SOA whose serial may be patched later)."""
    reply.id = 0
    reply.use_edns(False)
    negative = any(rr.rdtype == T.SOA for rr in reply.authority)
    if negative and (reply.additional or len(reply.authority) != 1 or len(reply.authority[0]) != 1):
        return None     # a SOA that is not the last record: its serial could not be kept current
    variants = [reply]
    if balance and reply.rcode() == dns.rcode.NOERROR:
        width = max([len(rr) for rr in reply.answer if rr.rdtype in (T.A, T.AAAA)] or [1])
        for k in range(1, min(width, MAX_ROTATIONS)):
            r = dns.message.Message(0)
            r.flags = reply.flags
            r.question = reply.question
            r.answer = rotate(reply.answer, k)
            r.authority = reply.authority
            r.additional = rotate(reply.additional, k)
            variants.append(r)
    wires = []
    for v in variants:
        w = v.to_wire(want_shuffle=False)
        if len(w) > 512:
            return None
        wires.append(w)
    if negative and (len(wires) != 1 or wires[0][-20:-16] != struct.pack(">I", reply.authority[0][0].serial)):
        return None
    qw = q.to_wire()
    qlen = len(qw) - 12
    w = wires[0]
    flags = ((w[2] << 8) | w[3]) & ~0x0110
    an, ns, ar = struct.unpack_from(">HHH", w, 6)
    return qw[12:12 + qlen], (flags, an, ns, ar, tuple(x[12 + qlen:] for x in wires)), negative


def _hosts_questions(block: Block) -> list[tuple[str, int]]:
    if block.hosts is None:
        return []
    t = block.hosts.table
    return [(n, T.A) for n in t.v4] + [(n, T.AAAA) for n in t.v6] + [(n, T.PTR) for n in t.ptr]


def _kube_blocks(routing: Routing) -> list[Block]:
    """The blocks whose kubernetes answers the fast table holds, each once."""
    out: list[Block] = []
    for _zone, block in routing.routes:
        if block.fast_ok and block.kube is not None and all(b is not block for b in out):
            out.append(block)
    return out


async def _answers(routing: Routing, block: Block, idx: KubeIndex, questions: list[tuple[str, int]],
                   counter: list[int], entries: dict[bytes, Entry], negatives: dict[bytes, KubernetesPlugin]) -> None:
    """Precompute `questions` through `block`'s chain, its kubernetes plugin answering from `idx`, into
    `entries` (and `negatives`)."""
    assert block.kube is not None
    with block.kube.pinned(idx):
        await _answers_pinned(routing, block, questions, counter, entries, negatives)


async def _answers_pinned(routing: Routing, block: Block, questions: list[tuple[str, int]], counter: list[int],
                          entries: dict[bytes, Entry], negatives: dict[bytes, KubernetesPlugin]) -> None:
    assert block.kube is not None
    kube = block.kube
    balance = any(isinstance(p, LoadbalancePlugin) for p in block.plugins)
    for name, qtype in questions:
        hit = routing.route(name)
        if hit is None or hit[1] is not block:
            continue
        reply = await _precompute(block, hit[0], name, qtype)
        if reply is not None:
            q = dns.message.make_query(name, qtype, use_edns=False)
            ent = _entry(q, reply, balance)
            if ent is not None:
                entries[ent[0]] = ent[1]
                if ent[2]:
                    negatives[ent[0]] = kube
                else:
                    negatives.pop(ent[0], None)
        counter[0] += 1
        if counter[0] % YIELD_EVERY == 0:
            await asyncio.sleep(0)


async def build_fast(routing: Routing) -> Routing:
    """The whole table: every question of every kubernetes block (first sync, reload, hosts change)."""
    entries: dict[bytes, Entry] = {}
    negatives: dict[bytes, KubernetesPlugin] = {}
    sources: dict[KubernetesPlugin, KubeIndex] = {}
    nx: NxRule | None = None
    nx_kube: KubernetesPlugin | None = None
    labels: tuple[str, str] | None = None
    counter = [0]
    caches: list[tuple[bytes, CachePlugin | None]] = []
    for zone, block in routing.routes:
        cache = next((p for p in block.plugins if isinstance(p, CachePlugin)), None) if block.fast_ok else None
        caches.append((dns.name.from_text(zone).to_wire().lower(), cache))
        if block.fast_ok and block.metrics and labels is None and (cache is not None or block.kube is not None):
            labels = (block.server, zone)
    for block in _kube_blocks(routing):
        kube = block.kube
        assert kube is not None
        idx = kube.index
        sources[kube] = idx
        if not idx.synced:
            continue
        await _answers(routing, block, idx, list(kube.fast_questions(idx)) + _hosts_questions(block), counter,
                       entries, negatives)
        if nx is None:
            nx = await _nx_rule(routing, block, idx)
            nx_kube = kube if nx is not None else None
    table = FastTable(entries, nx, labels, tuple(caches), negatives, sources, nx_kube)
    if routing.fast is not None:    # no await from here to the caller's swap: nothing counted is lost
        table.take_counts(routing.fast)
    return replace(routing, fast=table)


async def update_fast(routing: Routing) -> Routing:
    """Bring the table up to date with the kubernetes indexes by recomputing only the questions of the
    Services that changed (and the PTRs of their addresses). Falls back to `build_fast` when there is no
    table yet, an index was (un)synced or fully reloaded, or its change history does not reach back."""
    table = routing.fast
    if table is None:
        return await build_fast(routing)
    plans = []
    for block in _kube_blocks(routing):
        kube = block.kube
        assert kube is not None
        old, new = table.sources.get(kube), kube.index
        if old is new:
            continue
        keys = kube.changed_since(old.generation) if old is not None and old.synced and new.synced else None
        if keys is None or (NX_PROBE_NS in old.namespaces) != (NX_PROBE_NS in new.namespaces):
            return await build_fast(routing)
        plans.append((block, kube, old, new, keys))
    if not plans:
        return routing
    drop: set[bytes] = set()
    add: dict[bytes, Entry] = {}
    serials: dict[bytes, bytes] = {}
    negatives = dict(table.negatives)
    sources = dict(table.sources)
    nx = table.nx
    counter = [0]
    for block, kube, old, new, keys in plans:
        sources[kube] = new
        old_q: list[tuple[str, int]] = []
        new_q: list[tuple[str, int]] = []
        ips: set[str] = set()
        for key in keys:
            for idx, out in ((old, old_q), (new, new_q)):
                rec = idx.services.get(key)
                if rec is not None:
                    out.extend(kube.service_questions(rec))
                    ips.update(rec.cluster_ips)
                    ips.update(e.address for e in rec.endpoints)
        for ip in ips:
            rev = kube.ptr_name(ip)
            if rev is not None:
                old_q.append((rev, T.PTR))
                if ip in new.by_cluster_ip or ip in new.by_endpoint_ip:
                    new_q.append((rev, T.PTR))
        hosts = {_qkey(n, t) for n, t in _hosts_questions(block)}   # answered by hosts, whatever kube says
        for name, qtype in old_q:
            k = _qkey(name, qtype)
            if k not in hosts:
                drop.add(k)
                negatives.pop(k, None)
        added: dict[bytes, Entry] = {}
        await _answers(routing, block, new, new_q, counter, added, negatives)
        add.update(added)
        if new.serial != old.serial:
            # negative answers end with the SOA serial (the index's time of last change): patch the
            # serial bytes of the ones kept rather than recompute every negative answer
            sb = struct.pack(">I", new.serial)
            serials.update((q, sb) for q, k in negatives.items() if k is kube and q not in added)
        if nx is not None and table.nx_kube is kube:
            nx = _nx_updated(nx, old, new)
    fresh = table.updated(drop, add, serials, nx, negatives, sources)
    fresh.take_counts(table)        # no await from here to the caller's swap
    return replace(routing, fast=fresh)


def _nx_updated(nx: NxRule, old: KubeIndex, new: KubeIndex) -> NxRule:
    """The NXDOMAIN rule for `new`, re-encoding only the namespaces whose Service names changed."""
    namespaces = nx.namespaces
    if new.namespaces is not old.namespaces:
        namespaces = frozenset(n.encode() for n in new.namespaces)
    services = nx.services
    if new.services_by_ns is not old.services_by_ns:
        services = dict(services)
        for ns in set(old.services_by_ns) | set(new.services_by_ns):
            names = new.services_by_ns.get(ns)
            if names is old.services_by_ns.get(ns):
                continue
            if names:
                services[ns.encode()] = frozenset(s.encode() for s in names)
            else:
                services.pop(ns.encode(), None)
    soa = nx.soa
    if new.serial != old.serial:
        soa = soa[:-20] + struct.pack(">I", new.serial) + soa[-16:]
    if namespaces is nx.namespaces and services is nx.services and soa is nx.soa:
        return nx
    return replace(nx, namespaces=namespaces, services=services, soa=soa)


async def _nx_rule(routing: Routing, block: Block, idx: KubeIndex) -> NxRule | None:
    kube = block.kube
    assert kube is not None
    zone = kube.opts.primary_zone
    if kube.opts.fall.through("x.svc." + zone):
        return None
    if any(z != zone and z.endswith("." + zone) for z, _ in routing.routes):
        return None
    hit = routing.route(zone)
    if hit is None or hit[1] is not block:
        return None
    probe = f"pk-nx-probe.{NX_PROBE_NS}.svc." + zone
    if NX_PROBE_NS in idx.namespaces:
        return None
    with kube.pinned(idx):
        reply = await _precompute(block, hit[0], probe, T.A)
    if reply is None or reply.rcode() != dns.rcode.NXDOMAIN or len(reply.authority) != 1 or reply.answer:
        return None
    soa_rr = reply.authority[0]
    if soa_rr.rdtype != T.SOA:
        return None
    rd = soa_rr[0]
    rdata = (rd.mname.to_wire() + rd.rname.to_wire() +
             struct.pack(">IIIII", rd.serial, rd.refresh, rd.retry, rd.expire, rd.minimum))
    soa = struct.pack(">HHIH", T.SOA, 1, soa_rr.ttl, len(rdata)) + rdata
    flags = int(((reply.flags & ~(dns.flags.RD | dns.flags.CD)) & 0xFFF0) | dns.rcode.NXDOMAIN)
    shadowed: set[bytes] = set()
    if block.hosts is not None:
        t = block.hosts.table
        shadowed = {dns.name.from_text(n).to_wire() for n in list(t.v4) + list(t.v6)}
    return NxRule(
        zone=dns.name.from_text(zone).to_wire(),
        namespaces=frozenset(n.encode() for n in idx.namespaces),
        services={ns.encode(): frozenset(s.encode() for s in names) for ns, names in idx.services_by_ns.items()},
        shadowed=frozenset(shadowed),
        flags=flags,
        soa=soa,
    )
