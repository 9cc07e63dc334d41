"""IPv6 without IPv4 pods, and IPv6 where the kernel has none.

* ``--stack ipv6``: IPv6-only cluster and service CIDRs (the API stays on IPv4): pods get one IPv6
  address, reach each other across the IPv6 VXLAN tunnel (node 2 behind the router) and through an
  IPv6 ClusterIP.
* A dual-stack cluster whose node 2 has IPv6 switched off in its kernel (``disable_ipv6``): an
  ``IPv6Unavailable`` event on that Node, its pods get IPv4 only, and the other nodes keep both families.
"""

from __future__ import annotations

import ipaddress
import os
import shutil

import pytest
from cluster import Cluster
from overlay_kit import apply_whoami, events, in_pod, pod_ips, ready_pods

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def _url(ip: str, port: int) -> str:
    return f"http://[{ip}]:{port}/" if ":" in ip else f"http://{ip}:{port}/"


def test_ipv6_only_pods_and_services(kubectl_bin: str) -> None:
    c = Cluster(nodes=3, subnets=2, stack="ipv6", server_args=("--disable", "traefik,servicelb,coredns"))
    try:
        c.start(timeout=150)
        apply_whoami(c)
        c.kubectl("apply", "-f", "-", input=SERVICE)
        pods = c.wait_for(lambda: len(ready_pods(c, "app=web")) == 3 and ready_pods(c, "app=web"), timeout=120,
                          what="web pods")
        pods.sort(key=lambda p: p["metadata"]["name"])
        for p in pods:
            assert [ipaddress.ip_address(i).version for i in pod_ips(p)] == [6]
        svc = c.kubectl("get", "svc", "web", "-o", "json").json()["spec"]
        assert svc["ipFamilies"] == ["IPv6"] and ":" in svc["clusterIP"]
        src = pods[0]
        for dst in pods[1:]:
            out = c.wait_for(lambda d=dst: in_pod(src, "curl", "-sS", "-m", "3",
                                                  _url(d["status"]["podIP"], 8080)).stdout,
                             timeout=30, what=f"-> {dst['metadata']['name']}")
            assert f"Hostname: {dst['metadata']['name']}" in out
        out = c.wait_for(lambda: in_pod(pods[2], "curl", "-sS", "-m", "3", _url(svc["clusterIP"], 80)).stdout,
                         timeout=30, what="IPv6 ClusterIP")
        assert "Hostname: web-" in out
    finally:
        c.cleanup()


def test_node_without_kernel_ipv6_serves_ipv4_and_says_why(kubectl_bin: str) -> None:
    c = Cluster(nodes=3, stack="dual", server_args=("--disable", "traefik,servicelb,coredns"))
    try:
        c.make_network()
        bad = c.members[2]
        for knob in ("all", "default"):
            c.exec_in(bad, "sysctl", "-qw", f"net.ipv6.conf.{knob}.disable_ipv6=1")
        c.start_processes(timeout=150)
        msgs = c.wait_for(lambda: events(c, bad, "IPv6Unavailable"), timeout=60, what="IPv6Unavailable event")
        assert any("disable_ipv6=1" in m and bad.name in m for m in msgs), msgs
        apply_whoami(c)
        pods = c.wait_for(lambda: len(ready_pods(c, "app=web")) == 3 and ready_pods(c, "app=web"), timeout=120,
                          what="web pods")
        by_node = {p["spec"]["nodeName"]: p for p in pods}
        fams = {n: [ipaddress.ip_address(i).version for i in pod_ips(p)] for n, p in by_node.items()}
        assert fams == {c.members[0].name: [4, 6], c.members[1].name: [4, 6], bad.name: [4]}
        a, b, v4only = (by_node[m.name] for m in c.members)
        for dst_ip, who in ((pod_ips(b)[1], b), (v4only["status"]["podIP"], v4only)):
            out = c.wait_for(lambda ip=dst_ip: in_pod(a, "curl", "-sS", "-m", "3", _url(ip, 8080)).stdout,
                             timeout=30, what=f"-> {dst_ip}")
            assert f"Hostname: {who['metadata']['name']}" in out
    finally:
        c.cleanup()
