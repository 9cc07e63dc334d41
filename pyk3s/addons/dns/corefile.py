"""Corefile parser (CoreDNS corefile(5), caddyfile lexer rules; spec dns.md C1-C10, O13).

Rules:
- Tokens split on whitespace; `"..."` groups (only `\\"` escapes); `#` starts a comment outside quotes;
  a leading BOM and `\\r` are ignored.
- `{$NAME}` and `{%NAME%}` are replaced from the environment in every token.
- `import PATTERN` at the start of a line (top level or inside blocks) splices the tokens of a snippet
  `(name) { ... }` or of the files a glob matches (relative to the importing file). A glob matching
  nothing is a warning; a named missing file is an error; more than 10000 imports is an error.
- A server block is one or more keys (comma-continued lines allowed), then `{ directives }`; a lone
  block may omit braces. Inside, one directive per line; `{` at the end of a line opens a nested block.
- Keys are `[SCHEME://]ZONE[:PORT]`, zones normalised to lower-case FQDNs, CIDRs become reverse zones.
"""

from __future__ import annotations

import glob
import ipaddress
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorefileError

__all__ = [
    "Directive",
    "ServerBlock",
    "ServerKey",
    "parse_corefile",
    "parse_key",
    "read_corefile",
    "tokenize",
]

log = logging.getLogger("pyk3s.dns.corefile")

MAX_IMPORTS = 10000
DEFAULT_PORTS = {"dns": 53, "tls": 853, "quic": 853, "grpc": 443, "https": 443, "https3": 443}
_ENV = re.compile(r"\{\$([A-Za-z0-9_]+)\}|\{%([A-Za-z0-9_]+)%\}")


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    file: str
    line: int
    quoted: bool = False

    def is_(self, text: str) -> bool:
        return not self.quoted and self.text == text


@dataclass(frozen=True, slots=True)
class Directive:
    """One directive line: `name args... [{ sub-directives }]`."""

    name: str
    args: tuple[str, ...]
    block: tuple[Directive, ...] = ()
    file: str = ""
    line: int = 0

    def error(self, message: str, plugin: str = "") -> CorefileError:
        return CorefileError(message, file=self.file, line=self.line, directive=plugin or self.name)


@dataclass(frozen=True, slots=True)
class ServerKey:
    scheme: str
    zone: str          # lower-case FQDN
    port: int


@dataclass(frozen=True, slots=True)
class ServerBlock:
    keys: tuple[ServerKey, ...]
    directives: tuple[Directive, ...]
    file: str = ""
    line: int = 0
    raw_keys: tuple[str, ...] = field(default=())

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.zone for k in self.keys))


def _substitute_env(text: str, env: Mapping[str, str]) -> str:
    if "{" not in text:
        return text
    return _ENV.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def tokenize(source: str, file: str, env: Mapping[str, str] | None = None) -> list[Token]:
    """Split Corefile text into tokens with their line numbers (C1, C2, C7)."""
    env = os.environ if env is None else env
    if source.startswith("\ufeff"):
        source = source[1:]
    tokens: list[Token] = []
    i, n, line = 0, len(source), 1
    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v":
            i += 1
        elif c == "#":
            while i < n and source[i] != "\n":
                i += 1
        elif c == '"':
            start_line, buf, i = line, [], i + 1
            while i < n and source[i] != '"':
                if source[i] == "\\" and i + 1 < n and source[i + 1] == '"':
                    buf.append('"')
                    i += 2
                    continue
                if source[i] == "\n":
                    line += 1
                if source[i] != "\r":
                    buf.append(source[i])
                i += 1
            if i >= n:
                raise CorefileError("unterminated quoted string", file=file, line=start_line)
            i += 1
            tokens.append(Token(_substitute_env("".join(buf), env), file, start_line, True))
        else:
            start = i
            while i < n and source[i] not in ' \t\r\n\f\v"' and source[i] != "#":
                i += 1
            tokens.append(Token(_substitute_env(source[start:i], env), file, line))
    return tokens


def _lines(tokens: list[Token]) -> Iterator[list[Token]]:
    cur: list[Token] = []
    for t in tokens:
        if cur and (t.file, t.line) != (cur[-1].file, cur[-1].line):
            yield cur
            cur = []
        cur.append(t)
    if cur:
        yield cur


class _Expander:
    """Expands `import` lines and records snippets, producing a flat token list."""

    def __init__(self, env: Mapping[str, str], skip: frozenset[str] = frozenset(),
                 globbed: set[str] | None = None) -> None:
        self.env = env
        self.skip = skip                                   # real paths an import glob must leave out
        self.globbed = globbed if globbed is not None else set()   # real paths an import glob brought in
        self.snippets: dict[str, list[Token]] = {}
        self.imports = 0
        self.active: list[str] = []

    def file_tokens(self, path: str) -> list[Token]:
        key = "file:" + os.path.realpath(path)
        if key in self.active:
            raise CorefileError(f"too many imports: {path} imports itself", file=path)
        self.active.append(key)
        try:
            return self._file_tokens(path)
        finally:
            self.active.pop()

    def _file_tokens(self, path: str) -> list[Token]:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise CorefileError(f"could not read {path}: {err.strerror}", file=path) from err
        return self.expand(tokenize(text, path, self.env), top=True)

    def expand(self, tokens: list[Token], top: bool) -> list[Token]:
        out: list[Token] = []
        lines = list(_lines(tokens))
        i, depth = 0, 0
        while i < len(lines):
            ln = lines[i]
            first = ln[0]
            if top and depth == 0 and not first.quoted and first.text.startswith("(") and \
                    first.text.endswith(")") and len(first.text) > 2:
                i = self._snippet(lines, i)
                continue
            if first.is_("import"):
                out.extend(self._import(ln))
                i += 1
                continue
            for t in ln:
                if t.is_("{"):
                    depth += 1
                elif t.is_("}"):
                    depth -= 1
            out.extend(ln)
            i += 1
        return out

    def _snippet(self, lines: list[list[Token]], i: int) -> int:
        head = lines[i]
        name = head[0].text[1:-1]
        if name in self.snippets:
            raise CorefileError(f"redeclaration of previously declared snippet {name}",
                              file=head[0].file, line=head[0].line)
        body: list[Token] = []
        depth = 0
        rest = head[1:]
        if not rest or not rest[0].is_("{"):
            raise CorefileError(f"snippet {name} needs a block", file=head[0].file, line=head[0].line)
        flat = rest[1:] + [t for ln in lines[i + 1:] for t in ln]
        consumed = 0
        for t in flat:
            consumed += 1
            if t.is_("{"):
                depth += 1
            elif t.is_("}"):
                if depth == 0:
                    break
                depth -= 1
            body.append(t)
        else:
            raise CorefileError(f"unclosed snippet {name}", file=head[0].file, line=head[0].line)
        self.snippets[name] = body
        # work out how many whole lines were eaten
        remaining = consumed - len(rest[1:])
        j = i + 1
        while remaining > 0 and j < len(lines):
            remaining -= len(lines[j])
            j += 1
        if remaining < 0:
            raise CorefileError("tokens after the closing brace of a snippet", file=head[0].file, line=head[0].line)
        return j

    def _import(self, ln: list[Token]) -> list[Token]:
        first = ln[0]
        if len(ln) != 2:
            raise CorefileError("import takes exactly one argument", file=first.file, line=first.line,
                              directive="import")
        self.imports += 1
        if self.imports > MAX_IMPORTS:
            raise CorefileError("too many imports (recursive import?)", file=first.file, line=first.line,
                              directive="import")
        pattern = ln[1].text
        if pattern in self.snippets:
            if pattern in self.active or len(self.active) > 100:
                raise CorefileError(f"too many imports: snippet {pattern} imports itself", file=first.file,
                                  line=first.line, directive="import")
            self.active.append(pattern)
            try:
                return self.expand(list(self.snippets[pattern]), top=False)
            finally:
                self.active.pop()
        base = os.path.dirname(first.file) if first.file else "."
        path = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
        if "[" in pattern:
            raise CorefileError("glob pattern may not contain [", file=first.file, line=first.line,
                              directive="import")
        if any(c in pattern for c in "*?"):
            if pattern.count("*") + pattern.count("?") > 1:
                raise CorefileError("glob pattern may contain only one wildcard", file=first.file,
                                  line=first.line, directive="import")
            matches = sorted(glob.glob(path))
            if not matches:
                log.warning("[WARNING] No files matching import glob pattern: %s", pattern)
            out: list[Token] = []
            for m in matches:
                real = os.path.realpath(m)
                if real in self.skip:
                    continue
                self.globbed.add(real)
                out.extend(self.file_tokens(m))
            return out
        if not os.path.exists(path):
            raise CorefileError(f"File to import not found: {path}", file=first.file, line=first.line,
                              directive="import")
        return self.file_tokens(path)


class _CorefileParser:
    def __init__(self, tokens: list[Token], default_port: int | None) -> None:
        self.toks = tokens
        self.i = 0
        self.default_port = default_port

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def blocks(self) -> list[ServerBlock]:
        out: list[ServerBlock] = []
        while self.peek() is not None:
            out.append(self.server_block(first=not out))
        return out

    def server_block(self, first: bool) -> ServerBlock:
        keys: list[Token] = []
        start = self.peek()
        assert start is not None
        while True:
            t = self.peek()
            if t is None or t.is_("{"):
                break
            if keys and (t.file, t.line) != (keys[-1].file, keys[-1].line) and not keys[-1].text.endswith(","):
                break
            if t.is_("}"):
                raise CorefileError("unexpected '}'", file=t.file, line=t.line)
            keys.append(self.take())
        raw = [k.text.rstrip(",") for k in keys]
        raw = [p for k in raw for p in k.split(",") if p]
        parsed: list[ServerKey] = []
        for k in raw:
            try:
                parsed.extend(parse_key(k, self.default_port))
            except ValueError as err:
                raise CorefileError(str(err), file=start.file, line=start.line) from err
        t = self.peek()
        if t is not None and t.is_("{"):
            self.take()
            directives = self.directives(closing=True, plugin="")
        else:
            if not first:
                raise CorefileError(f"expected '{{' after server block keys {' '.join(raw)}",
                                  file=start.file, line=start.line)
            directives = self.directives(closing=False, plugin="")
            if self.peek() is not None:
                raise CorefileError("a server block without braces must be the only one",
                                  file=start.file, line=start.line)
        return ServerBlock(tuple(parsed), tuple(directives), start.file, start.line, tuple(raw))

    def directives(self, closing: bool, plugin: str) -> list[Directive]:
        out: list[Directive] = []
        while True:
            t = self.peek()
            if t is None:
                if closing:
                    last = self.toks[-1]
                    raise CorefileError("unexpected end of file, expecting '}'", file=last.file,
                                      line=last.line, directive=plugin)
                return out
            if t.is_("}"):
                if not closing:
                    raise CorefileError("unexpected '}'", file=t.file, line=t.line, directive=plugin)
                self.take()
                return out
            if t.is_("{"):
                raise CorefileError("unexpected '{'", file=t.file, line=t.line, directive=plugin)
            name = self.take()
            args: list[str] = []
            block: list[Directive] = []
            while (nt := self.peek()) is not None and (nt.file, nt.line) == (name.file, name.line):
                if nt.is_("{"):
                    self.take()
                    block = self.directives(closing=True, plugin=plugin or name.text)
                    break
                if nt.is_("}"):
                    break
                args.append(self.take().text)
            out.append(Directive(name.text, tuple(args), tuple(block), name.file, name.line))


def _reverse_zones(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    step = 8 if net.version == 4 else 4
    bits = -(-net.prefixlen // step) * step
    subnets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = \
        [net] if bits == net.prefixlen else list(net.subnets(new_prefix=bits))
    zones = []
    for s in subnets:
        labels = s.network_address.reverse_pointer.split(".")
        drop = (net.max_prefixlen - bits) // step
        zones.append(".".join(labels[drop:]) + ".")
    return zones


def parse_key(key: str, default_port: int | None = None) -> list[ServerKey]:
    """`[SCHEME://]ZONE[:PORT]` to one key (or several for a non-octet CIDR) (C4)."""
    scheme = "dns"
    rest = key
    if "://" in key:
        scheme, rest = key.split("://", 1)
        scheme = scheme.lower()
        if scheme not in DEFAULT_PORTS and scheme != "unix":
            raise ValueError(f"unsupported scheme {scheme!r} in server key {key!r}")
    port = DEFAULT_PORTS.get(scheme, 0)
    if default_port is not None and scheme == "dns":
        port = default_port
    host = rest
    if rest.startswith("["):
        end = rest.find("]")
        host, tail = rest[1:end], rest[end + 1:]
        if tail.startswith(":"):
            port = _port(tail[1:], key)
    elif rest.count(":") == 1:
        host, p = rest.split(":")
        port = _port(p, key)
    if host == "":
        host = "."
    if "/" in host:
        try:
            net = ipaddress.ip_network(host, strict=False)
        except ValueError as err:
            raise ValueError(f"invalid CIDR {host!r} in server key {key!r}") from err
        return [ServerKey(scheme, z, port) for z in _reverse_zones(net)]
    zone = host.lower()
    if not zone.endswith("."):
        zone += "."
    if (".." in zone and zone != ".") or any(c in zone for c in ":/\\@ "):
        raise ValueError(f"invalid zone {host!r} in server key {key!r}")
    return [ServerKey(scheme, zone, port)]


def _port(text: str, key: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"invalid port {text!r} in server key {key!r}")
    return int(text)


def parse_corefile(source: str, file: str = "Corefile", env: Mapping[str, str] | None = None,
                   default_port: int | None = None, skip: frozenset[str] = frozenset(),
                   globbed: set[str] | None = None) -> list[ServerBlock]:
    """Parse Corefile text (imports relative to `file`) into server blocks. Files an import glob matches
    are left out when their real path is in `skip`; the ones brought in are added to `globbed`."""
    exp = _Expander(os.environ if env is None else env, skip, globbed)
    tokens = exp.expand(tokenize(source, file, exp.env), top=True)
    blocks = _CorefileParser(tokens, default_port).blocks()
    seen: dict[tuple[str, str, int], ServerBlock] = {}
    for b in blocks:
        for k in b.keys:
            if (k.scheme, k.zone, k.port) in seen:
                raise CorefileError(f"cannot serve {k.scheme}://{k.zone}:{k.port} - it is already defined",
                                  file=b.file, line=b.line)
            seen[(k.scheme, k.zone, k.port)] = b
    return blocks


def read_corefile(path: str, env: Mapping[str, str] | None = None, default_port: int | None = None,
                  skip: frozenset[str] = frozenset(), globbed: set[str] | None = None) -> list[ServerBlock]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise CorefileError(f"could not read Corefile: {err.strerror}", file=path) from err
    return parse_corefile(text, path, env, default_port, skip, globbed)
