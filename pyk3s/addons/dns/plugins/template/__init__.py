"""template CLASS TYPE [ZONES...] { match REGEX...  answer RR  additional RR  authority RR  rcode CODE
fallthrough [ZONES...] }

CoreDNS's plugin/template: a reply written from Go templates for the questions a regex matches. Each
`template` directive of a block is one template, tried in order: a question outside every template's
zones goes on down the chain; a template whose zone, class or type does not fit hands it to the next
one; a question in its zone that no regex matches is SERVFAIL unless `fallthrough` covers it. The
reply is authoritative with the rendered records; a CNAME answer to an A/AAAA question gets the target's
records from the block's whole chain. A template that fails to execute, or renders no valid RR, is a
SERVFAIL (and counted in coredns_template_*_failures_total).

Refused with a CorefileError: `var` and `expr` (the expr language is not implemented), `ederror` (replies
carry no EDNS options), classes other
than IN and ANY (pyk3s answers class IN only), and Go template features outside gotmpl's subset.
Template answers may use the client's address (`.Remote`), so a block with a template keeps its
queries on the chain (no fast answers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
import dns.ttl

from ...corefile import Directive
from ...options import Fallthrough
from ...plugin import BlockContext, DnsRequest, Handler, Host, Plugin
from .gotmpl import GoStruct, Template, TemplateExecError, TemplateSyntaxError, compile_template

__all__ = ["TemplatePlugin", "TemplateRule", "go_regex", "parse_rr"]

IN = dns.rdataclass.IN
MAX_REGEX_LEN = 10000
SECTIONS = ("answer", "additional", "authority")
FIELDS = frozenset({"Zone", "Name", "Regex", "Match", "Group", "Class", "Type", "Message", "Question", "Remote",
                    "Var", "Meta"})
_GO_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")


@dataclass(frozen=True, slots=True)
class TemplateRule:
    """One `template` directive."""

    qclass: dns.rdataclass.RdataClass   # IN or ANY
    qtype: T.RdataType                  # a type or ANY
    zones: tuple[str, ...]
    regexes: tuple[re.Pattern[str], ...]
    sections: dict[str, tuple[Template, ...]] = field(default_factory=dict)
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    fall: Fallthrough = Fallthrough()


def _zone_of(name: str, zones: Sequence[str]) -> str:
    """The longest of `zones` that holds `name` ("" for none), as CoreDNS's plugin.Zones.Matches."""
    best = ""
    for z in zones:
        if (z == "." or name == z or name.endswith("." + z)) and len(z) > len(best):
            best = z
    return best


def parse_rr(text: str) -> dns.rrset.RRset:
    """One RFC 1035 record line as miekg/dns's NewRR reads it: owner, then TTL and class in either order
    (TTL 3600 and class IN when absent), then the type and its data; relative names end at the root."""
    tokens = text.split()
    if len(tokens) < 2:
        raise ValueError(f"not a resource record: {text!r}")
    owner = dns.name.from_text(tokens[0], origin=dns.name.root)
    ttl, rdclass, i = 3600, IN, 1
    for _ in range(2):
        tok = tokens[i] if i < len(tokens) else ""
        if tok[:1].isdigit() and ttl == 3600 and tok.upper() not in ("IN", "CH"):
            try:
                ttl = dns.ttl.from_text(tok)
                i += 1
                continue
            except dns.exception.DNSException:
                pass
        try:
            rdclass = dns.rdataclass.from_text(tok)
            i += 1
        except (dns.exception.DNSException, ValueError):
            break
    if i >= len(tokens):
        raise ValueError(f"no record type in {text!r}")
    rdtype = T.from_text(tokens[i])
    rest = text.split(None, i + 1)[i + 1] if len(tokens) > i + 1 else ""
    rd = dns.rdata.from_text(rdclass, rdtype, rest, origin=dns.name.root, relativize=False)
    rrset = dns.rrset.RRset(owner, rdclass, rdtype)
    rrset.add(rd, ttl)
    return rrset


def go_regex(text: str) -> str:
    """A Go (RE2) regex in Python's syntax: `(?<name>` and `\\z` are rewritten; RE2 features Python's re
    lacks (POSIX classes, Unicode classes, `\\Q...\\E`, the U flag) are a ValueError."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in "pPQ":
                raise ValueError(f"\\{nxt} is not supported")
            out.append("\\Z" if nxt == "z" else c + nxt)
            i += 2
            continue
        if re.match(r"\[:\^?[a-z]+:\]", text[i:]):
            raise ValueError("POSIX character classes ([[:alpha:]]) are not supported")
        if text.startswith("(?", i) and (m := re.match(r"\(\?[imsU-]*U", text[i:])) is not None:
            raise ValueError(f"the U flag ({m.group()}) is not supported")
        out.append(c)
        i += 1
    return _GO_NAMED_GROUP.sub("(?P<", "".join(out))


def _regex(text: str, d: Directive) -> re.Pattern[str]:
    if len(text) > MAX_REGEX_LEN:
        raise d.error(f"regex pattern too long: {len(text)} > {MAX_REGEX_LEN}", "template")
    try:
        return re.compile(go_regex(text))
    except (re.error, ValueError) as err:
        raise d.error(f"could not parse regex: {text}, {err}", "template") from None


def _compile(text: str, d: Directive) -> Template:
    try:
        tmpl = compile_template(text, {})
    except TemplateSyntaxError as err:
        raise d.error(f"could not compile template: {text}, {err}", "template") from None
    for f in _top_fields(tmpl.nodes):
        if f not in FIELDS:
            raise d.error(f"template {text!r}: no field .{f} (known: {', '.join(sorted(FIELDS))})", "template")
    return tmpl


def _top_fields(nodes: Any) -> set[str]:
    """The first names of every field path in a template tree (checked at setup, as Go would at run)."""
    out: set[str] = set()
    stack = list(nodes) if isinstance(nodes, tuple) else [nodes]
    while stack:
        n = stack.pop()
        path = getattr(n, "path", None)
        if path:
            out.add(path[0])
        for attr in ("cmds", "then", "other"):
            for x in getattr(n, attr, ()) or ():
                stack.extend(x if isinstance(x, tuple) else [x])
        cond = getattr(n, "cond", None)
        if cond is not None:
            stack.append(cond)
    return out


def parse_rule(d: Directive, ctx: BlockContext) -> TemplateRule:
    if len(d.args) < 2:
        raise d.error("template needs CLASS and TYPE", "template")
    cls_text, type_text = d.args[0].upper(), d.args[1].upper()
    if cls_text not in ("IN", "ANY"):
        try:
            dns.rdataclass.from_text(cls_text)
        except (dns.exception.DNSException, ValueError):
            raise d.error(f"invalid query class {d.args[0]}", "template") from None
        raise d.error(f"class {cls_text} is not supported: pyk3s answers class IN only", "template")
    try:
        qtype = T.from_text(type_text)
    except (dns.exception.DNSException, ValueError):
        raise d.error(f"invalid RR class {d.args[1]}", "template") from None
    zones = tuple(z.lower() if z.endswith(".") else z.lower() + "." for z in d.args[2:]) or ctx.zones
    regexes: list[re.Pattern[str]] = []
    sections: dict[str, list[Template]] = {s: [] for s in SECTIONS}
    rcode, fall = dns.rcode.NOERROR, Fallthrough()
    for sub in d.block:
        match sub.name:
            case "match":
                if not sub.args:
                    raise sub.error("match needs a regex", "template")
                regexes += [_regex(a, sub) for a in sub.args]
            case "answer" | "additional" | "authority":
                if not sub.args:
                    raise sub.error(f"{sub.name} needs a template", "template")
                sections[sub.name] += [_compile(a, sub) for a in sub.args]
            case "rcode":
                if len(sub.args) != 1:
                    raise sub.error("rcode needs one response code", "template")
                try:
                    rcode = dns.rcode.from_text(sub.args[0])
                except (dns.exception.DNSException, ValueError):
                    raise sub.error(f"unknown rcode {sub.args[0]}", "template") from None
            case "ederror":
                # render_message (wire.py) writes the client's EDNS without options: the code would be lost
                raise sub.error("ederror is not supported: pyk3s replies carry no EDNS options", "template")
            case "fallthrough":
                fall = Fallthrough.parse(sub.args)
            case "upstream":
                pass        # CoreDNS accepts and ignores it: CNAME targets always go through the chain
            case "var" | "expr":
                raise sub.error(f"{sub.name} is not supported: pyk3s does not implement the expr language",
                                "template")
            case _:
                raise sub.error(f"unknown property '{sub.name}'", "template")
    return TemplateRule(
        qclass=IN if cls_text == "IN" else dns.rdataclass.ANY, qtype=qtype, zones=zones,
        regexes=tuple(regexes) or (re.compile(".*"),),
        sections={s: tuple(v) for s, v in sections.items()}, rcode=rcode, fall=fall)


def _question_struct(q: dns.message.Message) -> GoStruct:
    rr = q.question[0]
    name = rr.name.to_text()
    return GoStruct({"Name": name, "Qtype": int(rr.rdtype), "Qclass": int(rr.rdclass)},
                    f";{name}\t{dns.rdataclass.to_text(rr.rdclass)}\t {T.to_text(rr.rdtype)}")


def _message_struct(q: dns.message.Message) -> GoStruct:
    return GoStruct({
        "Id": q.id, "Opcode": int(q.opcode()), "Rcode": int(q.rcode()),
        "RecursionDesired": bool(q.flags & dns.flags.RD), "CheckingDisabled": bool(q.flags & dns.flags.CD),
        "AuthenticatedData": bool(q.flags & dns.flags.AD),
        "Question": [_question_struct(q)] if q.question else []}, q.to_text())


class TemplatePlugin(Plugin):
    name = "template"
    fast_safe = False
    once_per_block = False
    merges = True

    def __init__(self, rules: list[TemplateRule]) -> None:
        self.rules = rules
        self.host: Host | None = None

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> TemplatePlugin:
        return cls([parse_rule(d, ctx)])

    def merge(self, other: Plugin) -> None:
        assert isinstance(other, TemplatePlugin)
        self.rules.extend(other.rules)

    async def start(self, host: Host) -> None:
        self.host = host

    def _count(self, metric: str, req: DnsRequest, data: dict[str, Any], **labels: str) -> None:
        if self.host is not None:
            labels.update(server=req.server, zone=data["Zone"], view="", type=data["Type"])
            labels["class"] = data["Class"]
            self.host.metrics.inc(metric, 1, **labels)

    def _match(self, rule: TemplateRule, req: DnsRequest) -> tuple[GoStruct | None, bool]:
        """(template data when it matches, whether a miss goes on to the next template)."""
        zone = _zone_of(req.name, rule.zones)
        if not zone:
            return None, True
        qclass = req.query.question[0].rdclass
        if rule.qclass != dns.rdataclass.ANY and qclass != dns.rdataclass.ANY and qclass != rule.qclass:
            return None, True
        if rule.qtype != T.ANY and req.qtype != T.ANY and req.qtype != rule.qtype:
            return None, True
        for rx in rule.regexes:
            m = rx.search(req.name)
            if m is None:
                continue
            groups = {str(i): g or "" for i, g in enumerate((m.group(0), *m.groups()))}
            groups.update({k: v or "" for k, v in m.groupdict().items()})
            remote = req.addr[0] if isinstance(req.addr, tuple) else ""
            data = GoStruct({
                "Zone": zone, "Name": req.name, "Regex": rx.pattern,
                "Match": [m.group(0), *(g or "" for g in m.groups())], "Group": groups,
                "Class": dns.rdataclass.to_text(qclass if qclass != dns.rdataclass.ANY else rule.qclass),
                "Type": T.to_text(req.qtype if req.qtype != T.ANY else rule.qtype),
                "Message": _message_struct(req.query), "Question": _question_struct(req.query),
                "Remote": remote, "Var": {},
                # no metadata plugin in pyk3s: every name is unset, as in CoreDNS without `metadata`
                "Meta": lambda _name="": ""})
            return data, False
        return None, rule.fall.through(req.name)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if not any(_zone_of(req.name, r.zones) for r in self.rules):
            return await next_(req)
        for i, rule in enumerate(self.rules):
            data, through = self._match(rule, req)
            if data is None:
                if not through:
                    req.note(f"template: {req.name} is in template {i + 1}'s zone, no regex matches, "
                             "no fallthrough: SERVFAIL")
                    return req.reply(dns.rcode.SERVFAIL)
                continue
            self._count("coredns_template_matches_total", req, data)
            req.note(f"template: {req.name} matches template {i + 1} ({data['Regex']})")
            if rule.rcode == dns.rcode.SERVFAIL:
                return req.reply(dns.rcode.SERVFAIL)
            return await self._reply(rule, req, data)
        req.note("template: no template matches; fall through")
        return await next_(req)

    async def _reply(self, rule: TemplateRule, req: DnsRequest, data: GoStruct) -> dns.message.Message:
        m = req.reply(rule.rcode, aa=True)
        for section in SECTIONS:
            for tmpl in rule.sections[section]:
                try:
                    text = tmpl.execute(data)
                except TemplateExecError as err:
                    self._count("coredns_template_template_failures_total", req, data, section=section,
                                template=tmpl.source)
                    req.note(f"template: {section} {tmpl.source!r} failed: {err}: SERVFAIL")
                    return req.reply(dns.rcode.SERVFAIL)
                try:
                    rrset = parse_rr(text)
                except (dns.exception.DNSException, ValueError) as err:
                    self._count("coredns_template_rr_failures_total", req, data, section=section,
                                template=tmpl.source)
                    req.note(f"template: {section} {text!r} is no valid RR ({err}): SERVFAIL")
                    return req.reply(dns.rcode.SERVFAIL)
                getattr(m, section).append(rrset)
                if section == "answer" and rrset.rdtype == T.CNAME and req.qtype in (T.A, T.AAAA):
                    m.answer.extend(await self._chase(req, rrset[0].target.to_text()))
        return m

    async def _chase(self, req: DnsRequest, target: str) -> list[dns.rrset.RRset]:
        """The CNAME target's records of the asked type, from the block's whole chain (CoreDNS's upstream)."""
        if req.root is None or req.depth >= 8 or req.offline:
            return []
        try:
            reply = await req.root(req.derive(target, req.qtype))
        except Exception as err:  # an upstream that fails leaves the CNAME alone, as in CoreDNS
            req.note(f"template: looking up {target} failed: {err}")
            return []
        return list(reply.answer)

