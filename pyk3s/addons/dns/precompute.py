"""Precompute: the fast table (fast.py), built by running each server block's chain on the questions its
plugins offer.

Rules:
- A block gets precomputed answers when the fast path may skip every one of its plugins
  (`Block.fast_ok`) and one of its fast sources leads (`FastView.leads`: kubernetes; hosts only adds its
  questions to such a block), once every source of the block is ready. Each question is answered through
  the block's chain in precompute mode (no cache writes, no upstream) with every source pinned to the
  version the table records, so a fast answer is byte-for-byte what the slow path writes even when the
  data moves on meanwhile. A chain that changes replies per query (`Block.variants`: loadbalance) gets
  every form stored, and the fast path cycles through them.
- A whole build (`build_fast`) runs on config changes, the first sync, and whenever a source cannot tell
  what changed (hosts: a new file). Otherwise `update_fast` recomputes only the questions the sources'
  deltas name, on a copy of the previous table; questions the block's other sources offer are kept.
- Negative answers end with the zone's SOA, whose serial is the time of the last change (P29) and so
  differs after every change: the answers of a block are tied to its first leading source, and when its
  serial moves their serial bytes are patched in place instead of recomputed; its NxRule likewise.
- For names the table does not hold, the fast path may answer from the wire store of the cache plugin of
  the block the name routes to (`Plugin.fast_cache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Iterable
from dataclasses import replace
from functools import cached_property

import dns.message
import dns.rdatatype as T
from dns.rdatatype import RdataType

from .core import Block, Routing
from .fast import Entry, FastTable
from .plugin import DnsRequest, FastView, NotFast, NxRule, Plugin, Question, Variants
from .wirecache import WireStore, name_wire

__all__ = ["build_fast", "update_fast"]

YIELD_EVERY = 200
Views = list[tuple[Plugin, FastView]]      # a block's fast sources, in chain order


async def _precompute(block: Block, zone: str, name: str, qtype: RdataType) -> dns.message.Message | None:
    q = dns.message.make_query(name, qtype)
    req = DnsRequest(q, q.question[0].name, name, qtype, "udp", None, zone, block.server, precompute=True,
                  root=block.handler)
    try:
        return await block.handler(req)
    except NotFast:
        return None


def _qkey(name: str, qtype: RdataType) -> bytes:
    """A question as `_entry` keys it: the lower-case name in wire form, type, class IN."""
    return name_wire(name) + struct.pack(">HH", qtype, 1)


def _entry(q: dns.message.Message, reply: dns.message.Message,
           variants: Variants | None) -> tuple[bytes, Entry, bool] | None:
    """(question, entry, whether the answer ends with a SOA whose serial may be patched later)."""
    reply.id = 0
    reply.use_edns(False)
    negative = any(rr.rdtype == T.SOA for rr in reply.authority)
    if negative and (reply.additional or len(reply.authority) != 1 or len(reply.authority[0]) != 1):
        return None     # a SOA that is not the last record: its serial could not be kept current
    forms = [reply]
    for answer, additional in variants(reply)[1:] if variants is not None else ():
        r = dns.message.Message(0)
        r.flags = reply.flags
        r.question = reply.question
        r.answer = answer
        r.authority = reply.authority
        r.additional = additional
        forms.append(r)
    wires = []
    for v in forms:
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


def _views(block: Block) -> Views:
    return [(p, v) for p in block.plugins if (v := p.fast_view()) is not None]


def _wire_store(block: Block) -> WireStore | None:
    return next((s for p in block.plugins if (s := p.fast_cache()) is not None), None)


def _fast_blocks(routing: Routing) -> list[tuple[Block, Views]]:
    """The blocks whose answers the table holds, each once, with their fast sources."""
    out: list[tuple[Block, Views]] = []
    for _zone, block in routing.routes:
        if block.fast_ok and all(b is not block for b, _ in out):
            views = _views(block)
            if any(v.leads for _, v in views):
                out.append((block, views))
    return out


class _BlockAnswers:
    """A block as one of its fast sources sees it while the table is built (plugin.BlockAnswers)."""

    def __init__(self, routing: Routing, block: Block, views: Views, source: Plugin) -> None:
        self.routing, self.block, self.views, self.source = routing, block, views, source

    @cached_property
    def shadowed(self) -> frozenset[str]:
        return frozenset(name for p, v in self.views if p is not self.source for name, _ in v.questions())

    def owns(self, zone: str) -> bool:
        if any(z != zone and z.endswith("." + zone) for z, _ in self.routing.routes):
            return False
        hit = self.routing.route(zone)
        return hit is not None and hit[1] is self.block

    async def answer(self, name: str, qtype: RdataType) -> dns.message.Message | None:
        hit = self.routing.route(name)
        if hit is None or hit[1] is not self.block:
            return None
        return await _precompute(self.block, hit[0], name, qtype)


async def _answers(routing: Routing, block: Block, views: Views, questions: Iterable[Question],
                   counter: list[int], entries: dict[bytes, Entry], negatives: dict[bytes, Plugin]) -> None:
    """Precompute `questions` through `block`'s chain, its sources pinned to `views`, into `entries` (and
    `negatives`, tied to the block's first leading source)."""
    lead = next(p for p, v in views if v.leads)
    with contextlib.ExitStack() as pins:
        for _, v in views:
            pins.enter_context(v.pinned())
        for name, qtype in questions:
            hit = routing.route(name)
            if hit is None or hit[1] is not block:
                continue
            reply = await _precompute(block, hit[0], name, qtype)
            if reply is not None:
                q = dns.message.make_query(name, qtype, use_edns=False)
                ent = _entry(q, reply, block.variants)
                if ent is not None:
                    entries[ent[0]] = ent[1]
                    if ent[2]:
                        negatives[ent[0]] = lead
                    else:
                        negatives.pop(ent[0], None)
            counter[0] += 1
            if counter[0] % YIELD_EVERY == 0:
                await asyncio.sleep(0)


async def build_fast(routing: Routing) -> Routing:
    """The whole table: every question of every fast block (first sync, reload, a source changed whole)."""
    entries: dict[bytes, Entry] = {}
    negatives: dict[bytes, Plugin] = {}
    sources: dict[Plugin, FastView] = {}
    nx: NxRule | None = None
    nx_source: Plugin | None = None
    labels: tuple[str, str] | None = None
    counter = [0]
    caches: list[tuple[bytes, WireStore | None]] = []
    for zone, block in routing.routes:
        store = _wire_store(block) if block.fast_ok else None
        caches.append((name_wire(zone).lower(), store))
        if block.fast_ok and block.metrics and labels is None and \
                (store is not None or any(v.leads for _, v in _views(block))):
            labels = (block.server, zone)
    for block, views in _fast_blocks(routing):
        sources.update(views)
        if not all(v.ready for _, v in views):
            continue
        await _answers(routing, block, views, [q for _, v in views for q in v.questions()], counter,
                       entries, negatives)
        for p, v in views:
            if nx is None:
                nx = await v.nx_rule(_BlockAnswers(routing, block, views, p))
                nx_source = p if nx is not None else None
    table = FastTable(entries, nx, labels, tuple(caches), negatives, sources, nx_source)
    if routing.fast is not None:    # no await from here to the caller's swap: nothing counted is lost
        table.take_counts(routing.fast)
    return replace(routing, fast=table)


async def update_fast(routing: Routing) -> Routing:
    """Bring the table up to date with its sources by recomputing only what their deltas name. Falls back
    to `build_fast` when there is no table yet or a source cannot tell what changed."""
    table = routing.fast
    if table is None:
        return await build_fast(routing)
    plans = []
    for block, views in _fast_blocks(routing):
        for p, v in views:
            old = table.sources.get(p)
            if old is v:
                continue
            delta = v.delta(old) if old is not None else None
            if old is None or delta is None:
                return await build_fast(routing)
            plans.append((block, views, p, old, v, delta))
    if not plans:
        return routing
    drop: set[bytes] = set()
    add: dict[bytes, Entry] = {}
    serials: dict[bytes, bytes] = {}
    negatives = dict(table.negatives)
    sources = dict(table.sources)
    nx = table.nx
    counter = [0]
    for block, views, p, old, v, delta in plans:
        sources[p] = v
        kept = {_qkey(*q) for other, w in views if other is not p for q in w.questions()}
        for q in delta.stale:
            k = _qkey(*q)
            if k not in kept:
                drop.add(k)
                negatives.pop(k, None)
        added: dict[bytes, Entry] = {}
        await _answers(routing, block, views, delta.fresh, counter, added, negatives)
        add.update(added)
        if v.serial is not None and v.serial != old.serial:
            # negative answers end with the SOA serial (the data's time of last change): patch the serial
            # bytes of the ones kept rather than recompute every negative answer
            sb = struct.pack(">I", v.serial)
            serials.update((q, sb) for q, src in negatives.items() if src is p and q not in added)
        if nx is not None and table.nx_source is p:
            nx = v.nx_updated(nx, old)
    fresh = table.updated(drop, add, serials, nx, negatives, sources)
    fresh.take_counts(table)        # no await from here to the caller's swap
    return replace(routing, fast=fresh)
