"""Go regular expressions for middleware options, as Traefik compiles them with Go's ``regexp``.

Traefik's regex options (replacePathRegex, redirectRegex, stripPrefixRegex, the headers middleware's
accessControlAllowOriginListRegex, forwardAuth's authResponseHeadersRegex) are Go RE2 syntax, which is
not Python's: RE2 takes an inline flag anywhere (``^(?i)/api``), has no backreferences or lookaround,
and knows ``\\pL``-style classes. Patterns are compiled by RE2 itself (google-re2), so what Traefik
accepts is accepted and what it refuses is refused with RE2's message.

Replacement follows Go's ``Regexp.ReplaceAllString``: ``$1``, ``${1}``, ``$name``, ``${name}`` and
``$$``; a name is the longest run of letters, digits and ``_`` (``$1x`` is the group named ``1x``); an
unknown or unmatched group expands to nothing; and an empty match right after a previous match is not
replaced (Go differs from Python's ``re.sub`` there).
"""

from __future__ import annotations

import re

import re2

__all__ = ["GoRegexp", "GoRegexpError", "compile_go", "go_expand"]


class GoRegexpError(ValueError):
    """A pattern RE2 refuses; the message is RE2's."""


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False          # the error is raised (and reported by the caller), not logged by RE2

_EXPAND = re.compile(r"\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")   # Go: ASCII letters, digits, _


class GoRegexp:
    __slots__ = ("pattern", "_rx")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        try:
            self._rx = re2.compile(pattern, _OPTIONS)
        except re2.error as err:
            message = err.args[0].decode(errors="replace") if err.args and isinstance(err.args[0], bytes) else str(err)
            raise GoRegexpError(f"error parsing regexp: {message}: `{pattern}`") from None

    def search(self, text: str, pos: int = 0) -> re2._Match | None:
        return self._rx.search(text, pos)

    def prefix(self, text: str) -> str | None:
        """The match when it starts at the beginning of ``text`` (Go: FindStringIndex with loc[0] == 0)."""
        m = self._rx.search(text)
        return m.group(0) if m is not None and m.start() == 0 else None

    def replace_all(self, text: str, template: str) -> str:
        """Go's ``ReplaceAllString(text, template)``."""
        out: list[str] = []
        last_end = 0
        pos = 0
        while pos <= len(text):
            m = self._rx.search(text, pos)
            if m is None:
                break
            start, end = m.span()
            out.append(text[last_end:start])
            # no replacement for an empty match right after another match
            if end > last_end or start == 0:
                out.append(go_expand(template, m))
            last_end = end
            pos = pos + 1 if pos + 1 > end else end       # always advance at least one character
        out.append(text[last_end:])
        return "".join(out)


def compile_go(pattern: str) -> GoRegexp:
    return GoRegexp(pattern)


def go_expand(template: str, m: re2._Match) -> str:
    """Go ``Regexp.Expand``: $1, ${1}, $name, ${name}; $$ is a dollar; unknown groups expand to ''."""
    def one(x: re.Match[str]) -> str:
        if x.group(1) == "$":
            return "$"
        name = x.group(2) or x.group(3)
        try:
            value = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, KeyError):
            return ""
        return value or ""

    return _EXPAND.sub(one, template)
