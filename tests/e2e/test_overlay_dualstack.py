"""A dual-stack cluster (``pyk3s dev cluster --stack dual --subnets 2``): IPv4,IPv6 pairs for
``--cluster-cidr``/``--service-cidr``, an IPv6 underlay beside the IPv4 one, node 2 behind the router.

Pods get an address of each family (``status.podIPs``) and reach each other over both VXLAN tunnels; a
RequireDualStack Service gets both ClusterIPs and answers on each; cluster DNS answers A and AAAA for
Services, headless endpoints and pods, and PTR for both families; NodePorts and ServiceLB serve both
families (the LoadBalancer ingress lists both node addresses).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from cluster import Cluster
from overlay_kit import apply_whoami, in_pod, node_obj, pod_ips, ready_pods, tunnel

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or
                                                  not shutil.which("dig"), reason="root + nft + dig")]

FLANNEL = "flannel.alpha.coreos.com/"
SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ipFamilyPolicy: RequireDualStack
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  ipFamilyPolicy: RequireDualStack
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports: [{port: 8088, targetPort: 8080}]
"""


@pytest.fixture(scope="module")
def cl(kubectl_bin: str) -> Iterator[Cluster]:
    c = Cluster(nodes=3, subnets=2, stack="dual", server_args=("--disable", "traefik"))
    c.start(timeout=150)
    try:
        yield c
    finally:
        c.cleanup()


@pytest.fixture(scope="module")
def web(cl: Cluster) -> dict:
    apply_whoami(cl)
    cl.kubectl("apply", "-f", "-", input=SERVICES)
    pods = cl.wait_for(lambda: len(ready_pods(cl, "app=web")) == 3 and ready_pods(cl, "app=web"), timeout=120,
                       what="a web pod ready on every node")
    return {"pods": sorted(pods, key=lambda p: p["metadata"]["name"]),
            "svc": cl.kubectl("get", "svc", "web", "-o", "json").json()}


def _dig(cl: Cluster, name: str, qtype: str, server: str) -> list[str]:
    out = cl.exec_in(cl.members[0], "dig", "+short", "+time=2", "+tries=3", f"@{server}", name, qtype).stdout
    return sorted(ln.strip() for ln in out.splitlines() if ln.strip() and not ln.startswith(";"))


def _v6(addrs: list[str]) -> list[str]:
    return [a for a in addrs if ":" in a]


def test_nodes_have_both_families(cl: Cluster) -> None:
    for m in cl.members:
        n = node_obj(cl, m)
        internal = [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal == [m.ip, m.ip6]
        fams = [ipaddress.ip_network(c).version for c in n["spec"]["podCIDRs"]]
        assert fams == [4, 6]
        ann = cl.wait_for(lambda m=m: node_obj(cl, m)["metadata"]["annotations"].get(FLANNEL + "backend-v6-data")
                          and node_obj(cl, m)["metadata"]["annotations"], timeout=30, what="v6 VTEP")
        assert ann[FLANNEL + "public-ipv6"] == m.ip6
        assert json.loads(ann[FLANNEL + "backend-v6-data"])["VNI"] == 1
        t6 = cl.wait_for(lambda m=m: (t := tunnel(cl, m, family=6))["link"] and t, timeout=30, what="v6 device")
        assert t6["link"]["mtu"] == 1500 - 70          # IPv6 underlay: 70 bytes of overhead
        assert t6["link"]["linkinfo"]["info_data"]["local6"] == m.ip6


def test_pods_have_an_address_of_each_family_and_reach_each_other_on_both(cl: Cluster, web: dict) -> None:
    for p in web["pods"]:
        ips = pod_ips(p)
        assert [ipaddress.ip_address(i).version for i in ips] == [4, 6], ips
        assert ips[0] == p["status"]["podIP"]
        assert in_pod(p, "cat", "/sys/class/net/eth0/mtu").stdout.strip() == "1430"   # the smaller tunnel
    src = web["pods"][0]
    for dst in web["pods"][1:]:
        for ip in pod_ips(dst):
            host = f"[{ip}]" if ":" in ip else ip
            out = cl.wait_for(lambda h=host: in_pod(src, "curl", "-sS", "-m", "3", f"http://{h}:8080/").stdout,
                              timeout=30, what=f"{src['metadata']['name']} -> {ip}")
            assert f"Hostname: {dst['metadata']['name']}" in out


def test_dual_stack_service_answers_on_both_cluster_ips(cl: Cluster, web: dict) -> None:
    spec = web["svc"]["spec"]
    assert spec["ipFamilies"] == ["IPv4", "IPv6"]
    assert [ipaddress.ip_address(i).version for i in spec["clusterIPs"]] == [4, 6]
    for pod in (web["pods"][0], web["pods"][2]):
        for ip in spec["clusterIPs"]:
            host = f"[{ip}]" if ":" in ip else ip
            out = cl.wait_for(lambda h=host, p=pod: in_pod(p, "curl", "-sS", "-m", "3", f"http://{h}/").stdout,
                              timeout=30, what=f"ClusterIP {ip}")
            assert "Hostname: web-" in out


def test_dns_aaaa_and_ptr_for_services_endpoints_and_pods(cl: Cluster, web: dict) -> None:
    dns = cl.kubectl("get", "svc", "-n", "kube-system", "kube-dns", "-o", "json").json()["spec"]["clusterIPs"]
    assert [ipaddress.ip_address(i).version for i in dns] == [4, 6]
    v4, v6 = web["svc"]["spec"]["clusterIPs"]
    name = "web.default.svc.cluster.local"
    for server in dns:
        assert cl.wait_for(lambda s=server: _dig(cl, name, "AAAA", s), timeout=90, what=f"AAAA via {server}") == [v6]
        assert _dig(cl, name, "A", server) == [v4]
    rev6 = ipaddress.ip_address(v6).reverse_pointer
    rev4 = ipaddress.ip_address(v4).reverse_pointer
    assert _dig(cl, rev6, "PTR", dns[0]) == [name + "."]
    assert _dig(cl, rev4, "PTR", dns[1]) == [name + "."]
    # headless: one AAAA per ready endpoint, and PTRs for the endpoint addresses
    want6 = sorted(_v6(pod_ips(p))[0] for p in web["pods"])
    got = cl.wait_for(lambda: _dig(cl, "web-headless.default.svc.cluster.local", "AAAA", dns[0]) == want6 and want6,
                      timeout=30, what="headless AAAA")
    assert got == want6
    ptr = _dig(cl, ipaddress.ip_address(want6[0]).reverse_pointer, "PTR", dns[0])
    assert ptr and ptr[0].endswith(".web-headless.default.svc.cluster.local.")
    # pods: <dashed address>.<namespace>.pod.<domain> (pods insecure, as K3s's Corefile)
    pod6 = _v6(pod_ips(web["pods"][1]))[0]
    label = pod6.replace(":", "-")
    assert _dig(cl, f"{label}.default.pod.cluster.local", "AAAA", dns[0]) == [pod6]


def test_nodeports_and_servicelb_on_both_families(cl: Cluster, web: dict) -> None:
    lb = cl.wait_for(lambda: (s := cl.kubectl("get", "svc", "web-lb", "-o", "json").json())
                     ["status"].get("loadBalancer", {}).get("ingress") and s, timeout=120, what="LB ingress")
    ingress = [i["ip"] for i in lb["status"]["loadBalancer"]["ingress"]]
    assert sorted(ingress) == sorted([m.ip for m in cl.members] + [m.ip6 for m in cl.members]), ingress
    assert [ipaddress.ip_address(i).version for i in ingress] == [4] * 3 + [6] * 3
    node_port = lb["spec"]["ports"][0]["nodePort"]
    for m in (cl.members[0], cl.members[2]):
        for addr in (m.ip, m.ip6):
            host = f"[{addr}]" if ":" in addr else addr
            for port in (8088, node_port):     # ServiceLB, then the NodePort, from the host over our bridges
                out = cl.wait_for(lambda h=host, p=port: subprocess.run(
                    ["curl", "-sS", "-m", "3", f"http://{h}:{p}/"], capture_output=True, text=True).stdout,
                    timeout=60, what=f"{host}:{port}")
                assert "Hostname: web-" in out


def test_downward_api_pod_and_host_ips_list_both_families(cl: Cluster) -> None:
    node = cl.members[1]
    cl.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "downward"},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node.name}, "restartPolicy": "Never",
                 "containers": [{"name": "c", "image": "pyk3s/whoami",
                                 "command": ["sh", "-c", 'echo "$POD_IPS $HOST_IPS"'],
                                 "env": [{"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
                                         {"name": "HOST_IPS",
                                          "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}}]}]}}))
    pod = cl.wait_for(lambda: (p := cl.kubectl("get", "pod", "downward", "-o", "json").json())["status"].get("phase")
                      == "Succeeded" and p, timeout=60, what="downward pod done")
    pod_ips_env, host_ips_env = cl.kubectl("logs", "downward").out.split()
    assert pod_ips_env.split(",") == pod_ips(pod) and len(pod_ips(pod)) == 2
    assert host_ips_env.split(",") == [node.ip, node.ip6]
