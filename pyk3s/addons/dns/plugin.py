"""The plugin contract: a plugin gets a Request and the next handler and returns a reply Message.

A plugin only wraps the next handler (CoreDNS `plugin.Handler`): it answers, or calls `next_(req)` and
may edit what comes back. Chain order is fixed by `ORDER` in `pyk3s.addons.dns` (CoreDNS plugin.cfg),
never by Corefile order. Plugins that do not take part in answering (health, ready, reload, bind) set
`in_chain = False` and only use `start`/`stop`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .corefile import Directive
from .errors import ConfigError

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = [
    "BlockContext",
    "Handler",
    "Plugin",
    "Request",
    "Fallthrough",
    "parse_duration",
    "soa_reply",
]

Handler = Callable[["Request"], Awaitable[dns.message.Message]]


@dataclass(slots=True)
class Request:
    """One question on its way down the chain."""

    query: dns.message.Message
    qname: dns.name.Name          # as sent (case preserved)
    name: str                     # lower-case FQDN text, e.g. "web.apps.svc.cluster.local."
    qtype: int
    proto: str = "udp"
    addr: Any = None
    zone: str = "."               # the server block zone that matched
    server: str = ""              # "dns://:53"
    precompute: bool = False      # building fast-path answers: no side effects, no upstream
    trace: list[str] | None = None  # `dns explain` collects why; None in normal serving
    depth: int = 0                # internal lookups (ExternalName targets), bounded
    root: Handler | None = None   # the server block's whole chain, for internal lookups

    def reply(self, rcode: int = dns.rcode.NOERROR, aa: bool = False) -> dns.message.Message:
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

    def derive(self, name: str, qtype: int) -> Request:
        """A new internal request for `name`/`qtype` (ExternalName target lookups)."""
        q = dns.message.make_query(name, qtype)
        q.flags |= dns.flags.RD
        return Request(q, q.question[0].name, name.lower(), qtype, self.proto, self.addr, self.zone,
                       self.server, self.precompute, self.trace, self.depth + 1, self.root)


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What a plugin's setup may know about its server block."""

    zones: tuple[str, ...]
    server: str
    corefile: str
    runtime: Runtime | None = None
    kubeconfig: str | None = None


@dataclass(frozen=True, slots=True)
class Fallthrough:
    """`fallthrough [ZONES...]`: empty zones = all."""

    enabled: bool = False
    zones: tuple[str, ...] = ()

    @classmethod
    def parse(cls, args: tuple[str, ...]) -> Fallthrough:
        zones = tuple(a.lower() if a.endswith(".") else a.lower() + "." for a in args)
        return cls(True, zones)

    def through(self, name: str) -> bool:
        if not self.enabled:
            return False
        if not self.zones:
            return True
        return any(_in_zone(name, z) for z in self.zones)


def _in_zone(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


class NotFast(Exception):
    """Raised while precomputing when an answer depends on something outside the snapshot."""


class Plugin:
    """Base class: override `serve` (chain member) and/or `start`/`stop` (background work)."""

    name: ClassVar[str] = ""
    in_chain: ClassVar[bool] = True
    fast_safe: ClassVar[bool] = True     # the fast path may skip it (no per-query side effect)
    once_per_block: ClassVar[bool] = True

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> Plugin:
        if d.args or d.block:
            raise d.error("this plugin takes no arguments", cls.name)
        return cls()

    async def serve(self, req: Request, next_: Handler) -> dns.message.Message:
        return await next_(req)

    async def start(self, runtime: Runtime) -> None:
        return None

    async def stop(self) -> None:
        return None

    def ready(self) -> bool:
        return True


def parse_duration(text: str, d: Directive, plugin: str) -> float:
    """Go-style durations: 15s, 1m, 500ms, 1h30m; a bare number means seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    if text.replace(".", "", 1).isdigit():
        return float(text)
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = text[i:i + 2] if text[i:i + 2] in units else c
        if unit not in units or not num:
            raise d.error(f"invalid duration {text!r}", plugin)
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        raise d.error(f"invalid duration {text!r} (missing unit)", plugin)
    return total


def soa_rrset(owner: dns.name.Name, zone: str, ttl: int, serial: int, minimum: int) -> dns.rrset.RRset:
    from dns.rdtypes.ANY.SOA import SOA
    rr = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.SOA)
    base = "" if zone == "." else zone
    rr.add(SOA(dns.rdataclass.IN, dns.rdatatype.SOA, dns.name.from_text("ns.dns." + base),
               dns.name.from_text("hostmaster." + base), serial, 7200, 1800, 86400, minimum), ttl)
    return rr


def zone_owner(req: Request, zone: str) -> dns.name.Name:
    """The zone as spelled in the query (P4)."""
    n = len(dns.name.from_text(zone).labels)
    return dns.name.Name(req.qname.labels[len(req.qname.labels) - n:])


def soa_reply(req: Request, rcode: int, zone: str, ttl: int, serial: int) -> dns.message.Message:
    m = req.reply(rcode, aa=True)
    m.authority.append(soa_rrset(zone_owner(req, zone), zone, min(ttl, 300), serial, ttl))
    return m


def one_of(d: Directive, plugin: str, *choices: str) -> str:
    if len(d.args) != 1 or d.args[0] not in choices:
        raise d.error(f"{d.name} needs one of {', '.join(choices)}", plugin)
    return d.args[0]


def int_arg(d: Directive, plugin: str, lo: int, hi: int, text: str | None = None) -> int:
    raw = text if text is not None else (d.args[0] if len(d.args) == 1 else "")
    if not raw.lstrip("-").isdigit():
        raise d.error(f"{d.name} needs an integer", plugin)
    v = int(raw)
    if not lo <= v <= hi:
        raise d.error(f"{d.name} must be between {lo} and {hi}, got {v}", plugin)
    return v


__all__ += ["NotFast", "ConfigError", "int_arg", "one_of", "soa_rrset", "zone_owner"]
