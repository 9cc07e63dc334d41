"""rewrite [continue|stop] FIELD [TYPE] FROM TO [answer auto | answer name FROM TO [answer value FROM TO]]

FIELD `name` with TYPE exact (default), prefix, suffix, substring or regex; FIELD `type` and `class`
with FROM/TO mnemonics. Rules run in Corefile order; `stop` (default) ends after the first rule that
matched. The question section of the reply is restored to what the client sent; owner names (and,
with `answer value`, CNAME/PTR/NS/SRV targets) are rewritten back with `answer name` / `answer auto`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Plugin

__all__ = ["RewritePlugin", "RewriteRule"]

NAME_TYPES = ("exact", "prefix", "suffix", "substring", "regex")


@dataclass(frozen=True, slots=True)
class RewriteRule:
    field: str                         # name | type | class
    match: str                         # exact | prefix | suffix | substring | regex
    frm: str
    to: str
    stop: bool = True
    answer_auto: bool = False
    answer_name: tuple[str, str] | None = None   # regex, replacement
    answer_value: tuple[str, str] | None = None

    def rewrite_name(self, name: str) -> str | None:
        f, t = self.frm, self.to
        match self.match:
            case "exact":
                return t if name == f else None
            case "prefix":
                return t + name[len(f):] if name.startswith(f) else None
            case "suffix":
                return name[: len(name) - len(f)] + t if name.endswith(f) else None
            case "substring":
                return name.replace(f, t, 1) if f in name else None
            case _:
                m = re.search(f, name)
                return _expand(m, t) if m else None

    def revert(self, original: str, rewritten: str) -> list[tuple[re.Pattern[str], str]]:
        out = []
        if self.answer_name:
            out.append((re.compile(self.answer_name[0]), self.answer_name[1]))
        elif self.answer_auto:
            out.append((re.compile("^" + re.escape(rewritten) + "$"), original))
        return out


def _expand(m: re.Match[str], template: str) -> str:
    """CoreDNS replaces the whole name by the template with {N} filled from the groups."""
    out = template
    for i, g in enumerate((m.group(0), *m.groups())):
        out = out.replace("{" + str(i) + "}", g or "")
    return out


def _fqdn(x: str) -> str:
    return x.lower() if x.endswith(".") else x.lower() + "."


class RewritePlugin(Plugin):
    name = "rewrite"
    fast_safe = False
    once_per_block = False
    merges = True

    def __init__(self, rules: tuple[RewriteRule, ...]) -> None:
        self.rules = rules

    def merge(self, other: Plugin) -> None:
        assert isinstance(other, RewritePlugin)
        self.rules = self.rules + other.rules

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> RewritePlugin:
        a = list(d.args)
        stop = True
        if a and a[0] in ("continue", "stop"):
            stop = a.pop(0) == "stop"
        if not a:
            raise d.error("rewrite needs a field", cls.name)
        fld = a.pop(0)
        if fld == "name":
            mt = a.pop(0) if a and a[0] in NAME_TYPES else "exact"
            if len(a) < 2:
                raise d.error("rewrite name needs FROM and TO", cls.name)
            frm, to, rest = a[0], a[1], a[2:]
            if mt == "regex":
                try:
                    re.compile(frm)
                except re.error as err:
                    raise d.error(f"invalid regex {frm!r}: {err}", cls.name) from err
            elif mt in ("exact", "prefix", "suffix") or mt == "substring":
                if mt in ("exact", "suffix"):
                    frm, to = _fqdn(frm), _fqdn(to)
                else:
                    frm, to = frm.lower(), to.lower()
            auto, aname, avalue = False, None, None
            while rest:
                if rest[0] != "answer" or len(rest) < 2:
                    raise d.error(f"unexpected {' '.join(rest)!r}", cls.name)
                if rest[1] == "auto":
                    auto, rest = True, rest[2:]
                elif rest[1] in ("name", "value") and len(rest) >= 4:
                    try:
                        re.compile(rest[2])
                    except re.error as err:
                        raise d.error(f"invalid regex {rest[2]!r}: {err}", cls.name) from err
                    if rest[1] == "name":
                        aname = (rest[2], rest[3])
                    else:
                        avalue = (rest[2], rest[3])
                    rest = rest[4:]
                else:
                    raise d.error(f"unexpected {' '.join(rest)!r}", cls.name)
            return cls((RewriteRule("name", mt, frm, to, stop, auto, aname, avalue),))
        if fld in ("type", "class"):
            if len(a) != 2:
                raise d.error(f"rewrite {fld} needs FROM and TO", cls.name)
            conv = dns.rdatatype.from_text if fld == "type" else dns.rdataclass.from_text
            try:
                conv(a[0])
                conv(a[1])
            except Exception as err:
                raise d.error(f"invalid {fld} {a[0]!r} or {a[1]!r}", cls.name) from err
            return cls((RewriteRule(fld, "exact", a[0].upper(), a[1].upper(), stop),))
        raise d.error(f"unsupported rewrite field {fld!r}", cls.name)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        name, qtype = req.name, req.qtype
        query = req.query
        qclass = query.question[0].rdclass
        reverts: list[tuple[re.Pattern[str], str]] = []
        values: list[tuple[re.Pattern[str], str]] = []
        changed = False
        for rule in self.rules:
            hit = False
            if rule.field == "name":
                new = rule.rewrite_name(name)
                if new is not None:
                    new = _fqdn(new)
                    reverts.extend(rule.revert(name, new))
                    if rule.answer_value:
                        values.append((re.compile(rule.answer_value[0]), rule.answer_value[1]))
                    name, hit = new, True
            elif rule.field == "type" and qtype == dns.rdatatype.from_text(rule.frm):
                qtype, hit = dns.rdatatype.from_text(rule.to), True
            elif rule.field == "class" and qclass == dns.rdataclass.from_text(rule.frm):
                qclass, hit = dns.rdataclass.from_text(rule.to), True
            if hit:
                changed = True
                req.note(f"rewrite: {rule.field} {rule.match} {rule.frm} -> {rule.to}")
                if rule.stop:
                    break
        if not changed:
            return await next_(req)
        q2 = dns.message.make_query(name, qtype, qclass, use_edns=query.edns, payload=query.payload,
                                    want_dnssec=bool(query.ednsflags & dns.flags.DO))
        q2.id, q2.flags = query.id, query.flags
        sub = replace(req, query=q2, qname=q2.question[0].name, name=name, qtype=qtype)
        reply = await next_(sub)
        reply.question = list(query.question)
        for sec in (reply.answer, reply.authority, reply.additional):
            for i, rr in enumerate(sec):
                sec[i] = self._revert(rr, reverts, values)
        return reply

    @staticmethod
    def _revert(rr: dns.rrset.RRset, reverts: list, values: list) -> dns.rrset.RRset:
        owner = rr.name.to_text().lower()
        owner = owner if owner.endswith(".") else owner + "."
        for pat, rep in reverts:
            if (m := pat.search(owner)) is not None:
                owner = _expand(m, rep)
        new = dns.rrset.RRset(dns.name.from_text(owner), rr.rdclass, rr.rdtype)
        for rd in rr:
            if values and hasattr(rd, "target"):
                t = rd.target.to_text().lower()
                for pat, rep in values:
                    if (m := pat.search(t)) is not None:
                        t = _expand(m, rep)
                rd = rd.replace(target=dns.name.from_text(t))
            new.add(rd, rr.ttl)
        return new

