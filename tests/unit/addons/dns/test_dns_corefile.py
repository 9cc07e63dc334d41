"""Corefile parser: good and bad inputs (spec dns.md C1-C10, O13)."""

from __future__ import annotations

import pytest

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import ServerKey, parse_corefile, parse_key
from pyk3s.addons.dns.errors import CorefileError

K3S = """.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    hosts /etc/coredns/NodeHosts {
      ttl 60
      reload 15s
      fallthrough
    }
    prometheus :9153
    cache 30
    loop
    reload
    loadbalance
    import /nonexistent-pk/custom/*.override
    forward . 127.0.0.1:5399
}
import /nonexistent-pk/custom/*.server
"""


def test_k3s_default_corefile_parses_and_orders_chain() -> None:
    blocks = parse_corefile(K3S, "/etc/coredns/Corefile")
    assert len(blocks) == 1
    b = blocks[0]
    assert b.keys == (ServerKey("dns", ".", 53),)
    names = [d.name for d in b.directives]
    assert names[:3] == ["errors", "health", "ready"]
    kube = next(d for d in b.directives if d.name == "kubernetes")
    assert kube.args == ("cluster.local", "in-addr.arpa", "ip6.arpa")
    assert [(s.name, s.args) for s in kube.block] == [("pods", ("insecure",)),
                                                      ("fallthrough", ("in-addr.arpa", "ip6.arpa"))]
    built = build_blocks(blocks, "/etc/coredns/Corefile")
    chain = [p.name for p in built[0].plugins]
    # plugin.cfg order, whatever the file says (K7)
    assert chain == ["reload", "ready", "health", "prometheus", "errors", "loadbalance", "cache", "hosts",
                     "kubernetes", "loop", "forward"]


@pytest.mark.parametrize("key,expected", [
    (".:53", [ServerKey("dns", ".", 53)]),
    ("cluster.local:5353", [ServerKey("dns", "cluster.local.", 5353)]),
    ("dns://Example.ORG", [ServerKey("dns", "example.org.", 53)]),
    ("tls://example.org", [ServerKey("tls", "example.org.", 853)]),
    ("10.0.0.0/24", [ServerKey("dns", "0.0.10.in-addr.arpa.", 53)]),
    ("10.0.0.0/23", [ServerKey("dns", "0.0.10.in-addr.arpa.", 53), ServerKey("dns", "1.0.10.in-addr.arpa.", 53)]),
], ids=lambda x: str(x)[:30])
def test_server_keys(key: str, expected: list[ServerKey]) -> None:
    assert parse_key(key) == expected


def test_quotes_comments_env_and_multikey(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PK_ZONE", "example.org")
    monkeypatch.setenv("PK_TTL", "60")
    src = '# comment\nexample.com, {$PK_ZONE}:1053 {  # trailing\n  hosts {\n    10.0.0.1 "a b"#c\n    ttl {%PK_TTL%}\n  }\n}\n'
    (b,) = parse_corefile(src, "Corefile")
    assert [k.zone for k in b.keys] == ["example.com.", "example.org."]
    assert b.keys[1].port == 1053
    hosts = b.directives[0]
    assert [(s.name, s.args) for s in hosts.block] == [("10.0.0.1", ("a b",)), ("ttl", ("60",))]


def test_block_without_braces_and_brace_on_next_line() -> None:
    (b,) = parse_corefile("example.org\nwhoami\n", "Corefile")
    assert b.directives[0].name == "whoami"
    (b,) = parse_corefile("example.org\n{\n whoami\n}\n", "Corefile")
    assert b.directives[0].name == "whoami"


def test_snippets_and_import_globs(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "a.override").write_text("log\n")
    (tmp_path / "b.server").write_text("other.org:1053 {\n  whoami\n}\n")
    src = "(common) {\n  errors\n  cache 5\n}\n.:1053 {\n  import common\n  import *.override\n}\nimport *.server\n"
    path = tmp_path / "Corefile"
    blocks = parse_corefile(src, str(path))
    assert [d.name for d in blocks[0].directives] == ["errors", "cache", "log"]
    assert blocks[1].keys[0].zone == "other.org."


@pytest.mark.parametrize("src,needle", [
    (".:53 {\n  errors\n", "unexpected end of file"),
    (".:53 {\n  errors\n}\n}\n", "unexpected '}'"),
    (".:53 {\n  nosuchplugin\n}\n", "Corefile:2 - Error during parsing: Unknown directive 'nosuchplugin'"),
    (".:53 {\n  kubernetes cluster.local {\n    pods maybe\n  }\n}\n", "plugin/kubernetes: Corefile:3"),
    (".:53 {\n  kubernetes cluster.local {\n    ttl 4000\n  }\n}\n", "between 0 and 3600"),
    (".:53 {\n  kubernetes cluster.local {\n    bogus\n  }\n}\n", "unknown property 'bogus'"),
    (".:53 {\n  cache 30\n  cache 10\n}\n", "only be used once per Server Block"),
    (".:53 {\n whoami\n}\n.:53 {\n whoami\n}\n", "already defined"),
    (".:53 {\n  import /nonexistent-pk/file\n}\n", "File to import not found"),
    ("(s) {\n import s\n}\n.:53 {\n import s\n}\n", "too many imports"),
    ('.:53 {\n  hosts "unterminated\n}\n', "unterminated quoted string"),
    (".:53 {\n  reload 1s\n}\n", "greater or equal to 2s"),
    (".:53 {\n  reload 5s3\n}\n", "plugin/reload: Corefile:2 - Error during parsing: invalid duration '5s3' (missing unit)"),
    (".:53 {\n  reload 1.5.3s\n}\n", "invalid duration '1.5.3s'"),
    (".:53 {\n  forward .\n}\n", "forward needs FROM and at least one TO"),
    (".:53 {\n  forward . not-an-ip\n}\n", "not an IP address or file"),
    (".:53 {\n  cache {\n    prefetch 10 1m 10\n  }\n}\n", "percentage"),
    (".:53 {\n  rewrite name regex ( x\n}\n", "invalid regex"),
    ("bad:port:x {\n whoami\n}\n", "Error during parsing"),
], ids=lambda x: x if len(x) < 40 else x[:40])
def test_bad_corefiles_name_file_line_and_directive(src: str, needle: str) -> None:
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(src, "Corefile"), "Corefile")
    assert needle in str(ei.value)
