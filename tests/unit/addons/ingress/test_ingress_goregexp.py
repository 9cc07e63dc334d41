"""Go regexp semantics for middleware options: RE2 syntax (compiled by RE2) and ReplaceAllString.

Cases from Go's regexp documentation (syntax: https://golang.org/s/re2syntax; ReplaceAllString's
examples) and Traefik's use of them."""

from __future__ import annotations

import pytest

from pyk3s.addons.ingress.config.goregexp import GoRegexpError, compile_go


@pytest.mark.parametrize(("pattern", "text", "match"), [
    (r"^(?i)/api", "/API/x", "/API"),                  # an inline flag after ^ (Python's re refuses it)
    (r"^/foo/(?P<id>[a-z0-9]+)", "/foo/ab1/x", "/foo/ab1"),
    (r"\pL+", "héllo1", "héllo"),                      # Unicode class
    (r"^/a(?:b|c)+$", "/abcb", "/abcb"),
    (r"(?s)a.b", "a\nb", "a\nb"),
    (r"x*", "abc", ""),
], ids=["inline-flag-after-caret", "named-group", "unicode-class", "non-capturing", "dot-nl-flag", "empty"])
def test_re2_syntax_matches(pattern: str, text: str, match: str) -> None:
    m = compile_go(pattern).search(text)
    assert m is not None and m.group(0) == match


@pytest.mark.parametrize(("pattern", "message"), [
    (r"(a)\1", "invalid escape sequence"),             # no backreferences in RE2
    (r"(?=x)", "invalid perl operator"),               # no lookahead
    (r"(?<!x)y", "invalid perl operator"),             # no lookbehind
    (r"[", "missing ]"),
    (r"a{1001}", "invalid repetition size"),          # RE2 repeats at most 1000 times
], ids=["backreference", "lookahead", "lookbehind", "unclosed-class", "repeat-limit"])
def test_re2_refuses_what_go_refuses(pattern: str, message: str) -> None:
    with pytest.raises(GoRegexpError, match=message) as err:
        compile_go(pattern)
    assert str(err.value).startswith("error parsing regexp: ")


@pytest.mark.parametrize(("pattern", "template", "want"), [
    (r"a(x*)b", "T", "-T-T-"),
    (r"a(x*)b", "$1", "--xx-"),
    (r"a(x*)b", "$1W", "---"),                         # $1W names the group "1W", which does not exist
    (r"a(x*)b", "${1}W", "-W-xxW-"),
    (r"a(?P<1W>x*)b", "$1W", "--xx-"),
    (r"a(?P<1W>x*)b", "${1}W", "-W-xxW-"),
    (r"a(x*)b", "$$1", "-$1-$1-"),
    (r"a(x*)b", "$-", "-$--$--"),                      # malformed: the $ stays
    (r"a*", "-", "-b-c-"),                             # no replacement for an empty match after a match
], ids=["literal", "index", "name-1W", "braced", "named-1W", "named-braced", "dollar", "malformed", "empty-after-match"])
def test_replace_all_as_go(pattern: str, template: str, want: str) -> None:
    text = "baac" if pattern == "a*" else "-ab-axxb-"
    assert compile_go(pattern).replace_all(text, template) == want


def test_prefix_only_at_the_start() -> None:
    rx = compile_go(r"/foo/[a-z0-9]+/")
    assert rx.prefix("/foo/abc/bar") == "/foo/abc/"
    assert rx.prefix("/x/foo/abc/bar") is None
