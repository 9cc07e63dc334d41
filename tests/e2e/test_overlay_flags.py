"""``--flannel-external-ip`` (peers tunnel to a node's ``--node-external-ip``, published as flannel's
``public-ip-overwrite``) and ``--flannel-iface`` (the tunnel's interface; without ``--node-ip`` the node
takes that interface's address, as in K3s), on a 2-node VXLAN cluster."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest
from cluster import Cluster
from overlay_kit import apply_whoami, in_pod, node_obj, ready_pods, tunnel

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

F = "flannel.alpha.coreos.com/"


@pytest.fixture(scope="module")
def cl(kubectl_bin: str) -> Iterator[tuple[Cluster, dict[str, str]]]:
    c = Cluster(nodes=2, server_args=("--disable", "traefik,servicelb,coredns", "--flannel-external-ip"))
    try:
        c.make_network()
        ext = {m.name: str(c.nets[0][100 + m.index]) for m in c.members}
        for m in c.members:   # a second address on the node's link stands for its external one
            c.exec_in(m, "ip", "addr", "add", f"{ext[m.name]}/24", "dev", "eth0")
        server, agent = c.members
        # the serving certificate names the advertised (external) address; kubectl uses the node IP
        c.server_args = (*c.server_args, "--node-external-ip", ext[server.name], "--tls-san", server.ip)
        c.start_server(server)
        c.use_server(server)
        argv = c.agent_argv(agent, ["--node-external-ip", ext[agent.name], "--flannel-iface", "eth0"])
        i = argv.index("--node-ip")
        c._spawn(agent, argv[:i] + argv[i + 2:])      # no --node-ip: it comes from --flannel-iface
        c.wait_for(lambda: len(c.ready_nodes()) == 2, timeout=120, what="2 nodes Ready")
        yield c, ext
    finally:
        c.cleanup()


def test_external_ip_is_the_published_vtep_and_the_fdb_destination(cl: tuple[Cluster, dict[str, str]]) -> None:
    c, ext = cl
    server, agent = c.members
    for m in c.members:
        ann = c.wait_for(lambda m=m: node_obj(c, m)["metadata"]["annotations"].get(F + "public-ip"), timeout=30,
                         what="public-ip")
        assert ann == ext[m.name]
        assert node_obj(c, m)["metadata"]["annotations"][F + "public-ip-overwrite"] == ext[m.name]
    mac = json.loads(node_obj(c, agent)["metadata"]["annotations"][F + "backend-data"])["VtepMAC"]
    c.wait_for(lambda: tunnel(c, server)["fdb"].get(mac) == ext[agent.name], timeout=30, what="fdb to the external IP")
    # the tunnel itself still leaves from the interface's own address
    link = c.wait_for(lambda: tunnel(c, agent)["link"], timeout=30, what="VXLAN device")
    assert link["linkinfo"]["info_data"]["local"] == agent.ip
    apply_whoami(c)
    pods = c.wait_for(lambda: len(ready_pods(c, "app=web")) == 2 and ready_pods(c, "app=web"), timeout=90,
                      what="web pods")
    by_node = {p["spec"]["nodeName"]: p for p in pods}
    out = c.wait_for(lambda: in_pod(by_node[server.name], "curl", "-sS", "-m", "3",
                                    f"http://{by_node[agent.name]['status']['podIP']}:8080/").stdout,
                     timeout=30, what="pod to pod through the external addresses")
    assert "Hostname: web-1" in out


def test_flannel_iface_gives_the_node_ip_when_none_is_given(cl: tuple[Cluster, dict[str, str]]) -> None:
    c, _ = cl
    agent = c.members[1]
    internal = [a["address"] for a in node_obj(c, agent)["status"]["addresses"] if a["type"] == "InternalIP"]
    assert internal == [agent.ip]
    assert tunnel(c, agent)["link"]["linkinfo"]["info_data"]["link"] == "eth0"
