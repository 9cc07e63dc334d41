"""errors [{ consolidate DURATION REGEXP [LEVEL] [show_first] | stacktrace }] (spec dns.md O1).

Logs every error raised by the plugins after it and answers SERVFAIL.
"""

from __future__ import annotations

import logging
import re

import dns.message
import dns.rcode
import dns.rdatatype

from ..corefile import Directive
from ..options import parse_duration
from ..plugin import BlockContext, DnsRequest, Handler, Plugin, WireHop
from ..wire import WireQuery

__all__ = ["ErrorsPlugin"]

log = logging.getLogger("pyk3s.dns.errors")


class ErrorsPlugin(Plugin):
    name = "errors"

    def __init__(self, consolidate: tuple[tuple[float, re.Pattern[str]], ...] = ()) -> None:
        self.consolidate = consolidate

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> ErrorsPlugin:
        if d.args:
            raise d.error("errors takes no arguments", cls.name)
        rules = []
        for sub in d.block:
            if sub.name == "consolidate" and len(sub.args) >= 2:
                try:
                    rules.append((parse_duration(sub.args[0], sub, cls.name), re.compile(sub.args[1])))
                except re.error as err:
                    raise sub.error(f"invalid regexp {sub.args[1]!r}: {err}", cls.name) from err
            elif sub.name == "stacktrace" and not sub.args:
                continue
            else:
                raise sub.error(f"unknown property '{sub.name}'", cls.name)
        return cls(tuple(rules))

    def wire_hop(self) -> WireHop:
        return WireHop(failed=self._lane_failed)

    def _lane_failed(self, q: WireQuery, err: Exception) -> None:
        log.error("[ERROR] plugin/errors: 2 %s %s: %s", q.name, dns.rdatatype.to_text(
            dns.rdatatype.RdataType.make(q.qtype)), err)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        try:
            return await next_(req)
        except Exception as err:  # the chain failed: log like CoreDNS and answer SERVFAIL
            log.error("[ERROR] plugin/errors: 2 %s %s: %s", req.name, dns.rdatatype.to_text(req.qtype), err)
            req.note(f"errors: {err}")
            return req.reply(dns.rcode.SERVFAIL)
