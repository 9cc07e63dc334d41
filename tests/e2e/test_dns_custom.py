"""A broken coredns-custom entry, end to end: the running DNS pod keeps its last good config (as CoreDNS);
after the pod restarts, CoreDNS would crash-loop, pyk3s starts without the broken file, serves the rest
(including the good entries) and reports it as a Warning event on the coredns-custom ConfigMap naming
the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pyk3s_server import NodeAddress, ServerProcess
from test_manifests_dns_recipes import StandInUpstream, lookup

pytestmark = [pytest.mark.e2e]

ALIAS = "alias.pk-custom.cluster.local"
BROKEN = "broken.pk-custom.cluster.local"
CUSTOM = f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: coredns-custom, namespace: kube-system}}
data:
  alias.override: |
    rewrite name {ALIAS} kubernetes.default.svc.cluster.local
  broken.override: |
    # a second hosts plugin in the main server block
    hosts {{
      203.0.113.9 {BROKEN}
    }}
"""


@pytest.fixture(scope="module")
def cluster(kubectl_bin: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb"])
    upstream = None
    try:
        srv.node = NodeAddress.create(srv.ident)  # the stand-in listens where --resolv-conf points
        upstream = StandInUpstream(srv.node.ip)
        srv.start(timeout=60)
        srv.wait_for(lambda: lookup(srv, "kubernetes.default.svc.cluster.local") == srv.nets.kubernetes_ip,
                     timeout=60, what="cluster DNS answering from the coredns pod")
        yield srv
    finally:
        if upstream is not None:
            upstream.close()
        srv.cleanup()


def dns_pods(srv: ServerProcess) -> list[dict]:
    out = srv.kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json").out
    return json.loads(out)["items"]


def events_on(srv: ServerProcess, name: str) -> list[dict]:
    out = srv.kubectl("-n", "kube-system", "get", "events", "--field-selector",
                      f"involvedObject.kind=ConfigMap,involvedObject.name={name}", "-o", "json").out
    return json.loads(out)["items"]


def test_broken_custom_file_after_a_pod_restart(cluster: ServerProcess) -> None:
    srv = cluster
    kube_ip = srv.nets.kubernetes_ip
    srv.kubectl("apply", "-f", "-", input=CUSTOM)
    # the running server rejects the change and keeps serving its last good config
    srv.wait_for(lambda: any(e["reason"] == "ReloadFailed" for e in events_on(srv, "coredns")), timeout=60,
                 what="the reload refused")
    assert lookup(srv, "kubernetes.default.svc.cluster.local") == kube_ip
    # a restart of the pod: CoreDNS would not start now; pyk3s starts without broken.override
    old = {p["metadata"]["uid"] for p in dns_pods(srv)}
    srv.kubectl("-n", "kube-system", "delete", "pod", "-l", "k8s-app=kube-dns", "--wait=false")
    srv.wait_for(lambda: [p for p in dns_pods(srv) if p["metadata"]["uid"] not in old
                          and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])
                          and p["status"].get("containerStatuses")],
                 timeout=90, what="a new coredns pod Ready")
    srv.wait_for(lambda: lookup(srv, ALIAS) == kube_ip, timeout=30, what="the good custom entry served")
    assert lookup(srv, "kubernetes.default.svc.cluster.local") == kube_ip
    assert lookup(srv, BROKEN) != "203.0.113.9"
    skipped = srv.wait_for(lambda: [e for e in events_on(srv, "coredns-custom") if e["reason"] == "CustomFileSkipped"],
                           timeout=30, what="the Warning event on coredns-custom")
    assert skipped[0]["type"] == "Warning"
    assert skipped[0]["message"].startswith("broken.override: line 2: ")
    restarts = [cs.get("restartCount", 0) for p in dns_pods(srv) for cs in p["status"].get("containerStatuses") or []]
    assert restarts and max(restarts) == 0, "the DNS container restarted (crash-loop)"
