"""acl [ZONES...] { ACTION [type QTYPE...] [net SOURCE...] } — access control on the client's address.

CoreDNS's plugin/acl. ACTION is allow, block (REFUSED), filter (NOERROR, empty) or drop (no reply at
all; a TCP connection stays open). Each `acl` directive is one rule for its ZONES (the server
block's when none are given); the rules of a block are tried in Corefile order, and a rule's policies in
order: the first policy whose types and nets both match decides. `allow` ends the checks and passes the query on; a rule no policy matches hands
it to the next rule; a query no rule stops goes on down the chain. `type *` and `net *` (the defaults
when a section is left out) match every type and every address; a single address is a /32 or /128 net;
an IPv4-mapped IPv6 client matches IPv4 nets. A client address that cannot be read is blocked.

Blocked and filtered replies carry no Extended DNS Error option (CoreDNS adds EDE 15 "Blocked" and
17 "Filtered", and an OPT even to a client that sent none): pyk3s writes a reply's EDNS from the
client's OPT and keeps no options on it.

Counted in coredns_acl_{allowed,blocked,filtered,dropped}_requests_total. Answers depend on the client's
address, so a block with `acl` keeps its queries on the chain (no fast answers, no forward lane).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.message
import dns.rcode
import dns.rdatatype

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Host, NoReply, Plugin

__all__ = ["AclPlugin", "AclPolicy", "AclRule"]

ACTIONS = ("allow", "block", "filter", "drop")
SECTIONS = ("type", "net")

IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AclPolicy:
    action: str                          # allow | block | filter | drop
    qtypes: frozenset[int] | None        # None: every type
    nets: tuple[IpNet, ...] | None       # None: every address

    def matches(self, qtype: int, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if self.qtypes is not None and qtype not in self.qtypes:
            return False
        return self.nets is None or any(ip in n for n in self.nets if n.version == ip.version)


@dataclass(frozen=True, slots=True)
class AclRule:
    zones: tuple[str, ...]
    policies: tuple[AclPolicy, ...]

    def zone_of(self, name: str) -> str:
        """The longest of the rule's zones that holds `name`, "" for none."""
        best = ""
        for z in self.zones:
            if (z == "." or name == z or name.endswith("." + z)) and len(z) > len(best):
                best = z
        return best


def _fqdn(z: str) -> str:
    return z.lower() if z.endswith(".") else z.lower() + "."


def _parse_types(tokens: list[str], sub: Directive) -> frozenset[int] | None:
    out: set[int] = set()
    for tok in tokens:
        if tok == "*":
            return None
        # CoreDNS takes the type mnemonics as written upper case (miekg/dns StringToType)
        try:
            t = dns.rdatatype.from_text(tok)
        except dns.rdatatype.UnknownRdatatype:
            t = None
        if t is None or tok != tok.upper() or tok.startswith("TYPE"):
            raise sub.error(f"unexpected token {tok!r}; expect legal QTYPE", "acl")
        out.add(int(t))
    return frozenset(out)


def _parse_nets(tokens: list[str], sub: Directive) -> tuple[IpNet, ...] | None:
    out: list[IpNet] = []
    for tok in tokens:
        if tok == "*":
            return None
        text = tok if "/" in tok else tok + ("/128" if ":" in tok else "/32")
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise sub.error(f"illegal CIDR notation {text!r}", "acl") from None
    return tuple(out)


def parse_policy(sub: Directive) -> AclPolicy:
    action = sub.name.lower()
    if action not in ACTIONS:
        raise sub.error(f"unexpected token {sub.name!r}; expect 'allow', 'block', 'filter' or 'drop'", "acl")
    if sub.block:
        raise sub.error(f"{sub.name} takes no block", "acl")
    qtypes: frozenset[int] | None = None
    nets: tuple[IpNet, ...] | None = None
    rest = list(sub.args)
    while rest:
        section = rest.pop(0).lower()
        if section not in SECTIONS:
            raise sub.error(f"unexpected token {section!r}; expect 'type | net'", "acl")
        tokens: list[str] = []
        while rest and rest[0].lower() not in SECTIONS:
            tokens.append(rest.pop(0))
        if not tokens:
            raise sub.error(f"no token specified in {section!r} section", "acl")
        if section == "type":
            qtypes = _parse_types(tokens, sub)
        else:
            nets = _parse_nets(tokens, sub)
    return AclPolicy(action, qtypes, nets)


def _client_ip(addr: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(addr, tuple) or not addr or not isinstance(addr[0], str):
        return None
    try:
        ip = ipaddress.ip_address(addr[0].split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class AclPlugin(Plugin):
    name = "acl"
    fast_safe = False
    once_per_block = False
    merges = True

    def __init__(self, rules: list[AclRule]) -> None:
        self.rules = rules
        self.host: Host | None = None

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> AclPlugin:
        zones = tuple(_fqdn(z) for z in d.args) or ctx.zones
        return cls([AclRule(zones, tuple(parse_policy(sub) for sub in d.block))])

    def merge(self, other: Plugin) -> None:
        assert isinstance(other, AclPlugin)
        self.rules.extend(other.rules)

    async def start(self, host: Host) -> None:
        self.host = host

    def _count(self, what: str, req: DnsRequest, zone: str | None) -> None:
        if self.host is None or req.precompute:
            return
        labels = {"server": req.server, "view": ""}
        if zone is not None:
            labels["zone"] = zone
        self.host.metrics.inc(f"coredns_acl_{what}_requests_total", 1, **labels)

    def decide(self, name: str, qtype: int, addr: object) -> tuple[str, str]:
        """(action, zone of the rule that decided); ("allow", "") when no rule stops the query."""
        ip = _client_ip(addr)
        for rule in self.rules:
            zone = rule.zone_of(name)
            if not zone:
                continue
            if ip is None:
                return "block", zone
            action = next((p.action for p in rule.policies if p.matches(qtype, ip)), None)
            if action == "allow":
                break
            if action is not None:
                return action, zone
        return "allow", ""

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        action, zone = self.decide(req.name, int(req.qtype), req.addr)
        if action == "allow":
            self._count("allowed", req, None)
            return await next_(req)
        req.note(f"acl: {action} (rule for {zone})")
        if action == "drop":
            self._count("dropped", req, zone)
            return NoReply()
        if action == "block":
            self._count("blocked", req, zone)
            return req.reply(dns.rcode.REFUSED)
        self._count("filtered", req, zone)
        return req.reply(dns.rcode.NOERROR)
