"""The part of Go's text/template that CoreDNS templates use: text, `{{ pipeline }}` actions with
`{{-`/`-}}` trimming and comments, fields (`.Name`, `.Group.a`, `$.Zone`), string/raw/char/number
literals, parenthesised pipelines, `|` chaining, `if`/`else if`/`else`/`end`, and the functions
index, len, print, printf, println, eq, ne, lt, le, gt, ge, and, or, not plus CoreDNS's parseInt.

`compile_template` refuses what it does not implement (range, with, define, template, block, variable
declarations, other functions) with a TemplateSyntaxError naming it; execution errors (an index out of
range, parseInt of a non-number, a struct without the field) are TemplateExecError, as Go reports them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GoStruct", "NO_VALUE", "Template", "TemplateExecError", "TemplateSyntaxError", "compile_template"]


class TemplateSyntaxError(ValueError):
    """The template text cannot be parsed, or uses something this evaluator does not implement."""


class TemplateExecError(ValueError):
    """Executing the template failed (Go's template.Execute error)."""


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()      # a missing map key, printed as Go prints it


class GoStruct(dict[str, Any]):
    """A Go struct: a missing field is an execution error; `text` is what printing it gives (its String())."""

    def __init__(self, fields: dict[str, Any], text: str = "") -> None:
        super().__init__(fields)
        self.text = text


@dataclass(frozen=True, slots=True)
class _Field:
    path: tuple[str, ...]      # () for `.`
    root: bool = False         # `$` / `$.X`


@dataclass(frozen=True, slots=True)
class _Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class _Func:
    name: str


@dataclass(frozen=True, slots=True)
class _Pipe:
    cmds: tuple[tuple[Any, ...], ...]   # each command: operands (_Field, _Lit, _Func, _Pipe)


@dataclass(frozen=True, slots=True)
class _If:
    cond: _Pipe
    then: tuple[Any, ...]
    other: tuple[Any, ...]


_UNSUPPORTED_KEYWORDS = {"range", "with", "define", "template", "block", "break", "continue"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?))
  | (?P<field>(?:\$[A-Za-z0-9_]*)?(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\$[A-Za-z0-9_]*|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<decl>:?=)
  | (?P<punct>[()|,])
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "0": "\0"}


def _unquote(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif nxt in "uU":
            n = 4 if nxt == "u" else 8
            out.append(chr(int(body[i + 2:i + 2 + n], 16)))
            i += 2 + n
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise TemplateSyntaxError(f"invalid escape \\{nxt} in string")
    return "".join(out)


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    try:
        return int(t, 0)
    except ValueError:
        return float(t)


def _tokens(src: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(src):
        m = _TOKEN.match(src, i)
        if m is None:
            raise TemplateSyntaxError(f"unexpected {src[i]!r} in action {{{{{src}}}}}")
        kind = m.lastgroup or ""
        if kind != "space":
            out.append((kind, m.group()))
        i = m.end()
    return out


class _Parser:
    def __init__(self, toks: list[tuple[str, str]], funcs: dict[str, Callable[..., Any]]) -> None:
        self.toks, self.i, self.funcs = toks, 0, funcs

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def pipe(self, closer: str | None = None) -> _Pipe:
        cmds: list[tuple[Any, ...]] = []
        ops: list[Any] = []
        while (t := self.peek()) is not None:
            kind, text = t
            if kind == "punct" and text == ")":
                if closer != ")":
                    raise TemplateSyntaxError("unexpected )")
                break
            self.i += 1
            if kind == "punct" and text == "|":
                if not ops:
                    raise TemplateSyntaxError("missing command before |")
                cmds.append(tuple(ops))
                ops = []
            elif kind == "punct" and text == "(":
                ops.append(self.pipe(")"))
                self.i += 1
            elif kind == "decl":
                raise TemplateSyntaxError("template variables ($x := ...) are not supported")
            elif kind == "punct":
                raise TemplateSyntaxError(f"unexpected {text!r}")
            else:
                ops.append(self.operand(kind, text))
        else:
            if closer is not None:
                raise TemplateSyntaxError("unclosed (")
        if not ops:
            raise TemplateSyntaxError("missing value for command" if cmds else "empty pipeline")
        cmds.append(tuple(ops))
        for c in cmds[1:]:
            if not isinstance(c[0], (_Func, _Field)):
                raise TemplateSyntaxError("a non-function cannot receive a piped value")
        return _Pipe(tuple(cmds))

    def operand(self, kind: str, text: str) -> Any:
        match kind:
            case "str":
                return _Lit(_unquote(text[1:-1]))
            case "raw":
                return _Lit(text[1:-1])
            case "char":
                ch = _unquote(text[1:-1])
                if len(ch) != 1:
                    raise TemplateSyntaxError(f"malformed character constant {text}")
                return _Lit(ord(ch))
            case "num":
                return _Lit(_number(text))
            case "field":
                if text.startswith("$"):
                    var, _, rest = text.partition(".")
                    if var != "$":
                        raise TemplateSyntaxError(f"template variable {var} is not supported")
                    return _Field(tuple(rest.split(".")) if rest else (), root=True)
                return _Field(tuple(text[1:].split(".")) if text != "." else ())
        if text in ("true", "false"):
            return _Lit(text == "true")
        if text == "nil":
            return _Lit(None)
        if text in _UNSUPPORTED_KEYWORDS or text in ("if", "else", "end"):
            raise TemplateSyntaxError(f"unexpected keyword {text!r} inside an action")
        if text not in self.funcs:
            raise TemplateSyntaxError(f"function {text!r} is not supported")
        return _Func(text)


def _split(text: str) -> list[tuple[bool, str]]:
    """(is_action, text) pieces, with `{{-`/`-}}` whitespace trimming applied and comments dropped."""
    parts: list[tuple[bool, str]] = []
    i = 0
    trim_next = False
    while True:
        j = text.find("{{", i)
        chunk = text[i:] if j < 0 else text[i:j]
        if trim_next:
            chunk = chunk.lstrip(" \t\r\n")
        if j < 0:
            parts.append((False, chunk))
            return parts
        body_start = j + 2
        if text.startswith("- ", body_start) or text.startswith("-\t", body_start) or \
                text.startswith("-\n", body_start):
            chunk = chunk.rstrip(" \t\r\n")
            body_start += 1
        parts.append((False, chunk))
        k = text.find("}}", body_start)
        if text[body_start:].lstrip().startswith("/*"):
            end = text.find("*/", body_start)
            if end < 0:
                raise TemplateSyntaxError("unclosed comment")
            k = text.find("}}", end)
        if k < 0:
            raise TemplateSyntaxError("unclosed action")
        body_end = k
        trim_next = False
        if text[k - 1] == "-" and text[k - 2] in " \t\n":
            body_end = k - 1
            trim_next = True
        body = text[body_start:body_end].strip()
        if not body.startswith("/*"):
            parts.append((True, body))
        i = k + 2


class Template:
    """A compiled template: `execute(data)` gives its text."""

    def __init__(self, source: str, nodes: tuple[Any, ...], funcs: dict[str, Callable[..., Any]]) -> None:
        self.source, self.nodes, self.funcs = source, nodes, funcs

    def execute(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.nodes, data, out)
        return "".join(out)

    def _run(self, nodes: Sequence[Any], data: Any, out: list[str]) -> None:
        for n in nodes:
            if isinstance(n, str):
                out.append(n)
            elif isinstance(n, _If):
                self._run(n.then if _truth(self._pipe(n.cond, data)) else n.other, data, out)
            else:
                out.append(_show(self._pipe(n, data)))

    def _pipe(self, p: _Pipe, data: Any) -> Any:
        value: Any = _MISSING
        for cmd in p.cmds:
            args = list(cmd[1:]) if value is _MISSING else [*cmd[1:], _Lit(value)]
            value = self._command(cmd[0], args, data)
        return value

    def _command(self, head: Any, args: list[Any], data: Any) -> Any:
        if isinstance(head, _Func):
            vals = [self._arg(a, data) for a in args]
            try:
                return self.funcs[head.name](*vals)
            except TemplateExecError:
                raise
            except (TypeError, ValueError, IndexError, KeyError, OverflowError) as err:
                raise TemplateExecError(f"error calling {head.name}: {err}") from err
        if isinstance(head, _Field) and head.path and callable(_field(data, head, method=True)):
            method = _field(data, head, method=True)
            return method(*(self._arg(a, data) for a in args))
        if args:
            raise TemplateExecError(f"can't give argument to non-function {_describe(head)}")
        return self._arg(head, data)

    def _arg(self, a: Any, data: Any) -> Any:
        if isinstance(a, _Lit):
            return a.value
        if isinstance(a, _Pipe):
            return self._pipe(a, data)
        if isinstance(a, _Field):
            v = _field(data, a)
            if callable(v):
                return v()
            return v
        raise TemplateExecError(f"function {_describe(a)} used as a value")


_MISSING = object()


def _describe(op: Any) -> str:
    if isinstance(op, _Field):
        return ("$" if op.root else "") + "." + ".".join(op.path)
    if isinstance(op, _Func):
        return op.name
    return repr(op)


def _field(data: Any, f: _Field, method: bool = False) -> Any:
    v = data
    for i, name in enumerate(f.path):
        if isinstance(v, GoStruct):
            if name not in v:
                raise TemplateExecError(f"can't evaluate field {name} in type {type(v).__name__}")
            v = v[name]
        elif isinstance(v, dict):
            v = v.get(name, NO_VALUE)
        elif v is None or v is NO_VALUE:
            raise TemplateExecError(f"nil pointer evaluating .{'.'.join(f.path[:i + 1])}")
        else:
            raise TemplateExecError(f"can't evaluate field {name} in {_show(v)!r}")
        if callable(v) and not method and i < len(f.path) - 1:
            v = v()
    return v


def _show(v: Any) -> str:
    """fmt's %v."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    if isinstance(v, GoStruct):
        return v.text
    if isinstance(v, dict):
        return "map[" + " ".join(f"{_show(k)}:{_show(x)}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_show(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v) if v != int(v) else str(int(v))
    return str(v)


def _truth(v: Any) -> bool:
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, GoStruct):
        return True
    return bool(v)


# -- functions ----------------------------------------------------------------------------------------


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(item, dict) and not isinstance(item, GoStruct):
            item = item.get(k, "")
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateExecError(f"cannot index slice/array with type {type(k).__name__}")
            if not 0 <= k < len(item):
                raise TemplateExecError(f"index out of range: {k}")
            item = item[k] if not isinstance(item, str) else ord(item[k])
        else:
            raise TemplateExecError(f"can't index item of type {type(item).__name__}")
    return item


def _len(item: Any) -> int:
    if isinstance(item, (str, list, tuple, dict)):
        return len(item)
    raise TemplateExecError(f"len of type {type(item).__name__}")


def parse_uint(s: Any, base: Any, bits: Any) -> int:
    """strconv.ParseUint."""
    if not isinstance(s, str) or not isinstance(base, int) or not isinstance(bits, int):
        raise TemplateExecError("wrong type for value; expected string, int, int")
    bits = bits or 64
    text = s
    if base == 0:
        low = s.lower()
        base, text = (16, s[2:]) if low.startswith("0x") else (2, s[2:]) if low.startswith("0b") else \
            (8, s[2:]) if low.startswith("0o") else (8, s[1:]) if s.startswith("0") and len(s) > 1 else (10, s)
        text = text.replace("_", "")
    if not 2 <= base <= 36:
        raise TemplateExecError(f'strconv.ParseUint: parsing "{s}": invalid base {base}')
    if not text or not all(c.isalnum() and c.isascii() for c in text):
        raise TemplateExecError(f'strconv.ParseUint: parsing "{s}": invalid syntax')
    try:
        v = int(text, base)
    except ValueError:
        raise TemplateExecError(f'strconv.ParseUint: parsing "{s}": invalid syntax') from None
    if v >= 1 << bits:
        raise TemplateExecError(f'strconv.ParseUint: parsing "{s}": value out of range')
    return v


def _sprint(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_show(a))
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _sprintf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            return "%"
        try:
            a = next(it)
        except StopIteration:
            return f"%!{verb}(MISSING)"
        spec = flags + (width or "") + (f".{prec}" if prec else "")
        if verb in "dxXob" and isinstance(a, int):
            return format(a, spec + verb)
        if verb in "feEgG" and isinstance(a, (int, float)):
            return format(float(a), spec + verb)
        if verb == "q" and isinstance(a, str):
            return format('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"', spec)
        if verb in "xX" and isinstance(a, str):
            return format(a.encode().hex() if verb == "x" else a.encode().hex().upper(), spec)
        if verb in "sv":
            return format(_show(a), spec.replace("0", "") if verb == "s" else spec)
        raise TemplateExecError(f"printf verb %{verb} for {_show(a)!r} is not supported")

    out = _VERB.sub(one, fmt)
    extra = list(it)
    if extra:
        out += "%!(EXTRA " + ", ".join(_show(x) for x in extra) + ")"
    return out


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def f(a: Any, b: Any) -> bool:
        if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
            raise TemplateExecError("incompatible types for comparison")
        return op(a, b)
    return f


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise TemplateExecError("missing argument for comparison")
    return any(_cmp(lambda x, y: x == y)(a, b) for b in bs)


def _and(*args: Any) -> Any:
    for a in args:
        if not _truth(a):
            return a
    return args[-1]


def _or(*args: Any) -> Any:
    for a in args:
        if _truth(a):
            return a
    return args[-1]


FUNCS: dict[str, Callable[..., Any]] = {
    "index": _index, "len": _len, "parseInt": parse_uint,
    "print": _sprint, "printf": _sprintf, "println": lambda *a: " ".join(_show(x) for x in a) + "\n",
    "eq": _eq, "ne": lambda a, b: not _eq(a, b),
    "lt": _cmp(lambda a, b: a < b), "le": _cmp(lambda a, b: a <= b),
    "gt": _cmp(lambda a, b: a > b), "ge": _cmp(lambda a, b: a >= b),
    "and": _and, "or": _or, "not": lambda a: not _truth(a),
}


_Frame = tuple[list[Any], _Pipe, "list[Any] | None", bool]   # (outer, cond, then once in else, else-if)


def _build(pieces: list[tuple[bool, str]], funcs: dict[str, Callable[..., Any]]) -> tuple[Any, ...]:
    """Nest `if`/`else`/`else if`/`end` into a tree."""
    stack: list[_Frame] = []
    cur: list[Any] = []
    for is_action, text in pieces:
        if not is_action:
            if text:
                cur.append(text)
            continue
        toks = _tokens(text)
        if not toks:
            raise TemplateSyntaxError("missing value for command")
        kind, word = toks[0]
        if kind == "ident" and word in _UNSUPPORTED_KEYWORDS:
            raise TemplateSyntaxError(f"{{{{{word}}}}} is not supported")
        if kind == "ident" and word == "if":
            stack.append((cur, _Parser(toks[1:], funcs).pipe(), None, False))
            cur = []
        elif kind == "ident" and word == "else":
            if not stack or stack[-1][2] is not None:
                raise TemplateSyntaxError("unexpected {{else}}")
            outer, cond, _, chained = stack.pop()
            stack.append((outer, cond, cur, chained))
            cur = []
            if len(toks) > 1:
                if toks[1] != ("ident", "if"):
                    raise TemplateSyntaxError(f"{{{{else {toks[1][1]}}}}} is not supported")
                # `else if X` is `else` holding an `if X` that ends at the same {{end}}
                stack.append((cur, _Parser(toks[2:], funcs).pipe(), None, True))
                cur = []
        elif kind == "ident" and word == "end":
            if len(toks) > 1 or not stack:
                raise TemplateSyntaxError("unexpected {{end}}")
            while True:
                outer, cond, then, chained = stack.pop()
                outer.append(_If(cond, tuple(cur), ()) if then is None else _If(cond, tuple(then), tuple(cur)))
                cur = outer
                if not chained:
                    break
        else:
            cur.append(_Parser(toks, funcs).pipe())
    if stack:
        raise TemplateSyntaxError("unexpected EOF: an {{if}} without {{end}}")
    return tuple(cur)


def compile_template(text: str, funcs: dict[str, Callable[..., Any]] | None = None) -> Template:
    table = {**FUNCS, **(funcs or {})}
    return Template(text, _build(_split(text), table), table)
