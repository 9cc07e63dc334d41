"""The plugin contract: what a plugin is given, what it may ask for and what it may offer.

Rules (CoreDNS's plugin.Handler and dnsserver.Config, in Python):
- A plugin only wraps the next handler: it answers, or calls `next_(req)` and may edit what comes back.
  ChainInfo order is `ORDER` in `pyk3s.addons.dns.plugins` (CoreDNS plugin.cfg), never the Corefile's. A
  plugin that takes no part in answering (health, ready, reload, bind) sets `in_chain = False`.
- `setup(directive, BlockContext)` parses its Corefile stanza into a plugin (or raises CorefileError).
  What it asks of its server block or the server it states in `wants()` (listen addresses, worker
  processes, request metrics, Corefile reload); once the block's chain is assembled, `chained(ChainInfo)`
  tells it what it may know of the others.
- `start(Host)` hands it the only part of the running server it may use (`Host`): metrics, HTTP routes,
  a Kubernetes client, readiness, a fatal stop, and the trigger for fast-table updates.
- Fast answers: a plugin whose answers come from data it holds offers them through `fast_view()` (the
  questions worth precomputing and how they change between two versions of its data); a plugin that keeps
  replies as bytes (cache) offers its `WireStore` through `fast_cache()`; a plugin that changes answers
  from one query to the next (loadbalance) says how through `variants()` (and `wire_variants()` for
  replies kept as bytes). The core knows no plugin by name.
- The forward lane (lane.py): a plain UDP query the fast table cannot answer goes upstream as bytes,
  without dnspython and without a task, when every plugin of its chain before the one that sends it
  offers a `WireHop` that lets it pass, and that plugin (forward) offers a `WireSender` that claims it.
  A hop says whether it would hand the question on untouched (`admit`, no side effect), counts it once
  the lane took it (`enter`), sees the reply on its way back, innermost first (`leave`), or the failure
  (`failed`). A plugin without a hop keeps every query of its block on the chain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from .corefile import Directive

if TYPE_CHECKING:
    from pyk3s.client import Client

    from .httpd import Route
    from .metrics import DnsMetrics
    from .wire import WireQuery, WireReply
    from .wirecache import WireStore

__all__ = [
    "BlockAnswers",
    "BlockContext",
    "ChainInfo",
    "FastDelta",
    "FastView",
    "Handler",
    "Host",
    "NoReply",
    "NotFast",
    "NxRule",
    "PASS",
    "Plugin",
    "Question",
    "Records",
    "DnsRequest",
    "Variants",
    "Wants",
    "WireHop",
    "WireLane",
    "WireSender",
    "WireVariants",
    "soa_reply",
    "soa_rrset",
    "zone_owner",
]

Handler = Callable[["DnsRequest"], Awaitable[dns.message.Message]]
Question = tuple[str, RdataType]                 # lower-case FQDN, type (class IN)
Records = list[dns.rrset.RRset]
# the successive (answer, additional) forms of one reply (the first as given)
Variants = Callable[[dns.message.Message], list[tuple[Records, Records]]]
# the same for a reply kept as bytes: the successive bodies (records after the question, no OPT); None when
# it cannot be done on bytes (the reply then becomes a dnspython message, `WireReply.to_message`)
WireVariants = Callable[["WireReply"], "list[bytes] | None"]


@dataclass(slots=True)
class DnsRequest:
    """One question on its way down the chain."""

    query: dns.message.Message
    qname: dns.name.Name          # as sent (case preserved)
    name: str                     # lower-case FQDN text, e.g. "web.apps.svc.cluster.local."
    qtype: RdataType
    proto: str = "udp"
    addr: Any = None
    zone: str = "."               # the server block zone that matched
    server: str = ""              # "dns://:53"
    precompute: bool = False      # building fast-path answers: no side effects, no upstream
    trace: list[str] | None = None  # `dns explain` collects why; None in normal serving
    depth: int = 0                # internal lookups (ExternalName targets), bounded
    root: Handler | None = None   # the server block's whole chain, for internal lookups
    offline: bool = False         # `dns explain` without --query-upstream: say whom you would ask, ask nobody

    def reply(self, rcode: dns.rcode.Rcode = dns.rcode.NOERROR, aa: bool = False) -> dns.message.Message:
        m = dns.message.Message(self.query.id)
        m.flags = dns.flags.QR | (self.query.flags & (dns.flags.RD | dns.flags.CD))
        if aa:
            m.flags |= dns.flags.AA
        m.set_rcode(rcode)
        m.question = list(self.query.question)
        return m

    def note(self, text: str) -> None:
        if self.trace is not None:
            self.trace.append(text)

    def derive(self, name: str, qtype: RdataType) -> DnsRequest:
        """A new internal request for `name`/`qtype` (ExternalName target lookups)."""
        q = dns.message.make_query(name, qtype)
        q.flags |= dns.flags.RD
        return replace(self, query=q, qname=q.question[0].name, name=name.lower(), qtype=qtype,
                       depth=self.depth + 1)


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What a plugin's setup may know about its server block."""

    zones: tuple[str, ...]
    server: str                   # "dns://:53"
    corefile: str                 # path of the Corefile (relative paths in options are relative to it)


@dataclass(frozen=True, slots=True)
class Wants:
    """What a plugin asks of its server block, or of the server (CoreDNS: what a setup sets on dnsserver.Config)."""

    listen: tuple[str, ...] = ()                # addresses to listen on (bind); none asked: all
    workers: int = 0                            # processes sharing each port (multisocket); 0: not asked
    metrics: bool = False                       # count the block's requests in the metrics (prometheus)
    reload: tuple[float, float] | None = None   # check the Corefile every INTERVAL ± JITTER seconds (reload)


NO_WANTS = Wants()


@dataclass(frozen=True, slots=True)
class ChainInfo:
    """What a plugin may know of its server block once the chain is assembled."""

    fast_ok: bool                 # every plugin lets the fast path skip it: replies may be served as bytes
    variants: Variants | None     # how a plugin of the chain changes replies per query, or None
    wire_variants: WireVariants | None = None   # the same on bytes (None with `variants`: not on bytes)
    plugins: tuple[Plugin, ...] = ()    # the block's plugins in ORDER


class Host(Protocol):
    """The part of the running server a plugin may use, handed to `Plugin.start`."""

    @property
    def metrics(self) -> DnsMetrics: ...

    @property
    def primary(self) -> bool:
        """This process does the server-wide work (HTTP endpoints, loop probes); multisocket workers do not."""
        ...

    @property
    def lameduck(self) -> bool:
        """The server is shutting down."""
        ...

    def http_route(self, addr: tuple[str, int], path: str, route: Route) -> None:
        """Serve GET `path` on `addr` (host, port) from `route` (several plugins may share an address)."""

    def kube_client(self, kubeconfig: str | None = None) -> Client | None:
        """A client of the Kubernetes API (`kubeconfig`, else the server's own); None without an API."""

    def not_ready(self) -> set[str]:
        """Names of the plugins (and multisocket workers) that are not ready yet."""

    def fatal(self, message: str) -> None:
        """Stop the whole server with an error (a detected forwarding loop)."""

    def answers_changed(self) -> None:
        """The data behind this plugin's `fast_view()` changed: bring the fast table up to date."""


@dataclass(frozen=True, slots=True)
class WireHop:
    """A plugin's part on the forward lane for the questions it lets through (see the module's rules).
    Each callable may be None: nothing to do at that step."""

    admit: Callable[[WireQuery], bool] | None = None           # would hand it on untouched; no side effect
    enter: Callable[[WireQuery], None] | None = None           # the lane took it (count it)
    leave: Callable[[WireQuery, WireReply], None] | None = None  # the upstream's reply on its way back
    failed: Callable[[WireQuery, Exception], None] | None = None  # no upstream answered


PASS = WireHop()        # a plugin with nothing to do for any question it does not answer


class WireLane(Protocol):
    """Where a WireSender hands back the outcome of a query it took (`WireQuery.lane`)."""

    def answered(self, q: WireQuery, r: WireReply) -> None: ...

    def rcode(self, q: WireQuery, rcode: int) -> None:
        """Answer with only this rcode (REFUSED over max_concurrent, FORMERR for a wrong reply)."""

    def failed(self, q: WireQuery, err: Exception) -> None: ...


class WireSender(Protocol):
    """The plugin at the end of the forward lane (forward)."""

    def claims(self, q: WireQuery) -> bool:
        """It would send this question upstream (its FROM and except; a lane-capable transport)."""
        ...

    def send(self, q: WireQuery) -> None:
        """Send it; the outcome comes back through `q.lane`, now or later."""


class NoReply(dns.message.Message):
    """A reply nobody gets: a plugin that drops the query (acl `drop`) returns one, and the core sends
    nothing (a TCP connection stays open for the client's other queries)."""


class NotFast(Exception):
    """Raised while precomputing when an answer depends on something outside the snapshot."""


class NxRule(Protocol):
    """A negative answer the fast table writes itself, for every name the rule covers: the query's question,
    then the SOA of the zone (owner: a compression pointer into the question), with these flags."""

    @property
    def flags(self) -> int: ...           # reply flags, rcode NXDOMAIN included

    @property
    def soa(self) -> bytes: ...           # the SOA RR after its owner name

    def cut(self, qname: bytes) -> int:
        """Where the zone starts in `qname` (lower-case wire form) if the rule answers it, else -1."""
        ...


class BlockAnswers(Protocol):
    """A server block as a FastView sees it while the fast table is built."""

    @property
    def shadowed(self) -> frozenset[str]: ...   # names the block's other fast sources answer

    def owns(self, zone: str) -> bool:
        """Every name under `zone` is routed to this block."""
        ...

    async def answer(self, name: str, qtype: RdataType) -> dns.message.Message | None:
        """The block chain's reply in precompute mode; None when it is not this block's or not precomputable."""
        ...


@dataclass(frozen=True, slots=True)
class FastDelta:
    """What changed between two versions of a plugin's data, in questions."""

    stale: tuple[Question, ...]       # questions whose answers may be gone
    fresh: tuple[Question, ...]       # questions to precompute again


class FastView:
    """One version of the data behind a plugin's answers, as the fast table uses it.

    The defaults describe data that changes only as a whole (hosts); kubernetes overrides them all. A
    plugin returns the same view object while its data stays the same."""

    # its block gets precomputed answers; False: it only adds its questions to a block that has a leading
    # source (hosts beside kubernetes)
    leads: ClassVar[bool] = True

    @property
    def ready(self) -> bool:
        """Answers may be precomputed (kubernetes: its index has synced)."""
        return True

    @property
    def serial(self) -> int | None:
        """The SOA serial its negative answers end with; None: it writes no SOA."""
        return None

    def questions(self) -> Iterable[Question]:
        """Every question worth precomputing."""
        return ()

    def delta(self, old: FastView) -> FastDelta | None:
        """What changed since `old` (an earlier view of the same plugin); None: precompute everything."""
        return None

    def pinned(self) -> contextlib.AbstractContextManager[None]:
        """Precompute requests of the current task are answered from this version."""
        return contextlib.nullcontext()

    async def nx_rule(self, block: BlockAnswers) -> NxRule | None:
        """A rule for the negative answers it would give many names alike (kubernetes: search-path misses)."""
        return None

    def nx_updated(self, rule: NxRule, old: FastView) -> NxRule:
        """`rule` (made from `old`) brought up to this version, after a `delta`."""
        return rule


class Plugin:
    """Base class: override `serve` (chain member) and/or `start`/`stop` (background work)."""

    name: ClassVar[str] = ""
    in_chain: ClassVar[bool] = True
    fast_safe: ClassVar[bool] = True     # the fast path may skip it (no per-query side effect)
    once_per_block: ClassVar[bool] = True
    merges: ClassVar[bool] = False       # repeated in a block: `merge` folds the later ones into the first
    # query classes besides IN it answers: only these reach its block's chain (the rest is REFUSED first)
    query_classes: ClassVar[frozenset[int]] = frozenset()

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> Plugin:
        if d.args or d.block:
            raise d.error("this plugin takes no arguments", cls.name)
        return cls()

    def merge(self, other: Plugin) -> None:
        raise NotImplementedError(f"plugin {self.name} does not merge")

    def wants(self) -> Wants:
        return NO_WANTS

    def chained(self, chain: ChainInfo) -> None:
        return None

    def variants(self) -> Variants | None:
        return None

    def wire_variants(self) -> WireVariants | None:
        return None

    def wire_hop(self) -> WireHop | None:
        """Its part on the forward lane; None: queries of its block stay on the chain."""
        return None

    def wire_sender(self) -> WireSender | None:
        """It sends questions upstream at the end of the forward lane."""
        return None

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        return await next_(req)

    async def start(self, host: Host) -> None:
        return None

    def listening(self, addr: tuple[str, int]) -> None:
        """The block now answers on `addr` (host, real port)."""
        return None

    async def stop(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    def fast_view(self) -> FastView | None:
        return None

    def fast_cache(self) -> WireStore | None:
        return None


def soa_rrset(owner: dns.name.Name, zone: str, ttl: int, serial: int, minimum: int) -> dns.rrset.RRset:
    from dns.rdtypes.ANY.SOA import SOA
    rr = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.SOA)
    base = "" if zone == "." else zone
    rr.add(SOA(dns.rdataclass.IN, dns.rdatatype.SOA, dns.name.from_text("ns.dns." + base),
               dns.name.from_text("hostmaster." + base), serial, 7200, 1800, 86400, minimum), ttl)
    return rr


def zone_owner(req: DnsRequest, zone: str) -> dns.name.Name:
    """The zone as spelled in the query (P4)."""
    n = len(dns.name.from_text(zone).labels)
    return dns.name.Name(req.qname.labels[len(req.qname.labels) - n:])


def soa_reply(req: DnsRequest, rcode: dns.rcode.Rcode, zone: str, ttl: int, serial: int) -> dns.message.Message:
    m = req.reply(rcode, aa=True)
    m.authority.append(soa_rrset(zone_owner(req, zone), zone, min(ttl, 300), serial, ttl))
    return m
