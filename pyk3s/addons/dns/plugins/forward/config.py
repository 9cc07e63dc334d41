"""The `forward` stanza -> ForwardOptions (spec dns.md O7).

forward FROM TO... { except ZONES...  policy random|round_robin|sequential  max_concurrent N  max_fails N
                     health_check DUR [no_rec] [domain NAME]  force_tcp  prefer_udp  expire DUR
                     failover RCODE...  next RCODE... }

TO is `IP[:PORT]`, `dns://IP[:PORT]` or a resolv.conf-style file whose `nameserver` lines are used (at
most 15 upstreams). DNS-over-TLS and DoH upstreams are refused with an error, as is any option pyk3s
does not honour.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace

import dns.rcode

from ...corefile import Directive
from ...options import int_arg, parse_duration
from ...plugin import BlockContext

__all__ = ["MAX_UPSTREAMS", "ForwardOptions", "parse_options", "read_resolv_conf"]

MAX_UPSTREAMS = 15
NAME = "forward"


@dataclass(frozen=True, slots=True)
class ForwardOptions:
    frm: str = "."
    to: tuple[tuple[str, int], ...] = ()
    excepts: tuple[str, ...] = ()
    policy: str = "random"
    max_concurrent: int = 0
    max_fails: int = 2
    health_check: float = 0.5
    health_rd: bool = True
    health_domain: str = "."
    force_tcp: bool = False
    prefer_udp: bool = False
    expire: float = 10.0                    # idle upstream connections are closed after this
    failover: frozenset[int] = frozenset()  # rcodes for which the next upstream is asked
    next: frozenset[int] = frozenset()      # rcodes for which the next plugin answers (if it is a forward)


def _hostport(text: str, d: Directive) -> tuple[str, int]:
    t = text[len("dns://"):] if text.startswith("dns://") else text
    if "://" in t:
        raise d.error(f"only plain DNS upstreams are supported, not {text!r}", NAME)
    host, port = t, 53
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif t.count(":") == 1:
        host, p = t.split(":")
        port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError as err:
        raise d.error(f"not an IP address or file: {text!r}", NAME) from err
    return host, port


def read_resolv_conf(path: str) -> list[str]:
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                out.append(parts[1].split("%", 1)[0])
    return out


def _rcodes(sub: Directive, what: str) -> frozenset[int]:
    if not sub.args:
        raise sub.error(f"{what} needs at least one RCODE", NAME)
    out = set()
    for a in sub.args:
        try:
            rc = dns.rcode.from_text(a.upper())
        except dns.rcode.UnknownRcode as err:
            raise sub.error(f"{a} is not a valid rcode", NAME) from err
        if rc == dns.rcode.NOERROR and what == "failover":
            raise sub.error("NoError cannot be used in failover", NAME)
        out.add(int(rc))
    return frozenset(out)


def parse_options(d: Directive, ctx: BlockContext) -> ForwardOptions:
    if len(d.args) < 2:
        raise d.error("forward needs FROM and at least one TO", NAME)
    frm = d.args[0].lower().rstrip(".") + "." if d.args[0] != "." else "."
    to: list[tuple[str, int]] = []
    for t in d.args[1:]:
        path = t if os.path.isabs(t) else ""
        if path and os.path.exists(path):
            try:
                servers = read_resolv_conf(path)
            except OSError as err:
                raise d.error(f"cannot read {path}: {err.strerror}", NAME) from err
            to.extend(_hostport(s, d) for s in servers)
        elif "/" in t and not t.startswith("dns://"):
            raise d.error(f"file {t} not found", NAME)
        else:
            to.append(_hostport(t, d))
    if not to:
        raise d.error("no nameservers found", NAME)
    if len(to) > MAX_UPSTREAMS:
        raise d.error(f"more than {MAX_UPSTREAMS} TOs configured: {len(to)}", NAME)
    opts = ForwardOptions(frm=frm, to=tuple(to))
    for sub in d.block:
        a = sub.args
        match sub.name:
            case "except":
                opts = replace(opts, excepts=tuple(x.lower().rstrip(".") + "." for x in a))
            case "policy":
                if a not in (("random",), ("round_robin",), ("sequential",)):
                    raise sub.error(f"unknown policy {' '.join(a)!r}", NAME)
                opts = replace(opts, policy=a[0])
            case "max_concurrent":
                opts = replace(opts, max_concurrent=int_arg(sub, NAME, 0, 2**31))
            case "max_fails":
                opts = replace(opts, max_fails=int_arg(sub, NAME, 0, 2**31))
            case "health_check":
                if not a:
                    raise sub.error("health_check needs a duration", NAME)
                hc = parse_duration(a[0], sub, NAME)
                rd, dom = True, "."
                rest = list(a[1:])
                while rest:
                    x = rest.pop(0)
                    if x == "no_rec":
                        rd = False
                    elif x == "domain" and rest:
                        dom = rest.pop(0)
                    else:
                        raise sub.error(f"health_check: unknown option {x!r}", NAME)
                opts = replace(opts, health_check=hc, health_rd=rd, health_domain=dom)
            case "force_tcp":
                opts = replace(opts, force_tcp=True)
            case "prefer_udp":
                opts = replace(opts, prefer_udp=True)
            case "expire":
                if len(a) != 1:
                    raise sub.error("expire needs a duration", NAME)
                opts = replace(opts, expire=parse_duration(a[0], sub, NAME))
            case "failover":
                opts = replace(opts, failover=_rcodes(sub, "failover"))
            case "next":
                opts = replace(opts, next=_rcodes(sub, "next"))
            case "tls" | "tls_servername":
                raise sub.error("DNS-over-TLS upstreams are not supported", NAME)
            case _:
                raise sub.error(f"unknown property '{sub.name}'", NAME)
    if opts.force_tcp and opts.prefer_udp:
        raise d.error("force_tcp and prefer_udp cannot both be set", NAME)
    return opts
