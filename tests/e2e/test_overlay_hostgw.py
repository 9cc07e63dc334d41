"""``--flannel-backend host-gw`` with node 2 in another subnet (behind the router namespace): nodes 0 and
1 share a link and route each other's pods directly; node 2 is refused with a ``HostGwPeerNotOnLink``
event on its Node (and they on theirs, from node 2's side), and no route to it is made. Then
``--flannel-backend none`` leaves pod routes to the user.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from cluster import Cluster
from overlay_kit import apply_whoami, events, in_pod, node_obj, ready_pods, tunnel

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

FLANNEL = "flannel.alpha.coreos.com/"


@pytest.fixture(scope="module")
def cl(kubectl_bin: str) -> Iterator[Cluster]:
    c = Cluster(nodes=3, subnets=2,
                server_args=("--disable", "traefik,servicelb,coredns", "--flannel-backend", "host-gw"))
    c.start(timeout=120)
    try:
        yield c
    finally:
        c.cleanup()


def test_host_gw_publishes_its_next_hop_and_routes_the_shared_link(cl: Cluster) -> None:
    a, b, far = cl.members
    for m in cl.members:
        ann = cl.wait_for(lambda m=m: node_obj(cl, m)["metadata"]["annotations"].get(FLANNEL + "backend-type")
                          and node_obj(cl, m)["metadata"]["annotations"], timeout=30, what="annotations")
        assert ann[FLANNEL + "backend-type"] == "host-gw"
        assert ann[FLANNEL + "public-ip"] == m.ip
        assert tunnel(cl, m)["link"] is None          # no VXLAN device
    cidr = {m.name: node_obj(cl, m)["spec"]["podCIDR"] for m in cl.members}
    cl.wait_for(lambda: tunnel(cl, a)["routes"].get(cidr[b.name]) == b.ip, timeout=30, what="a -> b route")
    cl.wait_for(lambda: tunnel(cl, b)["routes"].get(cidr[a.name]) == a.ip, timeout=30, what="b -> a route")
    assert cidr[far.name] not in tunnel(cl, a)["routes"]
    assert tunnel(cl, far)["routes"] == {}


def test_a_peer_off_the_shared_link_is_refused_with_an_event(cl: Cluster) -> None:
    a, b, far = cl.members
    msgs = cl.wait_for(lambda: events(cl, far, "HostGwPeerNotOnLink"), timeout=60, what="event on the far node")
    assert any(far.ip in x and "--flannel-backend=vxlan" in x and f"node {a.name}" in x for x in msgs), msgs
    msgs = cl.wait_for(lambda: events(cl, a, "HostGwPeerNotOnLink"), timeout=60, what="event from the far node")
    assert any(f"node {far.name}" in x for x in msgs), msgs


def test_pods_on_the_shared_link_still_reach_each_other(cl: Cluster) -> None:
    apply_whoami(cl)
    pods = cl.wait_for(lambda: len(ready_pods(cl, "app=web")) == 3 and ready_pods(cl, "app=web"), timeout=90,
                       what="web pods")
    by_node = {p["spec"]["nodeName"]: p for p in pods}
    a, b, far = (by_node[m.name] for m in cl.members)
    out = cl.wait_for(lambda: in_pod(a, "curl", "-sS", "-m", "3", f"http://{b['status']['podIP']}:8080/").stdout,
                      timeout=30, what="a -> b")
    assert f"Hostname: {b['metadata']['name']}" in out
    # the refused peer's pods are not reachable
    res = in_pod(a, "curl", "-sS", "-m", "3", f"http://{far['status']['podIP']}:8080/")
    assert res.returncode != 0


def test_backend_none_leaves_pod_routes_to_the_user(kubectl_bin: str) -> None:
    c = Cluster(nodes=2, server_args=("--disable", "traefik,servicelb,coredns", "--flannel-backend", "none"))
    c.start(timeout=120)
    try:
        for m in c.members:
            ann = node_obj(c, m)["metadata"].get("annotations") or {}
            assert not any(k.startswith(FLANNEL) for k in ann), ann
            t = tunnel(c, m)
            assert t["link"] is None and t["routes"] == {}
        # the user's own route to the other node's pods is left alone
        a, b = c.members
        cidr = node_obj(c, b)["spec"]["podCIDR"]
        c.exec_in(a, "ip", "route", "add", cidr, "via", b.ip)
        apply_whoami(c)
        pods = c.wait_for(lambda: len(ready_pods(c, "app=web")) == 2 and ready_pods(c, "app=web"), timeout=90,
                          what="web pods")
        by_node = {p["spec"]["nodeName"]: p for p in pods}
        c.exec_in(b, "ip", "route", "add", node_obj(c, a)["spec"]["podCIDR"], "via", a.ip)
        out = c.wait_for(lambda: in_pod(by_node[a.name], "curl", "-sS", "-m", "3",
                                        f"http://{by_node[b.name]['status']['podIP']}:8080/").stdout,
                         timeout=30, what="a -> b over the user's routes")
        assert "Hostname: web-1" in out
    finally:
        c.cleanup()
