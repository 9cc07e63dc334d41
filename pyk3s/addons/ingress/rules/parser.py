"""Rule expression parser shared by the v2 and v3 syntaxes (spec §1.1).

Grammar (Go expression syntax as vulcand/predicate reads it)::

    expr    := and ('||' and)*
    and     := unary ('&&' unary)*
    unary   := '!' unary | '(' expr ')' | call
    call    := NAME '(' string (',' string)* ')'
    string  := `raw` | "go-escaped"

Matcher names are accepted in four spellings: canonical, lower, UPPER and Title of the lower form
(1.1.3). Zero arguments and empty-string arguments are errors (1.1.4). The result is a small tree of
:class:`Call`, :class:`And`, :class:`Or` and :class:`Not` nodes; the matcher modules turn it into closures.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.errors import RuleError

__all__ = ["Call", "And", "Or", "Not", "Node", "parse_expression", "spellings"]


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # as written
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    inner: Node


Node = Call | And | Or | Not

_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def spellings(canonical: str) -> tuple[str, ...]:
    """The four accepted spellings of a matcher name."""
    low = canonical.lower()
    return tuple(dict.fromkeys((canonical, low, canonical.upper(), low[:1].upper() + low[1:])))


def _go_string(text: str, pos: int) -> tuple[str, int]:
    """Decode a Go double-quoted literal starting at text[pos] == '"'; return (value, next pos)."""
    out: list[str] = []
    i = pos + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\n":
            break
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            break
        e = text[i + 1]
        if e in _GO_ESCAPES:
            out.append(_GO_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise RuleError(f"invalid escape \\{e}{digits} at offset {i}")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif e in "01234567":
            digits = text[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise RuleError(f"invalid octal escape at offset {i}")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise RuleError(f"unknown escape sequence \\{e} at offset {i}")
    raise RuleError(f"unterminated string starting at offset {pos}")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    toks: list[tuple[str, str, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c in "(),":
            toks.append((c, c, i))
            i += 1
        elif text.startswith("&&", i) or text.startswith("||", i):
            toks.append((text[i : i + 2], text[i : i + 2], i))
            i += 2
        elif c == "!":
            toks.append(("!", "!", i))
            i += 1
        elif c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise RuleError(f"unterminated raw string starting at offset {i}")
            toks.append(("str", text[i + 1 : end], i))
            i = end + 1
        elif c == '"':
            value, i2 = _go_string(text, i)
            toks.append(("str", value, i))
            i = i2
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            toks.append(("name", text[i:j], i))
            i = j
        else:
            raise RuleError(f"unexpected character {c!r} at offset {i}")
    return toks


class _RuleParser:
    __slots__ = ("toks", "pos", "lenient")

    def __init__(self, toks: list[tuple[str, str, int]], lenient: bool = False) -> None:
        self.toks, self.pos, self.lenient = toks, 0, lenient

    def peek(self) -> str:
        return self.toks[self.pos][0] if self.pos < len(self.toks) else ""

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            where = f"at offset {self.toks[self.pos][2]}" if self.pos < len(self.toks) else "at end of rule"
            raise RuleError(f"expected {kind!r} {where}")
        value = self.toks[self.pos][1]
        self.pos += 1
        return value

    def expr(self) -> Node:
        node = self.conj()
        while self.peek() == "||":
            self.pos += 1
            node = Or(node, self.conj())
        return node

    def conj(self) -> Node:
        node = self.unary()
        while self.peek() == "&&":
            self.pos += 1
            node = And(node, self.unary())
        return node

    def unary(self) -> Node:
        kind = self.peek()
        if kind == "!":
            self.pos += 1
            return Not(self.unary())
        if kind == "(":
            self.pos += 1
            node = self.expr()
            self.take(")")
            return node
        name = self.take("name")
        self.take("(")
        args: list[str] = []
        if self.peek() == ")":
            if self.lenient:
                self.pos += 1
                return Call(name, ())
            raise RuleError(f"matcher {name} needs at least one argument")
        while True:
            if self.peek() != "str":
                raise RuleError(f"matcher {name}: arguments must be quoted strings")
            value = self.take("str")
            if value == "" and not self.lenient:
                raise RuleError(f"matcher {name}: empty argument")
            args.append(value)
            if self.peek() == ",":
                self.pos += 1
                continue
            self.take(")")
            break
        return Call(name, tuple(args))


def parse_expression(rule: str, lenient: bool = False) -> Node:
    """Parse a rule into a tree; raise :class:`RuleError` on any syntax error. ``lenient`` lets matchers
    without arguments and empty arguments through, as Traefik's grammar does before the matchers check
    their arguments (it reads a rule's domains that way)."""
    if not rule.strip():
        raise RuleError("empty rule")
    p = _RuleParser(_tokens(rule), lenient)
    node = p.expr()
    if p.pos != len(p.toks):
        raise RuleError(f"unexpected {p.toks[p.pos][1]!r} at offset {p.toks[p.pos][2]}")
    return node
