"""Root e2e of a pod's routed link across agent restarts, in a throwaway node namespace: setting a
running pod up again changes nothing, and a pod an earlier release wired as a bridge port (on-link
/24, veth enslaved, no /32 route) becomes a routed one with its address kept."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")]

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, json, subprocess, sys
from pathlib import Path
from pyk3s.agent.cni.bridge import BridgeConfig, ensure_bridge
from pyk3s.agent.cni.ipam import HostLocalIpam
from pyk3s.agent.cni.podnet import setup_pod_network, teardown_pod_network, veth_name, netns_name

uid, data = sys.argv[1], Path(sys.argv[2])
out = {}

def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout

def state(v, ns):
    return {"node": sh("ip", "route", "show", "dev", v) + sh("ip", "-6", "route", "show", "dev", v),
            "link": sh("ip", "-o", "link", "show", v), "pod": sh("ip", "-n", ns, "-o", "addr", "show", "eth0"),
            "pod_routes": sh("ip", "-n", ns, "route") + sh("ip", "-n", ns, "-6", "route", "show", "default"),
            "reach": subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                                     "import socket\ntry:\n socket.create_connection(('10.251.0.1', 9), timeout=2)\n"
                                     "except ConnectionRefusedError:\n print('refused')"],
                                    capture_output=True, text=True).stdout.strip()}

async def main():
    cfg = BridgeConfig("pkplb0", "10.251.0.0/24", ("10.251.0.0/16", "fd51::/56"), ("10.252.0.0/24",),
                       extra_pod_cidrs=("fd51:0:0:1::/64",))
    await ensure_bridge(cfg)
    ipam = HostLocalIpam(data, cfg.pod_cidr, cfg.extra_pod_cidrs)
    net = await setup_pod_network(uid, cfg, ipam)
    v, ns = veth_name(uid), netns_name(uid)
    out["ips"] = list(net.ips)
    out["first"] = state(v, ns)
    await setup_pod_network(uid, cfg, ipam)
    out["again"] = state(v, ns)
    a = net.ips[0]
    sh("ip", "link", "set", v, "master", "pkplb0")
    sh("ip", "route", "del", f"{a}/32", "dev", v)
    sh("ip", "-n", ns, "addr", "del", f"{a}/32", "dev", "eth0")
    sh("ip", "-n", ns, "addr", "add", f"{a}/24", "dev", "eth0")
    sh("ip", "-n", ns, "route", "replace", "default", "via", "10.251.0.1", "dev", "eth0")
    out["bridged"] = state(v, ns)
    await setup_pod_network(uid, cfg, ipam)
    out["migrated"] = state(v, ns)
    await teardown_pod_network(uid, ipam)
    out["gone"] = sh("ip", "route", "show", "proto", "202") + sh("ip", "link", "show", v) + sh("ip", "netns", "list")

asyncio.run(main())
print(json.dumps(out))
"""


def test_setting_a_pod_up_again_keeps_or_turns_it_into_a_routed_link(tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    node, uid = f"pkpln{tag}", f"pl-e2e-{tag}"
    subprocess.run(["ip", "netns", "add", node], check=True)
    try:
        subprocess.run(["ip", "-n", node, "link", "set", "lo", "up"], check=True)
        res = subprocess.run(["ip", "netns", "exec", node, sys.executable, "-c", SCRIPT, uid, str(tmp_path)],
                             capture_output=True, text=True, cwd=REPO, timeout=90)
    finally:
        subprocess.run(["ip", "netns", "del", node], capture_output=True)
        subprocess.run(["ip", "netns", "del", f"pk-{uid.replace('-', '')[:12]}"], capture_output=True)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    v4, v6 = out["ips"]
    first = out["first"]
    assert f"{v4} proto 202 scope link src 10.251.0.1" in first["node"] and f"{v6} proto 202" in first["node"]
    assert f"inet {v4}/32 " in first["pod"] and f"inet6 {v6}/128 " in first["pod"]
    assert "default via 10.251.0.1 dev eth0 onlink" in first["pod_routes"]
    assert "default via fd51:0:0:1::1 dev eth0" in first["pod_routes"] and first["reach"] == "refused"
    assert " master " not in first["link"]
    assert out["again"] == first  # an agent restart changes nothing on a routed pod
    assert " master pkplb0 " in out["bridged"]["link"] and f"inet {v4}/24 " in out["bridged"]["pod"]
    migrated = out["migrated"]
    assert " master " not in migrated["link"] and f"inet {v4}/32 " in migrated["pod"]
    assert f"{v4} proto 202 scope link src 10.251.0.1" in migrated["node"] and migrated["reach"] == "refused"
    assert f"pk-{uid.replace('-', '')[:12]}" not in out["gone"] and "proto 202" not in out["gone"]


HAIRPIN = r"""
import asyncio, json, subprocess, sys, time
from pathlib import Path
from pyk3s.agent.cni.bridge import BridgeConfig, ensure_bridge
from pyk3s.agent.cni.ipam import HostLocalIpam
from pyk3s.agent.cni.podnet import setup_pod_network, teardown_pod_network
from pyk3s.agent.proxy.compile import ProxyConfig, compile_ruleset

uids, data = sys.argv[1:3], Path(sys.argv[3])
cfg = BridgeConfig("pkplb1", "fd51:0:0:2::/64", ("fd51::/56",), ("fd52::/112",))
SERVER = ("import socket\ns = socket.socket(socket.AF_INET6)\ns.bind(('::', 8080))\ns.listen()\nwhile True:\n"
          " c, peer = s.accept()\n c.sendall(peer[0].encode())\n c.close()\n")
CLIENT = ("import socket, sys\nc = socket.create_connection((sys.argv[1], 80), timeout=3)\n"
          "print(c.recv(100).decode())\n")

async def main():
    await ensure_bridge(cfg)
    ipam = HostLocalIpam(data, cfg.pod_cidr)
    nets = [await setup_pod_network(u, cfg, ipam) for u in uids]
    server = subprocess.Popen(["ip", "netns", "exec", nets[0].netns, sys.executable, "-c", SERVER])
    try:
        svc = {"metadata": {"namespace": "default", "name": "solo"},
               "spec": {"clusterIP": "fd52::10", "clusterIPs": ["fd52::10"], "ipFamilies": ["IPv6"],
                        "ports": [{"port": 80}]}}
        sl = {"metadata": {"namespace": "default", "name": "solo-1",
                           "labels": {"kubernetes.io/service-name": "solo"}}, "addressType": "IPv6",
              "ports": [{"port": 8080, "protocol": "TCP", "name": ""}],
              "endpoints": [{"addresses": [nets[0].ip], "conditions": {"ready": True}}]}
        text = compile_ruleset(ProxyConfig("n1", cfg.cluster_cidrs, cfg.service_cidrs, bridge_name=cfg.bridge_name,
                                           table="pkplhairpin", pod_gateways=(cfg.gateway,)), [svc], [sl])
        subprocess.run(["nft", "-f", "-"], input=text, text=True, check=True)
        out = {}
        for name, net in (("hairpin", nets[0]), ("neighbour", nets[1])):
            for _ in range(50):
                r = subprocess.run(["ip", "netns", "exec", net.netns, sys.executable, "-c", CLIENT, "fd52::10"],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    break
                time.sleep(0.1)
            out[name] = r.stdout.strip() or r.stderr[-300:]
        out["ips"] = [n.ip for n in nets]
        out["gateway"] = cfg.gateway
        print(json.dumps(out))
    finally:
        server.kill()
        server.wait()
        for u in uids:
            await teardown_pod_network(u, ipam)

asyncio.run(main())
"""


def test_ipv6_hairpin_and_same_node_service_traffic(tmp_path: Path) -> None:
    """A pod reaching itself through its Service arrives from the gateway (masqueraded, as kube-proxy
    does); another pod of the node arrives with its own address (routed, not masqueraded)."""
    tag = secrets.token_hex(3)
    node, uids = f"pkplh{tag}", [f"pl-hp-{tag}-{i}" for i in range(2)]
    subprocess.run(["ip", "netns", "add", node], check=True)
    try:
        subprocess.run(["ip", "-n", node, "link", "set", "lo", "up"], check=True)
        res = subprocess.run(["ip", "netns", "exec", node, sys.executable, "-c", HAIRPIN, *uids, str(tmp_path)],
                             capture_output=True, text=True, cwd=REPO, timeout=90)
    finally:
        subprocess.run(["ip", "netns", "del", node], capture_output=True)
        for u in uids:
            subprocess.run(["ip", "netns", "del", f"pk-{u.replace('-', '')[:12]}"], capture_output=True)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["hairpin"] == out["gateway"], out
    assert out["neighbour"] == out["ips"][1], out
