"""autopath: CoreDNS plugin/autopath's README and tests (a resolv.conf search path, `@kubernetes` with the
client pod's namespace), on a real server queried over UDP from 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.rcode
import pytest
from dns_support import NAMESPACES, PODS, SERVICES, SLICES, pod, rrs

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.plugins.autopath import AutopathPlugin, read_search

NX = dns.rcode.NXDOMAIN

FILE_BODY = """
autopath my-resolv.conf
hosts {
  10.9.0.2 b.com
  10.9.0.3 a.example.com
}
"""


async def test_search_path_from_a_file(make_dns: Any) -> None:
    h = await make_dns(body=FILE_BODY, load=False, files={"my-resolv.conf": "# x\nsearch example.org example.com com\n"})
    r = await h.q("b.example.org", "A")                  # b.example.org, b.example.com: NXDOMAIN; b.com answers
    assert r.rcode() == dns.rcode.NOERROR
    assert [rr.to_text() for rr in r.answer] == ["b.example.org. 3600 IN CNAME b.com.", "b.com. 3600 IN A 10.9.0.2"]
    assert r.question[0].name.to_text() == "b.example.org."
    r = await h.q("a.example.com", "A")                  # not below the first element: untouched
    assert rrs(r) == {"a.example.com. A 10.9.0.3"}
    r = await h.q("nothing.example.org", "A")            # no answer anywhere: the first reply (the end of the
    assert r.rcode() == dns.rcode.SERVFAIL and not r.answer   # chain after hosts)
    assert r.question[0].name.to_text() == "nothing.example.org."
    r = await h.q("B.Example.ORG", "A")                  # the CNAME owner as asked, the base as asked
    assert r.answer[0].name.to_text() == "B.Example.ORG." and r.answer[0][0].target.to_text().lower() == "b.com."
    counted = h.runtime.metrics.counters["coredns_autopath_success_total"]
    assert counted == {(("server", "dns://:0"),): 2.0}


@pytest.fixture
def host_resolv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "host-resolv.conf"
    f.write_text("nameserver 127.0.0.53\nsearch corp.test\n")
    monkeypatch.setattr(AutopathPlugin, "host_resolv_conf", str(f))


KUBE_BODY = """
autopath @kubernetes
hosts {
  10.9.0.7 www.corp.test
  10.9.0.8 www.example.test
  fallthrough
}
kubernetes cluster.local in-addr.arpa ip6.arpa {
  pods verified
  fallthrough in-addr.arpa ip6.arpa
}
"""


async def test_kubernetes_search_path_of_the_client_pod(make_dns: Any, host_resolv: None) -> None:
    h = await make_dns(body=KUBE_BODY, load=False)
    await h.load(SERVICES, SLICES, [*PODS, pod("apps", "client", "127.0.0.1")], NAMESPACES)
    # the client (a pod in apps) appends its first search domain; kubernetes.default is found on the second
    r = await h.q("kubernetes.default.apps.svc.cluster.local", "A")
    assert [rr.to_text() for rr in r.answer] == [
        "kubernetes.default.apps.svc.cluster.local. 5 IN CNAME kubernetes.default.svc.cluster.local.",
        "kubernetes.default.svc.cluster.local. 5 IN A 10.43.0.1"]
    r = await h.q("web.apps.svc.cluster.local", "A")     # found as asked: no CNAME
    assert rrs(r) == {"web.apps.svc.cluster.local. A 10.43.1.10"}
    r = await h.q("www.apps.svc.cluster.local", "A")     # the host's search domain
    assert rrs(r) == {"www.apps.svc.cluster.local. CNAME www.corp.test.", "www.corp.test. A 10.9.0.7"}
    r = await h.q("www.example.test.apps.svc.cluster.local", "A")      # finally the bare name
    assert rrs(r) == {"www.example.test.apps.svc.cluster.local. CNAME www.example.test.",
                      "www.example.test. A 10.9.0.8"}
    r = await h.q("nope.apps.svc.cluster.local", "A")
    assert r.rcode() == NX
    r = await h.q("apps.svc.cluster.local", "A")          # the first element itself goes on down the chain
    assert r.rcode() == dns.rcode.NOERROR and not r.answer    # (a namespace: NODATA)


async def test_a_search_domain_too_long_for_the_name_is_skipped(make_dns: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "long-resolv.conf"
    f.write_text("search " + ".".join(["d" * 40] * 4) + "\n")
    monkeypatch.setattr(AutopathPlugin, "host_resolv_conf", str(f))
    h = await make_dns(body=KUBE_BODY, load=False)
    await h.load(SERVICES, SLICES, [*PODS, pod("apps", "client", "127.0.0.1")], NAMESPACES)
    base = ".".join(["x" * 30] * 3)                      # base + the host's domain: over 255 bytes
    r = await h.q(base + ".apps.svc.cluster.local", "A")
    assert r.rcode() == NX                                # the first reply, not a failure


async def test_no_autopath_for_clients_that_are_not_known_pods(make_dns: Any, host_resolv: None) -> None:
    h = await make_dns(body=KUBE_BODY, load=False)
    await h.load()                                        # no pod has 127.0.0.1
    r = await h.q("kubernetes.default.apps.svc.cluster.local", "A")
    assert r.rcode() == NX
    assert not h.runtime.config.blocks[0].fast_ok


def test_read_search(tmp_path: Path) -> None:
    f = tmp_path / "r"
    f.write_text("domain one.test\nsearch A.test b.test.\n; search c.test\n")
    assert read_search(str(f)) == ["a.test.", "b.test."]
    f.write_text("search a.test\ndomain One.Test\n")
    assert read_search(str(f)) == ["one.test."]


@pytest.mark.parametrize("body,needle", [
    ("autopath\n", "no resolv-conf specified"),
    ("autopath missing.conf\n", "failed to parse 'missing.conf'"),
    ("autopath empty.conf\n", "'empty.conf' has no search path"),
    ("autopath @kubernetes\n", "@kubernetes: no such plugin in this server block"),
    ("autopath @hosts\nhosts\n", "hosts does not implement the AutoPather interface"),
    ("autopath @kubernetes\nkubernetes cluster.local {\n  pods insecure\n}\n", "needs `pods verified`"),
    ("autopath x.conf {\n  y\n}\n", "unknown property 'y'"),
    ("autopath @kubernetes\nautopath @kubernetes\n", "only be used once per Server Block"),
])
def test_setup_errors_name_file_line(tmp_path: Path, body: str, needle: str) -> None:
    (tmp_path / "empty.conf").write_text("nameserver 10.0.0.1\n")
    corefile = str(tmp_path / "Corefile")
    with pytest.raises(CorefileError) as ei:
        build_blocks(parse_corefile(".:53 {\n" + body + "}\n", corefile), corefile)
    assert needle in str(ei.value) and f"plugin/autopath: {corefile}:" in str(ei.value)
