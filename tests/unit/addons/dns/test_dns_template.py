"""template: CoreDNS plugin/template's README examples and test cases, on a real server queried over UDP."""

from __future__ import annotations

import dns.flags
import dns.rcode
import pytest
from dns_support import rrs

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.plugins.template.gotmpl import (
    GoStruct,
    TemplateExecError,
    TemplateSyntaxError,
    compile_template,
)

IP_TEMPLATES = r"""
template IN A example {
  match "^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$"
  answer "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
  fallthrough
}
template IN MX example {
  match ^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$
  answer "{{ .Name }} 60 MX 10 {{ .Name }}"
  additional "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
  authority  "example. 60 IN NS ns0.example."
  fallthrough
}
template IN PTR in-addr.arpa {
  match ^(?P<d>[0-9]*)[.](?P<c>[0-9]*)[.](?P<b>[0-9]*)[.](?P<a>[0-9]*)[.]in-addr[.]arpa[.]$
  answer "{{ .Name }} 60 IN PTR ip-{{ .Group.a }}-{{ .Group.b }}-{{ .Group.c }}-{{ .Group.d }}.example."
}
template ANY ANY invalid {
  rcode NXDOMAIN
  authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"
}
template IN A hex.test {
  match "^ip0a(?P<b>[a-f0-9]{2})(?P<c>[a-f0-9]{2})(?P<d>[a-f0-9]{2})[.]hex[.]test[.]$"
  answer "{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.{{ parseInt .Group.c 16 8 }}.{{ parseInt .Group.d 16 8 }}"
}
template IN TXT txt.test {
  match "^(a)-(b)[.]txt[.]test[.]$" "^(?P<x>q)[.]txt[.]test[.]$"
  answer "{{ .Name }} 60 IN TXT \"{{ index .Match 2 }} {{ .Zone }} {{ .Type }} {{ .Remote }}\""
}
template IN TXT broken.test {
  match "^(a)[.]broken[.]test[.]$"
  answer "{{ .Name }} 60 IN TXT \"{{ index .Match 2 }}\""
}
template IN TXT notrr.test {
  answer "{{ .Name }}"
}
template IN TXT badint.test {
  answer "{{ .Name }} 60 IN TXT \"{{ parseInt \"gg\" 16 8 }}\""
}
template IN A fail.test {
  rcode SERVFAIL
}
template IN ANY foogle.test {
  match "^foogle[.]test[.]$"
  answer "foogle.test 60 IN CNAME web.target.test"
}
hosts {
  10.99.7.7 web.target.test
  fallthrough
}
"""


@pytest.fixture
async def tmpl(make_dns):  # noqa: ANN001, ANN201
    return await make_dns(body=IP_TEMPLATES, load=False)


async def test_named_groups_answer_authoritatively(tmpl) -> None:  # noqa: ANN001
    r = await tmpl.q("ip-10-95-12-8.example", "A")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert rrs(r) == {"ip-10-95-12-8.example. A 10.95.12.8"}
    assert r.answer[0].ttl == 60


async def test_mx_with_additional_and_authority(tmpl) -> None:  # noqa: ANN001
    r = await tmpl.q("ip-10-95-12-8.example", "MX")
    assert rrs(r) == {"ip-10-95-12-8.example. MX 10 ip-10-95-12-8.example."}
    assert rrs(r, "additional") == {"ip-10-95-12-8.example. A 10.95.12.8"}
    assert rrs(r, "authority") == {"example. NS ns0.example."}


async def test_ptr_from_reverse_name(tmpl) -> None:  # noqa: ANN001
    r = await tmpl.q("8.12.95.10.in-addr.arpa", "PTR")
    assert rrs(r) == {"8.12.95.10.in-addr.arpa. PTR ip-10-95-12-8.example."}


async def test_nxdomain_with_templated_soa_for_any_type(tmpl) -> None:  # noqa: ANN001
    for qtype in ("A", "TXT", "MX"):
        r = await tmpl.q("test.invalid", qtype)
        assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
        assert rrs(r, "authority") == {"invalid. SOA ns.invalid. hostmaster.invalid. 1 60 60 60 60"}


async def test_parse_int_hex(tmpl) -> None:  # noqa: ANN001
    r = await tmpl.q("ip0a5f0c09.hex.test", "A")
    assert rrs(r) == {"ip0a5f0c09.hex.test. A 10.95.12.9"}


async def test_match_index_zone_type_remote(tmpl) -> None:  # noqa: ANN001
    r = await tmpl.q("a-b.txt.test", "TXT")
    assert rrs(r) == {'a-b.txt.test. TXT "b txt.test. txt 127.0.0.1"'}    # rrs() lower-cases


async def test_first_matching_regex_wins_and_missing_index_fails(tmpl) -> None:  # noqa: ANN001
    # the second regex matches; it has one group, so `index .Match 2` is out of range: SERVFAIL
    r = await tmpl.q("q.txt.test", "TXT")
    assert r.rcode() == dns.rcode.SERVFAIL


async def test_type_mismatch_falls_to_next_plugin_and_no_match_without_fallthrough_is_servfail(tmpl) -> None:  # noqa: ANN001
    r = await tmpl.q("other.txt.test", "TXT")          # zone matches, no regex, no fallthrough
    assert r.rcode() == dns.rcode.SERVFAIL
    r = await tmpl.q("something.example", "A")         # no regex match, fallthrough to hosts: unknown
    assert r.rcode() != dns.rcode.NOERROR or not r.answer
    r = await tmpl.q("web.target.test", "A")           # no template zone: hosts answers
    assert rrs(r) == {"web.target.test. A 10.99.7.7"}


@pytest.mark.parametrize("name", ["a.broken.test", "x.notrr.test", "x.badint.test"])
async def test_template_errors_are_servfail_and_counted(tmpl, name: str) -> None:  # noqa: ANN001
    r = await tmpl.q(name, "TXT")
    assert r.rcode() == dns.rcode.SERVFAIL
    counters = tmpl.runtime.metrics.counters
    failures = sum(counters.get("coredns_template_template_failures_total", {}).values()) + \
        sum(counters.get("coredns_template_rr_failures_total", {}).values())
    assert failures >= 1


async def test_rcode_servfail(tmpl) -> None:  # noqa: ANN001
    r = await tmpl.q("x.fail.test", "A")
    assert r.rcode() == dns.rcode.SERVFAIL and not r.answer


async def test_cname_target_resolved_through_the_chain(tmpl) -> None:  # noqa: ANN001
    r = await tmpl.q("foogle.test", "A")
    assert rrs(r) == {"foogle.test. CNAME web.target.test.", "web.target.test. A 10.99.7.7"}
    r = await tmpl.q("foogle.test", "TXT")            # only A/AAAA questions chase the target
    assert rrs(r) == {"foogle.test. CNAME web.target.test."}


async def test_matches_are_counted(tmpl) -> None:  # noqa: ANN001
    await tmpl.q("ip-10-1-2-3.example", "A")
    counted = tmpl.runtime.metrics.counters["coredns_template_matches_total"]
    assert any(dict(k)["zone"] == "example." and dict(k)["type"] == "A" for k in counted)


async def test_default_zone_is_the_server_block_and_catches_everything(make_dns) -> None:  # noqa: ANN001
    h = await make_dns(body="template ANY ANY {\n  rcode NXDOMAIN\n}\n", load=False)
    r = await h.q("anything.at.all", "AAAA")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA


@pytest.mark.parametrize("body,needle", [
    ("template\n", "needs CLASS and TYPE"),
    ("template ANY\n", "needs CLASS and TYPE"),
    ("template X ANY\n", "invalid query class X"),
    ("template ANY X\n", "invalid RR class X"),
    ("template CH TXT\n", "class CH is not supported"),
    ("template ANY ANY {\n  match\n}\n", "match needs a regex"),
    ("template ANY ANY {\n  match (?P<x>\n}\n", "could not parse regex"),
    ("template ANY ANY {\n  match [[:alpha:]]\n}\n", "POSIX character classes"),
    ("template ANY ANY {\n  answer \"{{ .Name\"\n}\n", "could not compile template"),
    ("template ANY ANY {\n  answer \"{{ range .Match }}{{ end }}\"\n}\n", "{{range}} is not supported"),
    ("template ANY ANY {\n  answer \"{{ html .Name }}\"\n}\n", "function 'html' is not supported"),
    ("template ANY ANY {\n  answer \"{{ .Nope }}\"\n}\n", "no field .Nope"),
    ("template ANY ANY {\n  rcode NOPE\n}\n", "unknown rcode NOPE"),
    ("template ANY ANY {\n  var ip group('ip')\n}\n", "var is not supported"),
    ("template ANY ANY {\n  expr \"true\"\n}\n", "expr is not supported"),
    ("template ANY ANY invalid {\n  ederror 21 \"Blocked\"\n}\n", "ederror is not supported"),
    ("template ANY ANY {\n  bogus\n}\n", "unknown property 'bogus'"),
], ids=lambda x: x if len(x) < 40 else x[:40])
def test_setup_errors_name_file_line(body: str, needle: str) -> None:
    src = ".:53 {\n" + body + "}\n"
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(src, "Corefile"), "Corefile")
    assert needle in str(ei.value)
    assert "plugin/template: Corefile:" in str(ei.value)


def test_go_template_subset() -> None:
    data = GoStruct({"Name": "x.example.", "Class": "IN", "Match": ["a", "b"], "Group": {"g": "v"}})
    run = lambda t: compile_template(t).execute(data)  # noqa: E731
    assert run("{{ .Group.g }} {{ .Group.missing }} {{ index .Group \"missing\" }}.") == "v <no value> ."
    assert run("{{if eq .Class \"CH\"}}ch{{else if eq .Class \"IN\"}}in{{else}}other{{end}}") == "in"
    assert run("a  {{- /* note */ -}}  b") == "ab"
    assert run('{{ printf "%02x-%s" 10 .Class }} {{ .Name | len }} {{ $.Class }} {{ len .Match }}') == "0a-IN 10 IN 2"
    assert run("{{ parseInt \"0x1f\" 0 8 }} {{ parseInt \"377\" 8 16 }}") == "31 255"
    for bad in ("{{ parseInt \"256\" 10 8 }}", "{{ index .Match 2 }}", "{{ .Nope }}"):
        with pytest.raises(TemplateExecError):
            run(bad)
    for unsupported in ("{{ $x := 1 }}", "{{ with .Name }}{{ end }}", "{{ if 1 }}", "{{ call .Name }}"):
        with pytest.raises(TemplateSyntaxError):
            compile_template(unsupported)


async def test_override_beside_kubernetes(make_dns) -> None:  # noqa: ANN001
    from dns_support import DEFAULT_BODY
    body = DEFAULT_BODY + (
        'template IN TXT info.test {\n'
        '  answer "{{ .Name }} 5 IN TXT \\"{{ .Question.Name }} {{ .Message.Id }} {{ .Message.RecursionDesired }}\\""\n'
        '}\n')
    h = await make_dns(body=body)
    assert rrs(await h.q("web.apps.svc.cluster.local", "A")) == {"web.apps.svc.cluster.local. A 10.43.1.10"}
    r = await h.q("x.info.test", "TXT")
    assert rrs(r) == {f'x.info.test. TXT "x.info.test. {r.id} true"'}


def test_go_regex_syntax() -> None:
    from pyk3s.addons.dns.plugins.template import go_regex
    assert go_regex(r"^(?<a>[0-9]+)\.x\z") == r"^(?P<a>[0-9]+)\.x\Z"
    assert go_regex(r"^(?P<a>\\p)$") == r"^(?P<a>\\p)$"          # an escaped backslash, then p
    for unsupported in (r"[[:alpha:]]+", r"[a[:digit:]]", r"\pL", r"\p{Greek}", r"\Q.\E", r"(?U)a+"):
        with pytest.raises(ValueError):
            go_regex(unsupported)
