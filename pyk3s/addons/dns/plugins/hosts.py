"""hosts [FILE [ZONES...]] { INLINE-ENTRIES  ttl SECONDS  reload DURATION  no_reverse  fallthrough [ZONES...] }

Spec dns.md O4, O5: A, AAAA and generated PTR only; owner names in lower case; default file
/etc/hosts, ttl 3600, reload 5s (0 disables). A name the file knows without an address of the asked
family (or an unsupported type) is NOERROR with no SOA. Unknown names fall through only with
`fallthrough`; PTR misses always continue. The file is parsed into fresh maps and swapped.

Its names are precomputed into the fast table beside a leading source of the same block (kubernetes);
a changed file means a whole new table.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from ..corefile import Directive
from ..options import Fallthrough, int_arg, parse_duration, zone_test
from ..plugin import BlockContext, DnsRequest, FastView, Handler, Host, Plugin, Question, WireHop
from ..wire import WireQuery

__all__ = ["HostsOptions", "HostsPlugin", "HostsTable", "parse_hosts"]

log = logging.getLogger("pyk3s.dns.hosts")
IN = dns.rdataclass.IN


@dataclass(frozen=True, slots=True)
class HostsOptions:
    path: str = "/etc/hosts"
    zones: tuple[str, ...] = (".",)
    inline: tuple[str, ...] = ()
    ttl: int = 3600
    reload: float = 5.0
    no_reverse: bool = False
    fall: Fallthrough = Fallthrough()


@dataclass(frozen=True, slots=True)
class HostsTable:
    v4: dict[str, tuple[str, ...]]
    v6: dict[str, tuple[str, ...]]
    ptr: dict[str, tuple[str, ...]]      # reverse name -> host names

    def knows(self, name: str) -> bool:
        return name in self.v4 or name in self.v6

    def __len__(self) -> int:
        return len(set(self.v4) | set(self.v6))


def parse_hosts(lines: list[str], zones: tuple[str, ...]) -> HostsTable:
    v4: dict[str, list[str]] = {}
    v6: dict[str, list[str]] = {}
    ptr: dict[str, list[str]] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].split()
        if len(line) < 2:
            continue
        try:
            ip = ipaddress.ip_address(line[0].split("%", 1)[0])
        except ValueError:
            continue
        for host in line[1:]:
            name = host.lower().rstrip(".") + "."
            if not any(z == "." or name == z or name.endswith("." + z) for z in zones):
                continue
            (v6 if ip.version == 6 else v4).setdefault(name, []).append(str(ip))
            ptr.setdefault(ip.reverse_pointer + ".", []).append(name)
    dedup = lambda d: {k: tuple(dict.fromkeys(v)) for k, v in d.items()}  # noqa: E731
    return HostsTable(dedup(v4), dedup(v6), dedup(ptr))


class HostsView(FastView):
    """One version of the hosts table: its A, AAAA and PTR questions, beside a leading source."""

    leads = False

    def __init__(self, table: HostsTable) -> None:
        self.table = table

    def questions(self) -> Iterator[Question]:
        t = self.table
        yield from ((n, T.A) for n in t.v4)
        yield from ((n, T.AAAA) for n in t.v6)
        yield from ((n, T.PTR) for n in t.ptr)


class HostsPlugin(Plugin):
    name = "hosts"

    def __init__(self, opts: HostsOptions) -> None:
        self.opts = opts
        self._mine = zone_test(opts.zones)
        self.table = HostsTable({}, {}, {})
        self._view = HostsView(self.table)
        self._mtime: tuple[float, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.host: Host | None = None
        self.load()

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> HostsPlugin:
        opts = HostsOptions(zones=ctx.zones)
        if d.args:
            path = d.args[0]
            if not os.path.isabs(path):
                path = os.path.join(os.path.dirname(ctx.corefile) or ".", path)
            opts = replace(opts, path=path)
            if len(d.args) > 1:
                opts = replace(opts, zones=tuple(z.lower().rstrip(".") + "." if z != "." else "."
                                                 for z in d.args[1:]))
        inline: list[str] = []
        for sub in d.block:
            match sub.name:
                case "ttl":
                    opts = replace(opts, ttl=int_arg(sub, cls.name, 0, 2**31 - 1))
                case "reload":
                    if len(sub.args) != 1:
                        raise sub.error("reload needs a duration", cls.name)
                    opts = replace(opts, reload=parse_duration(sub.args[0], sub, cls.name))
                case "no_reverse":
                    opts = replace(opts, no_reverse=True)
                case "fallthrough":
                    opts = replace(opts, fall=Fallthrough.parse(sub.args))
                case _:
                    try:
                        ipaddress.ip_address(sub.name.split("%", 1)[0])
                    except ValueError as err:
                        raise sub.error(f"unknown property '{sub.name}'", cls.name) from err
                    if not sub.args:
                        raise sub.error(f"inline entry {sub.name} needs a host name", cls.name)
                    inline.append(" ".join((sub.name, *sub.args)))
        return cls(replace(opts, inline=tuple(inline)))

    def load(self) -> None:
        lines = list(self.opts.inline)
        try:
            st = os.stat(self.opts.path)
            stamp = (st.st_mtime, st.st_size)
            if stamp == self._mtime:
                return
            with open(self.opts.path, encoding="utf-8", errors="replace") as f:
                lines += f.read().splitlines()
            self._mtime = stamp
        except OSError as err:
            if self._mtime is not None or not self.opts.inline:
                log.warning("plugin/hosts: file %s: %s", self.opts.path, err.strerror)
        self.table = parse_hosts(lines, self.opts.zones)

    def fast_view(self) -> HostsView:
        if self._view.table is not self.table:
            self._view = HostsView(self.table)
        return self._view

    async def start(self, host: Host) -> None:
        self.host = host
        host.metrics.set("coredns_hosts_entries", len(self.table))
        host.metrics.set("coredns_hosts_reload_timestamp_seconds", time.time())
        if self.opts.reload > 0:
            self._task = asyncio.get_running_loop().create_task(self._reloader())

    async def _reloader(self) -> None:
        while True:
            await asyncio.sleep(self.opts.reload)
            await self.refresh()

    async def refresh(self) -> None:
        """Re-read the file; when the table changed, report it (metrics, fast table)."""
        old = self.table
        await asyncio.to_thread(self.load)
        if self.table is not old and self.host is not None:
            self.host.metrics.set("coredns_hosts_entries", len(self.table))
            self.host.metrics.set("coredns_hosts_reload_timestamp_seconds", time.time())
            self.host.answers_changed()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def answer(self, req: DnsRequest) -> dns.message.Message | None:
        """The reply this plugin writes, or None to go on down the chain."""
        t = self.table
        name = req.name
        if not any(z == "." or name == z or name.endswith("." + z) for z in self.opts.zones):
            return None
        if req.qtype == T.PTR:
            hosts = () if self.opts.no_reverse else t.ptr.get(name, ())
            if not hosts:
                return None
            m = req.reply(aa=True)
            rr = dns.rrset.RRset(dns.name.from_text(name), IN, T.PTR)
            for h in hosts:
                rr.add(PTR(IN, T.PTR, dns.name.from_text(h)), self.opts.ttl)
            m.answer.append(rr)
            req.note(f"hosts: PTR from {self.opts.path}")
            return m
        if not t.knows(name):
            return None
        m = req.reply(aa=True)
        addrs = t.v4.get(name, ()) if req.qtype == T.A else t.v6.get(name, ()) if req.qtype == T.AAAA else ()
        if addrs:
            rr = dns.rrset.RRset(dns.name.from_text(name), IN, req.qtype)
            for a in addrs:
                rr.add(A(IN, T.A, a) if req.qtype == T.A else AAAA(IN, T.AAAA, a), self.opts.ttl)
            m.answer.append(rr)
            req.note(f"hosts: {name} from {self.opts.path}")
        else:
            req.note(f"hosts: {name} is in {self.opts.path} without {T.to_text(req.qtype)}: NODATA")
        return m

    def wire_hop(self) -> WireHop:
        return WireHop(admit=self._lane_admit)

    def _lane_admit(self, q: WireQuery) -> bool:
        """What `serve` hands on: names outside its zones, PTR it has no host for, unknown names it
        falls through for."""
        name = q.name
        if not self._mine(name):
            return True
        if q.qtype == T.PTR:
            return self.opts.no_reverse or not self.table.ptr.get(name, ())
        return not self.table.knows(name) and self.opts.fall.through(name)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        m = self.answer(req)
        if m is not None:
            return m
        if req.qtype == T.PTR or self.opts.fall.through(req.name):
            return await next_(req)
        if not any(z == "." or req.name == z or req.name.endswith("." + z) for z in self.opts.zones):
            return await next_(req)
        req.note("hosts: unknown name and no fallthrough: SERVFAIL")
        return req.reply(dns.rcode.SERVFAIL)
