"""Nodes in different subnets (``pyk3s dev cluster --subnets 2``: node 2 sits behind a router
namespace) joined by the default VXLAN backend: flannel's annotations, the tunnel's kernel state, pods
on every node reaching each other and a Service, nodes leaving and joining, and the bad inputs (an
unreachable VTEP address, a duplicate VTEP MAC, an MTU too small for the overhead) reported as Node
events while the other nodes keep working.

Traffic goes only to the cluster's own bridges, router and node namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from cluster import Cluster
from overlay_kit import apply_whoami, events, in_pod, node_obj, ready_pods, tunnel

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

FLANNEL = "flannel.alpha.coreos.com/"
UDP_FULL_SIZE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO: never fragment
s.settimeout(3)
s.sendto(b"x" * int(sys.argv[2]), (sys.argv[1], 8080))
print(len(s.recv(65535)))
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


@pytest.fixture(scope="module")
def cl(kubectl_bin: str) -> Iterator[Cluster]:
    c = Cluster(nodes=3, subnets=2, server_args=("--disable", "traefik,servicelb,coredns"))
    c.start(timeout=120)
    try:
        yield c
    finally:
        c.cleanup()
    assert c.router not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    assert not any(b in links for b in c.bridges)


@pytest.fixture(scope="module")
def web(cl: Cluster) -> dict:
    apply_whoami(cl)
    cl.kubectl("apply", "-f", "-", input=SERVICE)
    pods = cl.wait_for(lambda: len(ready_pods(cl, "app=web")) == 3 and ready_pods(cl, "app=web"), timeout=90,
                       what="a web pod ready on every node")
    return {"pods": sorted(pods, key=lambda p: p["metadata"]["name"]),
            "cluster_ip": cl.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").out}


def _reach_all(cl: Cluster, pods: list[dict], cluster_ip: str, among: set[str] | None = None) -> None:
    """Every pod (of ``among`` nodes) reaches every other one's IP and the ClusterIP."""
    chosen = [p for p in pods if among is None or p["spec"]["nodeName"] in among]
    for src in chosen:
        for dst in chosen:
            if dst is src:
                continue
            out = cl.wait_for(lambda s=src, d=dst: in_pod(s, "curl", "-sS", "-m", "3",
                                                          f"http://{d['status']['podIP']}:8080/").stdout,
                              timeout=30, what=f"{src['metadata']['name']} -> {dst['metadata']['name']}")
            assert f"Hostname: {dst['metadata']['name']}" in out
        seen = set()
        for _ in range(12):
            out = in_pod(src, "curl", "-sS", "-m", "3", f"http://{cluster_ip}/").stdout
            seen |= {ln.split()[1] for ln in out.splitlines() if ln.startswith("Hostname:")}
        assert seen, f"ClusterIP {cluster_ip} from {src['metadata']['name']}"


def _fresh_pods(cl: Cluster, web: dict) -> None:
    """After an agent restart its pod runs again, maybe with a new address."""
    pods = cl.wait_for(lambda: len(ready_pods(cl, "app=web")) == 3 and ready_pods(cl, "app=web"), timeout=90,
                       what="web pods ready")
    web["pods"] = sorted(pods, key=lambda p: p["metadata"]["name"])


def test_each_node_publishes_its_vtep_as_flannel_does(cl: Cluster) -> None:
    for m in cl.members:
        ann = cl.wait_for(lambda m=m: node_obj(cl, m)["metadata"]["annotations"].get(FLANNEL + "backend-data")
                          and node_obj(cl, m)["metadata"]["annotations"], timeout=30, what=f"{m.name} annotations")
        assert ann[FLANNEL + "backend-type"] == "vxlan"
        assert ann[FLANNEL + "public-ip"] == m.ip
        assert ann[FLANNEL + "kube-subnet-manager"] == "true"
        data = json.loads(ann[FLANNEL + "backend-data"])
        assert data["VNI"] == 1
        t = cl.wait_for(lambda m=m: (t := tunnel(cl, m))["link"] and t, timeout=30, what=f"{m.name}'s VXLAN device")
        assert t["link"]["linkinfo"]["info_data"]["id"] == 1
        assert t["link"]["linkinfo"]["info_data"]["port"] == 8472
        assert t["link"]["address"] == data["VtepMAC"]
        assert t["link"]["mtu"] == 1500 - 50


def test_forwarding_entries_and_routes_for_every_other_node(cl: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cl.kubectl("get", "nodes", "-o", "json").json()["items"]}
    for m in cl.members:
        want_fdb, want_neigh, want_routes = {}, {}, {}
        for o in cl.members:
            if o is m:
                continue
            ann = nodes[o.name]["metadata"]["annotations"]
            mac = json.loads(ann[FLANNEL + "backend-data"])["VtepMAC"]
            cidr = nodes[o.name]["spec"]["podCIDR"]
            want_fdb[mac] = o.ip
            want_neigh[cidr.split("/")[0]] = mac
            want_routes[cidr] = cidr.split("/")[0]

        def state(m=m, f=want_fdb, n=want_neigh, r=want_routes) -> bool:
            t = tunnel(cl, m)
            return t["fdb"] == f and t["neigh"] == n and t["routes"] == r
        cl.wait_for(state, timeout=30, what=f"tunnel entries on {m.name}")


def test_pods_on_all_nodes_reach_each_other_and_services(cl: Cluster, web: dict) -> None:
    _reach_all(cl, web["pods"], web["cluster_ip"])
    # pods get the tunnel's MTU, so full-size packets never need fragmenting inside the tunnel
    mtu = in_pod(web["pods"][0], "cat", "/sys/class/net/eth0/mtu").stdout.strip()
    assert mtu == "1450"
    # a datagram that fills the pod MTU, sent with DF, crosses the tunnel whole (whoami echoes UDP)
    big = in_pod(web["pods"][0], "python3", "-c", UDP_FULL_SIZE, web["pods"][2]["status"]["podIP"], "1422")
    assert big.stdout.strip() == "1422", big.stdout + big.stderr
    size = in_pod(web["pods"][0], "curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{size_download}",
                  f"http://{web['pods'][2]['status']['podIP']}:8080/data?size=4000000").stdout
    assert size == "4000000"


def test_a_node_leaving_and_joining_updates_every_tunnel(cl: Cluster, web: dict) -> None:
    gone = cl.members[2]
    cidr = node_obj(cl, gone)["spec"]["podCIDR"]
    gone.stop()
    cl.kubectl("delete", "node", gone.name)
    for m in cl.members[:2]:
        cl.wait_for(lambda m=m: cidr not in tunnel(cl, m)["routes"] and gone.ip not in tunnel(cl, m)["fdb"].values(),
                    timeout=30, what=f"{m.name} forgets {gone.name}")
    cl.start_agent(gone)
    cl.wait_for(lambda: gone.name in cl.ready_nodes(), timeout=60, what=f"{gone.name} back")
    ann = cl.wait_for(lambda: node_obj(cl, gone)["metadata"]["annotations"].get(FLANNEL + "backend-data"),
                      timeout=30, what="new VTEP published")
    mac = json.loads(ann)["VtepMAC"]
    for m in cl.members[:2]:
        cl.wait_for(lambda m=m: tunnel(cl, m)["fdb"].get(mac) == gone.ip, timeout=30,
                    what=f"{m.name} learns {gone.name}'s new VTEP")
    cl.kubectl("delete", "pod", "web-2", "--ignore-not-found", "--timeout=60s")   # bound to the old Node
    apply_whoami(cl)
    pods = cl.wait_for(lambda: len(ready_pods(cl, "app=web")) == 3 and ready_pods(cl, "app=web"), timeout=90,
                       what="web pods ready again")
    web["pods"] = sorted(pods, key=lambda p: p["metadata"]["name"])
    _reach_all(cl, web["pods"], web["cluster_ip"])


def _restart_agent(cl: Cluster, node) -> None:
    node.stop()
    cl.start_agent(node)


def test_unreachable_vtep_is_an_event_and_the_others_keep_working(cl: Cluster, web: dict) -> None:
    bad = cl.members[2]
    cl.kubectl("annotate", "node", bad.name, "--overwrite", f"{FLANNEL}public-ip-overwrite=198.51.100.7")
    _restart_agent(cl, bad)
    try:
        for m in cl.members[:2]:
            msgs = cl.wait_for(lambda: events(cl, bad, "VTEPUnreachable"), timeout=60, what="VTEPUnreachable event")
            assert any("198.51.100.7" in x and bad.name in x for x in msgs), msgs
            cl.wait_for(lambda m=m: "198.51.100.7" not in tunnel(cl, m)["fdb"].values(), timeout=10,
                        what="no tunnel to the unreachable VTEP")
        _reach_all(cl, web["pods"], web["cluster_ip"], among={cl.members[0].name, cl.members[1].name})
    finally:
        cl.kubectl("annotate", "node", bad.name, f"{FLANNEL}public-ip-overwrite-")
        _restart_agent(cl, bad)
    cl.wait_for(lambda: all(bad.ip in tunnel(cl, m)["fdb"].values() for m in cl.members[:2]), timeout=60,
                what="tunnel back")


def test_duplicate_vtep_mac_is_an_event_the_newer_node_picks_a_new_one(cl: Cluster, web: dict) -> None:
    keeper, dup = cl.members[1], cl.members[2]
    mac = json.loads(node_obj(cl, keeper)["metadata"]["annotations"][FLANNEL + "backend-data"])["VtepMAC"]
    dup.stop()
    cl.kubectl("annotate", "node", dup.name, "--overwrite",
               f'{FLANNEL}backend-data={{"VNI":1,"VtepMAC":"{mac}"}}')
    msgs = cl.wait_for(lambda: events(cl, dup, "DuplicateVTEPMAC"), timeout=60, what="DuplicateVTEPMAC event")
    assert any(mac in x and keeper.name in x for x in msgs), msgs
    # the older node keeps its MAC: node 0 still tunnels to node 1
    assert tunnel(cl, cl.members[0])["fdb"].get(mac) == keeper.ip
    _reach_all(cl, web["pods"][:2], web["cluster_ip"], among={cl.members[0].name, keeper.name})
    cl.start_agent(dup)
    new = cl.wait_for(lambda: (m := json.loads(node_obj(cl, dup)["metadata"]["annotations"][FLANNEL + "backend-data"])
                               ["VtepMAC"]) != mac and m, timeout=60, what="a new MAC")
    cl.wait_for(lambda: tunnel(cl, cl.members[0])["fdb"].get(new) == dup.ip, timeout=30, what="tunnel to the new MAC")
    cl.wait_for(lambda: any("takes a new one" in x for x in events(cl, dup, "DuplicateVTEPMAC")), timeout=30,
                what="the node's own DuplicateVTEPMAC event")


def test_mtu_too_small_for_the_overhead_is_an_event(cl: Cluster, web: dict) -> None:
    small = cl.members[2]
    subprocess.run(cl.in_node(small, "ip", "link", "set", "eth0", "mtu", "600"), check=True)
    _restart_agent(cl, small)
    try:
        msgs = cl.wait_for(lambda: events(cl, small, "OverlayMTUTooSmall"), timeout=60, what="OverlayMTUTooSmall")
        assert any("MTU 600" in x and "eth0" in x for x in msgs), msgs
        _reach_all(cl, web["pods"], web["cluster_ip"], among={cl.members[0].name, cl.members[1].name})
    finally:
        subprocess.run(cl.in_node(small, "ip", "link", "set", "eth0", "mtu", "1500"), check=True)
        _restart_agent(cl, small)
