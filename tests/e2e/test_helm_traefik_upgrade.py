"""End-to-end: a cluster that ran the plain-object traefik.yaml moves to the HelmChart form on restart.

The plain file pyk3s shipped before (tests/support/plain_traefik.yaml) is applied as the Addon
``traefik``; a restart stages the HelmChart form over it. The same Deployment, Service (uid, cluster IP,
ServiceLB DaemonSet and load balancer address) and CRDs carry on in the Helm releases: no second
Traefik, no port taken twice, nothing pruned, and port 80 answers throughout the upgrade's end state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

PLAIN = Path(__file__).resolve().parents[1] / "support" / "plain_traefik.yaml"


def curl(*args: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-m", str(timeout), *args], capture_output=True, text=True,
                          timeout=timeout + 5)


def ready_pods(srv: ServerProcess) -> list[dict[str, Any]]:
    items = srv.kubectl("get", "pods", "-n", "kube-system", "-l", "app.kubernetes.io/name=traefik",
                        "-o", "json").json()["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])]


def service(srv: ServerProcess) -> dict[str, Any]:
    return srv.kubectl("get", "svc", "-n", "kube-system", "traefik", "-o", "json").json()


def svclb(srv: ServerProcess) -> list[str]:
    return [d["metadata"]["name"] for d in srv.kubectl(
        "get", "ds", "-n", "kube-system", "-l", "svccontroller.k3s.cattle.io/svcname=traefik", "-o",
        "json").json()["items"]]


@pytest.fixture
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    server = ServerProcess(agent=True, extra_args=["--disable", "coredns,traefik"])
    try:
        server.start(timeout=60)
        yield server
    finally:
        server.cleanup()


def test_upgrade_from_the_plain_traefik_yaml(srv: ServerProcess) -> None:
    assert srv.node is not None
    node_ip = srv.node.ip
    # the cluster as the earlier pyk3s left it: traefik.yaml of plain objects, applied by Addon traefik
    (srv.manifests_dir / "traefik.yaml").write_text(PLAIN.read_text())
    srv.wait_for(lambda: len(ready_pods(srv)) == 1, timeout=150, what="the plain Traefik Ready")
    srv.wait_for(lambda: (service(srv)["status"].get("loadBalancer") or {}).get("ingress"), timeout=60,
                 what="the load balancer address")
    srv.wait_for(lambda: curl(f"http://{node_ip}/").stdout == "404 page not found\n", timeout=60,
                 what="port 80 served by the plain Traefik")
    before = service(srv)
    lb_before = svclb(srv)
    srv.kubectl("apply", "-f", "-", input="apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\n"
                                           "metadata: {name: keep-me, namespace: default}\nspec:\n  routes: []\n")

    srv.restart(extra_args=["--disable", "coredns"], timeout=60)  # stages the HelmChart form of traefik.yaml
    assert "kind: HelmChart" in (srv.manifests_dir / "traefik.yaml").read_text()

    def upgraded() -> dict[str, Any] | None:
        dep = srv.kubectl("get", "deploy", "-n", "kube-system", "traefik", "-o", "json").json()
        if dep["metadata"]["labels"].get("helm.sh/chart") != "traefik-37.1.1_up37.1.0":
            return None
        pods = ready_pods(srv)
        if len(pods) != 1 or pods[0]["metadata"]["labels"].get("helm.sh/chart") != "traefik-37.1.1_up37.1.0":
            return None
        return dep
    srv.wait_for(upgraded, timeout=150, interval=1, what="the Helm release's Traefik Ready")
    deployments = srv.kubectl("get", "deploy", "-n", "kube-system", "-o", "json").json()["items"]
    assert [d["metadata"]["name"] for d in deployments] == ["traefik"]
    after = service(srv)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"]["clusterIP"] == before["spec"]["clusterIP"]
    assert after["status"]["loadBalancer"] == before["status"]["loadBalancer"]
    assert after["metadata"]["annotations"]["meta.helm.sh/release-name"] == "traefik"
    assert "objectset.rio.cattle.io/hash" not in after["metadata"].get("labels", {})
    assert svclb(srv) == lb_before
    srv.wait_for(lambda: curl(f"http://{node_ip}/").stdout == "404 page not found\n", timeout=60,
                 what="port 80 served by the Helm release's Traefik")
    # the CRDs stayed (so did the IngressRoute) and now belong to release traefik-crd
    crd = srv.kubectl("get", "crd", "ingressroutes.traefik.io", "-o", "json").json()
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "traefik-crd"
    assert srv.kubectl("get", "ingressroute.traefik.io", "keep-me", check=False).rc == 0
    for name in ("traefik", "traefik-crd"):
        status = srv.kubectl("get", "helmchart", "-n", "kube-system", name, "-o", "json").json()["status"]
        assert status["revision"] == 1
        assert next(c for c in status["conditions"] if c["type"] == "Failed")["status"] == "False"
