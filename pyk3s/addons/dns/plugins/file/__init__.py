"""file DBFILE [ZONES...] { reload DURATION  reload_by_mtime  fallthrough [ZONES...] }

CoreDNS's plugin/file: authoritative answers from an RFC 1035 zone file (zone.py has the lookup). The
zones default to the server block's; a relative DBFILE is relative to the Corefile. A file that does not
parse is a CorefileError; a missing file is one too when `reload 0`, else the zone answers SERVFAIL until
a reload finds it. Every `reload` interval (default 1m, 0: never) a file whose mtime or size changed is
read again and replaces the zone when its SOA serial changed (any change with `reload_by_mtime`); a
file that no longer parses keeps the old zone and is logged. AXFR/IXFR are REFUSED (no transfer
plugin). DNSSEC records are served as data only (no DO processing).

Its answers depend on the question alone, so the fast table may keep them; a reload that swaps a zone
brings it up to date. On the forward lane it lets through every name outside its zones.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, replace

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype as T
import dns.rrset
from dns.rdatatype import RdataType

from ...corefile import Directive
from ...options import Fallthrough, parse_duration, zone_test
from ...plugin import BlockContext, DnsRequest, Handler, Host, Plugin, WireHop
from ...wire import WireQuery
from .zone import Lookup, LookupResult, ZoneData, load_zone

__all__ = ["FilePlugin", "FileZone", "Lookup", "LookupResult", "ZoneData", "load_zone"]

log = logging.getLogger("pyk3s.dns.file")


@dataclass(frozen=True, slots=True)
class FileZone:
    """One zone of one `file` directive."""

    origin: str
    path: str
    reload: float = 60.0
    by_mtime: bool = False
    fall: Fallthrough = Fallthrough()


def _fqdn(z: str) -> str:
    return z.lower() if z.endswith(".") else z.lower() + "."


def _longest(name: str, origins: list[str]) -> str:
    best = ""
    for z in origins:
        if (z == "." or name == z or name.endswith("." + z)) and len(z) > len(best):
            best = z
    return best


class FilePlugin(Plugin):
    name = "file"
    once_per_block = False
    merges = True

    def __init__(self, zones: list[FileZone], data: dict[str, ZoneData | None]) -> None:
        self.zones = {z.origin: z for z in zones}
        self.data = data
        self._mine = zone_test(tuple(self.zones))
        self._tasks: list[asyncio.Task[None]] = []
        self.host: Host | None = None

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> FilePlugin:
        if not d.args:
            raise d.error("file needs a DBFILE", cls.name)
        path = d.args[0]
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(ctx.corefile) or ".", path)
        origins = tuple(_fqdn(z) for z in d.args[1:]) or ctx.zones
        base = FileZone("", path)
        for sub in d.block:
            match sub.name:
                case "reload":
                    if len(sub.args) != 1:
                        raise sub.error("reload duration value is expected", cls.name)
                    base = replace(base, reload=parse_duration(sub.args[0], sub, cls.name))
                case "reload_by_mtime":
                    base = replace(base, by_mtime=True)
                case "fallthrough":
                    base = replace(base, fall=Fallthrough.parse(sub.args))
                case "upstream":
                    pass        # CoreDNS accepts and ignores it: CNAME targets always go through the chain
                case _:
                    raise sub.error(f"unknown property '{sub.name}'", cls.name)
        zones = [replace(base, origin=o) for o in origins]
        data: dict[str, ZoneData | None] = {}
        for z in zones:
            try:
                data[z.origin] = load_zone(z.path, z.origin)
            except FileNotFoundError as err:
                if z.reload == 0:
                    raise d.error(f"open {z.path}: {err.strerror}", cls.name) from None
                log.warning("plugin/file: failed to open %s: trying again in %ss", z.path, z.reload)
                data[z.origin] = None
            except (OSError, ValueError) as err:
                raise d.error(str(err), cls.name) from None
        return cls(zones, data)

    def merge(self, other: Plugin) -> None:
        assert isinstance(other, FilePlugin)
        self.zones.update(other.zones)
        self.data.update(other.data)
        self._mine = zone_test(tuple(self.zones))

    async def start(self, host: Host) -> None:
        self.host = host
        for z in self.zones.values():
            if z.reload > 0:
                self._tasks.append(asyncio.get_running_loop().create_task(self._reloader(z)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()

    async def _reloader(self, z: FileZone) -> None:
        while True:
            await asyncio.sleep(z.reload)
            await self.refresh(z.origin)

    async def refresh(self, origin: str) -> bool:
        """Read the zone's file again if it changed; True when the zone was replaced."""
        z, old = self.zones[origin], self.data.get(origin)
        try:
            st = os.stat(z.path)
        except OSError as err:
            log.error("plugin/file: failed to open zone %r in %r: %s", origin, z.path, err.strerror)
            return False
        if old is not None and (st.st_mtime, st.st_size) == old.stamp:
            return False
        try:
            new = await asyncio.to_thread(load_zone, z.path, origin)
        except (OSError, ValueError) as err:
            log.error("plugin/file: parsing zone %r: %s", origin, err)
            return False
        if old is not None and not z.by_mtime and new.serial == old.serial:
            # no change in SOA serial: keep serving the old data, but do not read this version again
            self.data[origin] = replace(old, stamp=new.stamp)
            return False
        self.data[origin] = new
        log.info("plugin/file: successfully reloaded zone %r in %r with %d SOA serial", origin, z.path, new.serial)
        if self.host is not None:
            self.host.answers_changed()
        return True

    def wire_hop(self) -> WireHop:
        return WireHop(admit=self._lane_admit)

    def _lane_admit(self, q: WireQuery) -> bool:
        return not self._mine(q.name)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        origin = _longest(req.name, list(self.zones))
        if not origin:
            return await next_(req)
        data = self.data.get(origin)
        if data is None:
            req.note(f"file: zone {origin} is not loaded ({self.zones[origin].path}): SERVFAIL")
            return req.reply(dns.rcode.SERVFAIL)
        if req.qtype in (T.AXFR, T.IXFR):
            req.note("file: zone transfers are not served: REFUSED")
            return req.reply(dns.rcode.REFUSED)

        async def upstream(name: dns.name.Name, qtype: RdataType) -> tuple[int, list[dns.rrset.RRset]]:
            if req.root is None or req.depth >= 8 or req.offline:
                return 0, []
            reply = await req.root(req.derive(name.to_text(), qtype))
            return reply.rcode(), list(reply.answer)

        found = await data.lookup(req.qname, req.qtype, upstream)
        fall = self.zones[origin].fall
        if not found.answer and found.result in (LookupResult.NAME_ERROR, LookupResult.SUCCESS) and fall.through(req.name):
            req.note(f"file: {req.name} not in zone {origin}; fall through")
            return await next_(req)
        req.note(f"file: {req.name} {T.to_text(req.qtype)} in zone {origin}: {found.result.value}")
        if found.result == LookupResult.SERVER_FAILURE and not found.answer:
            return req.reply(dns.rcode.SERVFAIL)
        rcode = {LookupResult.NAME_ERROR: dns.rcode.NXDOMAIN,
                 LookupResult.SERVER_FAILURE: dns.rcode.SERVFAIL}.get(found.result, dns.rcode.NOERROR)
        # a referral alone is not authoritative; an answer that holds the alias is
        m = req.reply(rcode, aa=not (found.result == LookupResult.DELEGATION and not found.answer))
        m.answer, m.authority, m.additional = found.answer, found.authority, found.additional
        return m
