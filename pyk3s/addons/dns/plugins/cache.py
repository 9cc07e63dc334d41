"""cache [TTL] [ZONES...] { success CAP [TTL] [MINTTL]  denial CAP [TTL] [MINTTL]  prefetch AMOUNT [DUR] [PERCENT%]
                          serve_stale [DUR] [immediate|verify]  servfail DUR  disable success|denial  keepttl }

Spec dns.md O8, O9: caps 3600 (success) / 1800 (denial) unless TTL given, MINTTL 5, capacity 9984 each,
SERVFAIL kept 5s. Every RR of a reply gets one TTL = clamp(min TTL in the message, MINTTL, cap);
replies from the cache carry the remaining TTL and AA. Keys: lower-case name, type, DO, CD.

When every plugin of the block lets the fast path skip it, each cached reply is also kept as bytes in a
WireStore (wirecache.py), which the fast table answers from (`fast_cache`).

On the forward lane (lane.py) a miss is kept from the upstream's bytes: TTLs rewritten in place, the
entry holding the bytes (parsed by dnspython only if a slow-path hit needs it), the WireStore tail cut
from the same bytes. A reply the chain's variants cannot rotate as bytes is kept as a message instead.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from ..corefile import Directive
from ..metrics import DnsMetrics
from ..options import int_arg, parse_duration
from ..plugin import (
    BlockContext,
    ChainInfo,
    DnsRequest,
    Handler,
    Host,
    Plugin,
    Variants,
    WireHop,
    WireVariants,
)
from ..wire import WireQuery, WireReply
from ..wirecache import WireEntry, WireStore, build_wire_entry, wire_key

__all__ = ["CacheOptions", "CachePlugin", "message_ttl"]

CAPACITY = 9984
FAILSAFE_TTL = 5
Key = tuple[str, int, bool, bool]       # lower-case name, type, DO, CD


@dataclass(frozen=True, slots=True)
class CacheOptions:
    zones: tuple[str, ...] = (".",)
    success_cap: int = CAPACITY
    success_ttl: int = 3600
    success_min: int = 5
    denial_cap: int = CAPACITY
    denial_ttl: int = 1800
    denial_min: int = 5
    servfail_ttl: float = 5.0
    prefetch: int = 0
    prefetch_window: float = 60.0
    prefetch_percent: int = 10
    stale: float = 0.0
    stale_verify: bool = False
    disable_success: bool = False
    disable_denial: bool = False
    keepttl: bool = False


def message_ttl(m: dns.message.Message) -> int | None:
    ttls = [rr.ttl for sec in (m.answer, m.authority, m.additional) for rr in sec]
    return min(ttls) if ttls else None


def _set_ttl(m: dns.message.Message, ttl: int) -> None:
    for sec in (m.answer, m.authority, m.additional):
        for rr in sec:
            rr.ttl = ttl


class _Entry:
    """A cached reply: a message, or the bytes of one (the forward lane's), parsed when first needed."""

    __slots__ = ("_msg", "wire", "stored", "ttl", "kind", "wkey", "hits", "first_hit")

    def __init__(self, msg: dns.message.Message | None, wire: bytes, stored: float, ttl: int, kind: str,
                 wkey: bytes) -> None:
        self._msg = msg
        self.wire = wire
        self.stored = stored
        self.ttl = ttl
        self.kind = kind            # "success" | "denial"
        self.wkey = wkey            # its key in the WireStore
        self.hits = 0
        self.first_hit = 0.0

    @property
    def msg(self) -> dns.message.Message:
        if self._msg is None:
            self._msg = dns.message.from_wire(self.wire, ignore_trailing=True)
        return self._msg


_RA = 0x80
_DO_CD = (b"\x00", b"\x01", b"\x02", b"\x03")     # the wire key's last byte: DO << 1 | CD
_NOERROR, _NXDOMAIN, _SERVFAIL = int(dns.rcode.NOERROR), int(dns.rcode.NXDOMAIN), int(dns.rcode.SERVFAIL)


class CachePlugin(Plugin):
    name = "cache"

    def __init__(self, opts: CacheOptions, server: str = "") -> None:
        self.opts = opts
        self.server = server
        # oldest first: a full store drops its oldest entry (an OrderedDict does that in constant time; a
        # dict's first item gets slower to find as entries before it are deleted)
        self.success: OrderedDict[Key, _Entry] = OrderedDict()
        self.denial: OrderedDict[Key, _Entry] = OrderedDict()
        self.metrics: DnsMetrics | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # the socket path's view of the same entries; filled only when the block lets the fast path
        # skip every plugin around the cache (`chained`)
        self.wire = WireStore(opts.keepttl)
        self.wire_enabled = False
        self.chain_variants: Variants | None = None
        self.chain_wire_variants: WireVariants | None = None
        self.lane_misses = 0            # misses the forward lane counted, folded into the metrics on scrape
        self.evictions = {"success": 0, "denial": 0}
        self._everywhere = "." in opts.zones

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> CachePlugin:
        opts = CacheOptions(zones=ctx.zones)
        args = list(d.args)
        if args and args[0].isdigit():
            ttl = int_arg(d, cls.name, 0, 2**31, args.pop(0))
            opts = replace(opts, success_ttl=ttl, denial_ttl=ttl)
        if args:
            opts = replace(opts, zones=tuple(a.lower().rstrip(".") + "." if a != "." else "." for a in args))
        for sub in d.block:
            a = sub.args
            match sub.name:
                case "success" | "denial":
                    if not 1 <= len(a) <= 3:
                        raise sub.error(f"{sub.name} needs CAPACITY [TTL] [MINTTL]", cls.name)
                    vals = [int_arg(sub, cls.name, 0, 2**31, x) for x in a]
                    if sub.name == "success":
                        opts = replace(opts, success_cap=vals[0])
                        if len(vals) > 1:
                            opts = replace(opts, success_ttl=vals[1])
                        if len(vals) > 2:
                            opts = replace(opts, success_min=vals[2])
                    else:
                        opts = replace(opts, denial_cap=vals[0])
                        if len(vals) > 1:
                            opts = replace(opts, denial_ttl=vals[1])
                        if len(vals) > 2:
                            opts = replace(opts, denial_min=vals[2])
                case "prefetch":
                    if not 1 <= len(a) <= 3:
                        raise sub.error("prefetch needs AMOUNT [DURATION] [PERCENTAGE%]", cls.name)
                    amount = int_arg(sub, cls.name, 1, 2**31, a[0])
                    window = parse_duration(a[1], sub, cls.name) if len(a) > 1 else 60.0
                    pct = 10
                    if len(a) > 2:
                        if not a[2].endswith("%"):
                            raise sub.error("last character of percentage should be `%`", cls.name)
                        pct = int_arg(sub, cls.name, 0, 100, a[2][:-1])
                    opts = replace(opts, prefetch=amount, prefetch_window=window, prefetch_percent=pct)
                case "serve_stale":
                    if len(a) > 2:
                        raise sub.error("serve_stale takes [DURATION] [immediate|verify]", cls.name)
                    dur = parse_duration(a[0], sub, cls.name) if a else 3600.0
                    if len(a) > 1 and a[1] not in ("immediate", "verify"):
                        raise sub.error(f"invalid value for serve_stale refresh mode: {a[1]}", cls.name)
                    opts = replace(opts, stale=dur, stale_verify=len(a) > 1 and a[1] == "verify")
                case "servfail":
                    if len(a) != 1:
                        raise sub.error("servfail needs a duration", cls.name)
                    dur = parse_duration(a[0], sub, cls.name)
                    if dur > 300:
                        raise sub.error("caching SERVFAIL responses over 5 minutes is not permitted", cls.name)
                    opts = replace(opts, servfail_ttl=dur)
                case "disable":
                    if not a or a[0] not in ("success", "denial"):
                        raise sub.error("disable needs success or denial", cls.name)
                    opts = replace(opts, disable_success=True) if a[0] == "success" else \
                        replace(opts, disable_denial=True)
                case "keepttl":
                    opts = replace(opts, keepttl=True)
                case _:
                    raise sub.error(f"unknown property '{sub.name}'", cls.name)
        return cls(opts, ctx.server)

    def chained(self, chain: ChainInfo) -> None:
        self.wire_enabled = chain.fast_ok
        self.chain_variants = chain.variants
        self.chain_wire_variants = chain.wire_variants

    def fast_cache(self) -> WireStore:
        return self.wire

    async def start(self, host: Host) -> None:
        self.metrics = host.metrics
        host.metrics.folds.append(self._fold)

    def _fold(self, metrics: DnsMetrics) -> None:
        zones = ",".join(self.opts.zones)
        counts = self.wire.counts
        for kind, n in counts.items():
            if n:
                counts[kind] = 0
                metrics.inc("coredns_cache_requests_total", n, server=self.server, zones=zones, view="")
                metrics.inc("coredns_cache_hits_total", n, server=self.server, zones=zones, type=kind, view="")
        n, self.lane_misses = self.lane_misses, 0
        if n:
            metrics.inc("coredns_cache_requests_total", n, server=self.server, zones=zones, view="")
            metrics.inc("coredns_cache_misses_total", n, server=self.server, zones=zones, view="")
        for kind, n in self.evictions.items():
            if n:
                self.evictions[kind] = 0
                metrics.inc("coredns_cache_evictions_total", n, server=self.server, type=kind, view="", zones=zones)
        metrics.set("coredns_cache_entries", len(self.success), server=self.server, zones=zones, type="success", view="")
        metrics.set("coredns_cache_entries", len(self.denial), server=self.server, zones=zones, type="denial", view="")

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()

    def _in_zone(self, name: str) -> bool:
        return self._everywhere or any(name == z or name.endswith("." + z) for z in self.opts.zones)

    def clamp(self, m: dns.message.Message) -> tuple[str, int] | None:
        """Classify a reply and rewrite its TTLs (O9). None: not cacheable."""
        rc = m.rcode()
        if m.flags & dns.flags.TC:
            return None
        if rc == dns.rcode.NOERROR and m.answer:
            kind, cap, lo = "success", self.opts.success_ttl, self.opts.success_min
        elif rc in (dns.rcode.NXDOMAIN, dns.rcode.NOERROR):
            kind, cap, lo = "denial", self.opts.denial_ttl, self.opts.denial_min
        elif rc == dns.rcode.SERVFAIL:
            return "denial", int(self.opts.servfail_ttl)
        else:
            return None
        found = message_ttl(m)
        ttl = FAILSAFE_TTL if found is None or not (m.answer or m.authority) else found
        ttl = max(lo, min(ttl, cap))
        if not self.opts.keepttl:
            _set_ttl(m, ttl)
        return kind, ttl

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if not self._in_zone(req.name):
            return await next_(req)
        if req.precompute:
            reply = await next_(req)
            self.clamp(reply)
            return reply
        q = req.query
        key = (req.name, req.qtype, bool(q.ednsflags & dns.flags.DO), bool(q.flags & dns.flags.CD))
        now = time.monotonic()
        m = self.metrics
        zones = ",".join(self.opts.zones)
        if m is not None:
            m.inc("coredns_cache_requests_total", server=self.server, zones=zones, view="")
        entry = self.success.get(key) or self.denial.get(key)
        if entry is not None:
            left = entry.ttl - (now - entry.stored)
            if left > 0:
                if m is not None:
                    m.inc("coredns_cache_hits_total", server=self.server, zones=zones, type=entry.kind, view="")
                self._maybe_prefetch(entry, key, req, next_, left, now)
                req.note(f"cache: hit ({entry.kind}), {int(left)}s left")
                return self._from_entry(entry, req, int(left))
            if self.opts.stale and -left <= self.opts.stale:
                if self.opts.stale_verify:
                    try:
                        return await self._fill(key, req, next_)
                    except Exception:  # upstream failed: the stale answer is better than none
                        pass
                else:
                    self._spawn(self._fill(key, req.derive(req.name, req.qtype), next_))
                if m is not None:
                    m.inc("coredns_cache_served_stale_total", server=self.server, zones=zones, view="")
                req.note("cache: served stale")
                return self._from_entry(entry, req, 0)
        if m is not None:
            m.inc("coredns_cache_misses_total", server=self.server, zones=zones, view="")
        return await self._fill(key, req, next_)

    async def _fill(self, key: Key, req: DnsRequest, next_: Handler) -> dns.message.Message:
        reply = await next_(req)
        self._store(key, req.qname, req.qtype, reply)
        return reply

    def _store(self, key: Key, qname: dns.name.Name, qtype: int, reply: dns.message.Message) -> None:
        """Keep `reply` (its TTLs rewritten in place) if it may be cached."""
        res = self.clamp(reply)
        if res is None:
            return
        kind, ttl = res
        if ttl <= 0 or getattr(self.opts, f"disable_{kind}"):
            return
        stored = time.monotonic()
        wk = wire_key(*key)
        entry = _Entry(copy.deepcopy(reply), b"", stored, ttl, kind, wk)
        if not self._put(key, entry) or not self.wire_enabled or self.opts.prefetch:
            return
        msg = entry.msg
        forms = self.chain_variants(msg) if self.chain_variants is not None else [(msg.answer, msg.additional)]
        wire = build_wire_entry(msg, qname, dns.rdatatype.RdataType.make(qtype), stored + ttl, forms, kind)
        if wire is None:
            self.wire.entries.pop(wk, None)
        else:
            self.wire.entries[wk] = wire

    def _put(self, key: Key, entry: _Entry) -> bool:
        """Into its store, evicting the oldest entry when full; False when that store holds nothing."""
        kind = entry.kind
        store, cap = (self.success, self.opts.success_cap) if kind == "success" else (self.denial, self.opts.denial_cap)
        if cap <= 0:
            return False
        if key not in store and len(store) >= cap:
            evicted = store.popitem(last=False)[1]
            self.wire.entries.pop(evicted.wkey, None)
            self.evictions[kind] += 1
        (self.denial if kind == "success" else self.success).pop(key, None)
        store[key] = entry
        return True

    # -- the forward lane ------------------------------------------------------------------------
    def wire_hop(self) -> WireHop:
        return WireHop(admit=self._lane_admit, enter=self._lane_enter, leave=self._lane_leave)

    def _lane_admit(self, q: WireQuery) -> bool:
        """A miss passes on untouched; a name it holds (expired: stale, prefetch) stays on the chain."""
        name = q.name
        if not self._everywhere and not self._in_zone(name):
            return True
        key = (name, q.qtype, q.do, q.cd)
        return key not in self.success and key not in self.denial

    def _lane_enter(self, q: WireQuery) -> None:
        if self._everywhere or self._in_zone(q.name):
            self.lane_misses += 1

    def _lane_leave(self, q: WireQuery, r: WireReply) -> None:
        name = q.name
        if not self._everywhere and not self._in_zone(name):
            return
        key = (name, q.qtype, q.do, q.cd)
        if r.msg is not None:
            self._store(key, r.msg.question[0].name, q.qtype, r.msg)
            return
        d = r.data
        if d[2] & 0x02:                 # TC
            return
        rc = d[3] & 0x0F
        opts = self.opts
        if rc == _SERVFAIL:
            kind, ttl = "denial", int(opts.servfail_ttl)
        else:
            if rc == _NOERROR and r.an:
                kind, cap, lo = "success", opts.success_ttl, opts.success_min
            elif rc == _NXDOMAIN or rc == _NOERROR:
                kind, cap, lo = "denial", opts.denial_ttl, opts.denial_min
            else:
                return
            found = r.min_ttl() if r.an or r.ns else None
            ttl = FAILSAFE_TTL if found is None else found
            ttl = lo if ttl < lo else cap if ttl > cap else ttl
            if not opts.keepttl:
                r.set_ttl(ttl)
        if ttl <= 0 or (opts.disable_success if kind == "success" else opts.disable_denial):
            return
        bodies: list[bytes] | None = None
        if self.wire_enabled and not opts.prefetch:
            if self.chain_variants is None:
                bodies = [bytes(r.body)]
            elif self.chain_wire_variants is not None:
                bodies = self.chain_wire_variants(r)
            if bodies is None:         # variants only a message can give: keep it as the chain would
                self._store(key, r.to_message().question[0].name, q.qtype, r.msg)  # type: ignore[arg-type]
                return
        stored = time.monotonic()
        qend = q.qend
        wk = q.qname + q.data[qend - 4:qend] + _DO_CD[q.do << 1 | q.cd]
        if not self._put(key, _Entry(None, r.wire(), stored, ttl, kind, wk)) or bodies is None:
            return
        self.wire.entries[wk] = WireEntry(0x8400 | (d[3] & _RA) | rc, (r.an, r.ns, r.ar), qend - 12,
                                          tuple(bodies), (r.ttl_offsets(),) * len(bodies), stored + ttl, kind)

    def _from_entry(self, entry: _Entry, req: DnsRequest, left: int) -> dns.message.Message:
        m = req.reply(entry.msg.rcode(), aa=True)
        m.flags |= entry.msg.flags & dns.flags.RA
        for src, dst in ((entry.msg.answer, m.answer), (entry.msg.authority, m.authority),
                         (entry.msg.additional, m.additional)):
            for rr in src:
                c = rr.copy()
                c.ttl = left if not self.opts.keepttl else rr.ttl
                dst.append(c)
        return m

    def _maybe_prefetch(self, entry: _Entry, key: Key, req: DnsRequest, next_: Handler, left: float,
                        now: float) -> None:
        if not self.opts.prefetch:
            return
        if entry.hits == 0 or now - entry.first_hit > self.opts.prefetch_window:
            entry.hits, entry.first_hit = 0, now
        entry.hits += 1
        if entry.hits >= self.opts.prefetch and left <= entry.ttl * self.opts.prefetch_percent / 100:
            entry.hits = 0
            if self.metrics is not None:
                self.metrics.inc("coredns_cache_prefetch_total", server=self.server,
                                 zones=",".join(self.opts.zones), view="")
            self._spawn(self._fill(key, req.derive(req.name, req.qtype), next_))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
