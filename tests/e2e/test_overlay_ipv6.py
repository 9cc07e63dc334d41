"""IPv6 without IPv4, control plane included, and IPv6 where the kernel has none.

* ``--stack ipv6``: an IPv6-only cluster (``pyk3s dev cluster --stack ipv6 --subnets 2``): no IPv4
  address on the underlay or the nodes, the server on ``--bind-address ::`` advertising its IPv6 node
  address, the agents joining over IPv6, IPv6-only cluster and service CIDRs. The ``kubernetes``
  Service and its endpoints are IPv6; pods get one IPv6 address, reach each other across the IPv6
  VXLAN tunnel (node 2 behind the router) and through an IPv6 ClusterIP; the packaged cluster DNS and
  ingress reach the API over IPv6 from their pods, so a pod resolves a Service by name, and the
  ingress routes to it through ServiceLB on the nodes' IPv6 addresses.
* A dual-stack cluster whose node 2 has IPv6 switched off in its kernel (``disable_ipv6``): an
  ``IPv6Unavailable`` event on that Node, its pods get IPv4 only, and the other nodes keep both families.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess

import pytest
from cluster import Cluster
from overlay_kit import apply_whoami, events, in_pod, node_obj, pod_ips, ready_pods

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


INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.pyk3s.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""

CLIENT = """
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeSelector: {kubernetes.io/hostname: %(node)s}
  restartPolicy: Never
  containers:
  - name: c
    image: pyk3s/whoami
    command: [sh, -c, "until curl -sSf -m 3 http://web.default.svc.cluster.local/; do sleep 1; done"]
"""


def _v6(addrs: list[str]) -> bool:
    return bool(addrs) and all(ipaddress.ip_address(a).version == 6 for a in addrs)


def test_ipv6_only_cluster_control_plane_included(kubectl_bin: str) -> None:
    c = Cluster(nodes=3, subnets=2, stack="ipv6", server_args=())
    try:
        c.start(timeout=180)
        server = c.members[0]
        assert ipaddress.ip_address(server.ip).version == 6 and all(not m.ip6 for m in c.members)
        # kubectl talks to https://[<server IPv6>]:6443; every node joined and registered over IPv6
        assert c.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").out == \
            f"https://[{server.ip}]:6443"
        for m in c.members:
            addrs = [a["address"] for a in node_obj(c, m)["status"]["addresses"] if a["type"] == "InternalIP"]
            assert addrs == [m.ip]
        # the agents reach the servers through their load balancer on ::1, the server on every address
        agent_kubeconfig = (c.members[1].data_dir / "agent" / "kubelet.kubeconfig").read_text()
        assert "server: https://[::1]:6444" in agent_kubeconfig
        assert "server: https://[::1]:6443" in (server.dir / "kubeconfig.yaml").read_text()
        # the kubernetes Service and its endpoints are IPv6
        kube = c.kubectl("get", "svc", "kubernetes", "-o", "json").json()["spec"]
        assert kube["ipFamilies"] == ["IPv6"] and _v6(kube["clusterIPs"])
        eps = c.kubectl("get", "endpoints", "kubernetes", "-o", "json").json()["subsets"]
        assert [a["ip"] for s in eps for a in s["addresses"]] == [server.ip]
        slices = c.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes",
                           "-o", "json").json()["items"]
        assert [sl["addressType"] for sl in slices] == ["IPv6"]

        apply_whoami(c)
        c.kubectl("apply", "-f", "-", input=SERVICE + "---" + INGRESS)
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

        # cluster DNS (in its pod, on the API over IPv6) answers a pod by the Service's name: the
        # client on node 2 resolves it through the IPv6 DNS ClusterIP and reaches the Service
        dns = c.kubectl("get", "svc", "-n", "kube-system", "kube-dns", "-o", "json").json()["spec"]
        assert _v6(dns["clusterIPs"])
        c.kubectl("apply", "-f", "-", input=CLIENT % {"node": c.members[2].name})
        c.wait_for(lambda: c.kubectl("get", "pod", "client", "-o", "jsonpath={.status.phase}").out == "Succeeded",
                   timeout=120, what="client resolved and reached web by name")
        assert "Hostname: web-" in c.kubectl("logs", "client").out
        # the ingress (in its pod, on the API over IPv6) routes by Host, reached through ServiceLB on
        # the IPv6 node addresses
        lb = c.wait_for(lambda: c.kubectl("get", "svc", "-n", "kube-system", "traefik", "-o", "json").json()
                        ["status"].get("loadBalancer", {}).get("ingress"), timeout=120, what="traefik LB ingress")
        assert _v6([i["ip"] for i in lb])
        def through_ingress() -> str | None:
            body = subprocess.run(["curl", "-sS", "-m", "3", "-H", "Host: web.pyk3s.test", _url(c.members[1].ip, 80)],
                                  capture_output=True, text=True).stdout
            return body if "Hostname: web-" in body else None   # 404 until the route is compiled
        c.wait_for(through_ingress, timeout=120, what="ingress over IPv6")
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
