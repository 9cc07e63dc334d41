"""The `forward` stanza -> ForwardOptions (spec dns.md O7).

forward FROM TO... { except ZONES...  policy random|round_robin|sequential  max_concurrent N  max_fails N
                     health_check DUR [no_rec] [domain NAME]  force_tcp  prefer_udp  expire DUR
                     failover RCODE...  next RCODE...  tls [CERT KEY] [CA]  tls_servername NAME }

TO is `IP[:PORT]`, `dns://IP[:PORT]`, `tls://IP[%NAME][:PORT]` (DNS-over-TLS, port 853 unless given) or a
resolv.conf-style file whose `nameserver` lines are used (plain DNS; at most 15 upstreams in all). Plain and
TLS upstreams may be mixed, each keeps its own transport (CoreDNS); force_tcp and prefer_udp only concern
the plain ones.

TLS (CoreDNS's `tls` and pkg/tls): `tls` alone verifies the server with the system CAs, `tls CA` with the
CA file, `tls CERT KEY` adds a client certificate, `tls CERT KEY CA` both; relative paths are relative to
the Corefile; TLS 1.2 at least. The name checked in the server's certificate is `tls_servername`, else the
endpoint's `%NAME`, else its IP address; setting both `tls_servername` and a `%NAME` is an error. The
files are loaded here, so a missing or unreadable one is a Corefile error, not a failure at the first
query. `tls`/`tls_servername` without a tls:// upstream are accepted (CoreDNS does) with a warning.

Refused with an error: DoH (`https://`) and other schemes, hostnames as TO, and any option pyk3s does not
honour (max_idle_conns, read_timeout, source_address, ...).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass, replace

import dns.rcode

from ...corefile import Directive
from ...options import int_arg, parse_duration
from ...plugin import BlockContext

__all__ = ["MAX_UPSTREAMS", "TLS_PORT", "ForwardOptions", "ForwardTo", "UpstreamTlsFiles", "parse_options",
           "read_resolv_conf", "tls_context"]

log = logging.getLogger("pyk3s.dns.forward")
MAX_UPSTREAMS = 15
TLS_PORT = 853
NAME = "forward"


@dataclass(frozen=True, slots=True)
class ForwardTo:
    """One upstream: plain DNS, or DNS-over-TLS checked against `server_name` (empty: its IP address)."""

    host: str
    port: int
    tls: bool = False
    server_name: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamTlsFiles:
    """`tls [CERT KEY] [CA]`: absolute paths, empty when not given."""

    cert: str = ""
    key: str = ""
    ca: str = ""


def tls_context(files: UpstreamTlsFiles) -> ssl.SSLContext:
    """The client context for the TLS upstreams; raises OSError/ssl.SSLError for a bad file."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=files.ca or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if files.cert:
        ctx.load_cert_chain(files.cert, files.key)
    return ctx


@dataclass(frozen=True, slots=True)
class ForwardOptions:
    frm: str = "."
    to: tuple[ForwardTo, ...] = ()
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
    tls: UpstreamTlsFiles = UpstreamTlsFiles()
    tls_servername: str = ""


def _port(text: str, whole: str, d: Directive) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise d.error(f"bad port in {whole!r}", NAME)
    return port


def _upstream(text: str, d: Directive) -> ForwardTo:
    """`[dns://]IP[:PORT]` or `tls://IP[%NAME][:PORT]` (IPv6 as `[IP]:PORT`, or bare without a port)."""
    scheme, sep, t = text.partition("://")
    if not sep:
        scheme, t = "dns", text
    if scheme == "https":
        raise d.error(f"DNS-over-HTTPS upstreams are not supported: {text}", NAME)
    if scheme not in ("dns", "tls"):
        raise d.error(f"'{scheme}' is not supported as a destination protocol in forward: {text}", NAME)
    tls = scheme == "tls"
    name = ""
    if "%" in t:                    # `IP%NAME[:PORT]`, `[IPv6%NAME]:PORT`: the port goes back on the address
        t, _, name = t.rpartition("%")
        if t.startswith("["):
            t += "]"
        if ":" in name:
            name, _, p = name.rpartition(":")
            t += ":" + p
            name = name.removesuffix("]")
        if not tls:
            raise d.error(f"a server name (%{name}) only goes with a tls:// upstream: {text}", NAME)
        if not name:
            raise d.error(f"empty server name in {text!r}", NAME)
    host, port = t, TLS_PORT if tls else 53
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text, d)
        elif rest:
            raise d.error(f"not an IP address or file: {text!r}", NAME)
    elif t.count(":") == 1:
        host, p = t.split(":")
        port = _port(p, text, d)
    try:
        ipaddress.ip_address(host)
    except ValueError as err:
        raise d.error(f"not an IP address or file: {text!r}", NAME) from err
    return ForwardTo(host, port, tls, name)


def _tls_files(sub: Directive, ctx: BlockContext) -> UpstreamTlsFiles:
    if len(sub.args) > 3:
        raise sub.error(f"maximum of three arguments allowed for TLS config, found {len(sub.args)}", NAME)
    base = os.path.dirname(ctx.corefile) or "."
    paths = [a if os.path.isabs(a) else os.path.join(base, a) for a in sub.args]
    match paths:
        case []:
            files = UpstreamTlsFiles()
        case [ca]:
            files = UpstreamTlsFiles(ca=ca)
        case [cert, key]:
            files = UpstreamTlsFiles(cert=cert, key=key)
        case [cert, key, ca]:
            files = UpstreamTlsFiles(cert, key, ca)
    try:
        tls_context(files)
    except (OSError, ssl.SSLError, ValueError) as err:
        what = " ".join(sub.args) or "the system CAs"
        raise sub.error(f"tls {what}: cannot load: {getattr(err, 'strerror', None) or err}", NAME) from err
    return files


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
    to: list[ForwardTo] = []
    for t in d.args[1:]:
        path = t if os.path.isabs(t) else ""
        if path and os.path.exists(path):
            try:
                servers = read_resolv_conf(path)
            except OSError as err:
                raise d.error(f"cannot read {path}: {err.strerror}", NAME) from err
            to.extend(_upstream(s, d) for s in servers)
        elif "/" in t and "://" not in t:
            raise d.error(f"file {t} not found", NAME)
        else:
            to.append(_upstream(t, d))
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
            case "tls":
                opts = replace(opts, tls=_tls_files(sub, ctx))
            case "tls_servername":
                if len(a) != 1:
                    raise sub.error("tls_servername needs one NAME", NAME)
                opts = replace(opts, tls_servername=a[0])
            case _:
                raise sub.error(f"unknown property '{sub.name}'", NAME)
    if opts.force_tcp and opts.prefer_udp:
        raise d.error("force_tcp and prefer_udp cannot both be set", NAME)
    tls_to = [up for up in opts.to if up.tls]
    if opts.tls_servername:
        for up in tls_to:
            if up.server_name:
                raise d.error(f"both forward ('{opts.tls_servername}') and proxy level ('{up.server_name}') "
                              f"TLS servernames are set for upstream proxy 'tls://{up.host}:{up.port}'", NAME)
    if not tls_to and any(s.name in ("tls", "tls_servername") for s in d.block):
        log.warning("[WARNING] plugin/forward: %s:%d: tls options given but no tls:// upstream: they have no "
                    "effect", d.file, d.line)
    return opts
