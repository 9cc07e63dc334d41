"""The built-in images as real OCI images: `pyk3s images build` writes them into the air-gap folder, a
server started with ``--container-runtime containerd --default-runtime containerd`` imports them (pinned)
and runs every pod under containerd, the packaged add-ons included: cluster DNS answers a containerd
pod, a whoami pod from the built-in image serves a Service, the ingress routes to it, and ServiceLB's
klipper-lb (nft inside its image) forwards the ingress's ports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from images import busybox_image, have_tools
from pyk3s_server import REPO, ServerProcess

from pyk3s.agent.cri.settings import ContainerdPaths
from pyk3s.images.builtin import BUILTIN_IMAGES, K3S_IMAGES, image_names
from pyk3s.images.oci import qualify
from pyk3s.k3s.version import PYK3S_VERSION

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not have_tools("containerd", "runc", "ctr", "nft", "curl", "ldd"),
                                 reason="needs root, containerd, runc, ctr, nft, curl and ldd"),
              pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="needs busybox-static")]

BOX_IMAGE = "pyk3s.test/busybox:1"
WHOAMI = f"pyk3s/whoami:v{PYK3S_VERSION}"


@pytest.fixture(scope="module")
def node(kubectl_bin: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(agent=True)
    srv.data_dir.mkdir(parents=True)
    build = subprocess.run([sys.executable, "-m", "pyk3s", "images", "build", "--data-dir", str(srv.data_dir)],
                           capture_output=True, text=True, cwd=REPO, timeout=600)
    assert build.returncode == 0, build.stderr
    busybox_image(BOX_IMAGE, srv.data_dir / "agent" / "images" / "busybox.tar")
    srv.extra_args = ["--container-runtime", "containerd", "--default-runtime", "containerd"]
    try:
        srv.start(timeout=60)
        srv.wait_for(lambda: "containerd: ready:" in srv.log(), timeout=180, what="containerd ready")
        yield srv
    finally:
        srv.cleanup()


def ctr(srv: ServerProcess, *args: str) -> str:
    return subprocess.run(["ctr", "--address", str(ContainerdPaths(srv.data_dir).socket), "--namespace", "k8s.io",
                           *args], capture_output=True, text=True, timeout=60).stdout


def apply(srv: ServerProcess, *docs: dict) -> None:
    srv.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def pods(srv: ServerProcess, namespace: str, selector: str = "") -> list[dict]:
    args = ["get", "pods", "-n", namespace, "-o", "json", *(("-l", selector) if selector else ())]
    return srv.kubectl(*args).json()["items"]


def ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def test_built_in_images_are_imported_pinned_under_every_name(node: ServerProcess) -> None:
    listing = ctr(node, "images", "ls")
    for command in BUILTIN_IMAGES:
        for name in image_names(command):
            line = next((ln for ln in listing.splitlines() if ln.startswith(name + " ")), "")
            assert "io.cri-containerd.pinned=pinned" in line, f"{name}:\n{listing}"


def test_every_packaged_add_on_runs_under_containerd(node: ServerProcess) -> None:
    def all_ready() -> list[dict] | None:
        items = pods(node, "kube-system")
        names = {p["metadata"]["name"].split("-")[0] for p in items}
        return items if {"coredns", "traefik", "svclb"} <= names and all(ready(p) for p in items) else None
    items = node.wait_for(all_ready, timeout=240, what="coredns, traefik and svclb ready")
    for p in items:
        for c in p["status"]["containerStatuses"]:
            assert c["containerID"].startswith("containerd://"), (p["metadata"]["name"], c)
    images = {qualify(c["image"]) for p in items for c in p["spec"]["containers"]}
    assert {qualify(ref) for refs in K3S_IMAGES.values() for ref in refs} <= images


def test_packaged_dns_answers_a_containerd_pod_and_a_built_in_image_serves(node: ServerProcess) -> None:
    labels = {"app": "web"}
    apply(node,
          {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": labels},
           "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
               "name": "whoami", "image": WHOAMI, "args": ["--port", "8080"],
               "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}},
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
          {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
           "spec": {"rules": [{"host": "web.pyk3s.test", "http": {"paths": [{
               "path": "/", "pathType": "Prefix",
               "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
          {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "c", "image": BOX_IMAGE, "imagePullPolicy": "IfNotPresent",
               "command": ["sh", "-c", "until nslookup web.default.svc.cluster.local && wget -qO- http://web/; "
                                       "do sleep 1; done"]}]}})
    node.wait_for(lambda: ready(node.kubectl("get", "pod", "web", "-o", "json").json()), timeout=120, what="web ready")
    web = node.kubectl("get", "pod", "web", "-o", "json").json()
    assert web["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    node.wait_for(lambda: node.kubectl("get", "pod", "client", "-o", "jsonpath={.status.phase}").out == "Succeeded",
                  timeout=120, what="client resolved web through cluster DNS and reached it")
    out = node.kubectl("logs", "client").out
    svc_ip = node.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").out
    assert svc_ip in out and "Hostname: web" in out, out
    assert node.node is not None
    ip = node.node.ip

    def through_ingress() -> str | None:
        body = subprocess.run(["curl", "-s", "-m", "3", "-H", "Host: web.pyk3s.test", f"http://{ip}/"],
                              capture_output=True, text=True).stdout
        return body if "Hostname: web" in body else None   # 404 until the ingress has compiled the route
    node.wait_for(through_ingress, timeout=120, what="ingress through ServiceLB")
