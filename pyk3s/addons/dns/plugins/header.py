"""header { query|response set|clear FLAGS... } — sets or clears header flags, as CoreDNS's plugin/header.

FLAGS are `aa`, `ra` and `rd` (as in CoreDNS, for queries and responses alike). `query` rules edit the
query the later plugins see (and so the RD the reply copies and forward sends upstream); `response` rules
edit the reply on its way back to the client. Rules apply in the order written, so a later rule for the
same flag wins. The plugin sits after cache (CoreDNS's order): a reply the cache stored was edited
before it was stored, and a cache hit is written by the cache (AA set, RD from the query), as in CoreDNS.

A block has one `header` (CoreDNS would silently use the first one's rules only): a second is an error,
as are arguments on the `header` line and a block without rules. Answers change per rule, so a block
with `header` keeps its queries on the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.flags
import dns.message

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Plugin

__all__ = ["FlagRule", "HeaderPlugin"]

FLAGS = {"aa": dns.flags.AA, "ra": dns.flags.RA, "rd": dns.flags.RD}


@dataclass(frozen=True, slots=True)
class FlagRule:
    flag: int
    state: bool


def apply_rules(flags: int, rules: tuple[FlagRule, ...]) -> int:
    for r in rules:
        flags = flags | r.flag if r.state else flags & ~r.flag
    return flags


def _parse_rules(sub: Directive) -> tuple[str, tuple[FlagRule, ...]]:
    selector = sub.name.lower()
    if selector not in ("query", "response"):
        raise sub.error(f"setting up rule: invalid selector={selector} should be query or response", "header")
    if sub.block:
        raise sub.error(f"{sub.name} takes no block", "header")
    if not sub.args:
        raise sub.error("setting up rule: no flag action provided", "header")
    action = sub.args[0].lower()
    if action not in ("set", "clear"):
        raise sub.error(f"setting up rule: unknown flag action={action}, should be set or clear", "header")
    if len(sub.args) < 2:
        raise sub.error("setting up rule: invalid length for flags, at least one should be provided", "header")
    rules = []
    for arg in sub.args[1:]:
        flag = FLAGS.get(arg.lower())
        if flag is None:
            raise sub.error(f"setting up rule: unknown/unsupported flag={arg.lower()}", "header")
        rules.append(FlagRule(int(flag), action == "set"))
    return selector, tuple(rules)


class HeaderPlugin(Plugin):
    name = "header"
    fast_safe = False

    def __init__(self, query_rules: tuple[FlagRule, ...], response_rules: tuple[FlagRule, ...]) -> None:
        self.query_rules = query_rules
        self.response_rules = response_rules

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> HeaderPlugin:
        if d.args:
            raise d.error("Wrong argument count or unexpected line ending after 'header'", cls.name)
        query: list[FlagRule] = []
        response: list[FlagRule] = []
        for sub in d.block:
            selector, rules = _parse_rules(sub)
            (query if selector == "query" else response).extend(rules)
        if not query and not response:
            raise d.error("Wrong argument count or unexpected line ending after 'header'", cls.name)
        return cls(tuple(query), tuple(response))

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if self.query_rules:
            req.query.flags = dns.flags.Flag(apply_rules(int(req.query.flags), self.query_rules))
        reply = await next_(req)
        if self.response_rules:
            reply.flags = dns.flags.Flag(apply_rules(int(reply.flags), self.response_rules))
            req.note("header: response flags edited")
        return reply
