"""Root e2e of the ``pyk3s`` CNI plugin on its own, without containerd: ADD, CHECK with and without
``prevResult``, DEL, for a dual-stack pod, inside a throwaway node namespace (the plugin runs there as
containerd would run it on a node)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")]

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, io, json, subprocess, sys
from pathlib import Path
from pyk3s.agent.cni.bridge import BridgeConfig, ensure_bridge
from pyk3s.agent.cni.plugin import conflist, run
from pyk3s.agent.cni.podnet import veth_name

sandbox, data = sys.argv[1], Path(sys.argv[2])
cfg = BridgeConfig("pkcnib0", "10.253.0.0/24", ("10.253.0.0/16", "fd53::/56"), ("10.254.0.0/24",),
                   extra_pod_cidrs=("fd53:0:0:1::/64",))
asyncio.run(ensure_bridge(cfg))
plugin = {**conflist(cfg, data / "ipam", data / "cni")["plugins"][0], "cniVersion": "1.0.0", "name": "pyk3s"}
env = {"CNI_NETNS": f"/run/netns/{sandbox}", "CNI_IFNAME": "eth0", "CNI_CONTAINERID": "c1",
       "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_UID=cni-e2e-uid", "CNI_PATH": "/nonexistent"}
out = {}

def call(cmd, conf):
    buf = io.StringIO()
    rc = run({**env, "CNI_COMMAND": cmd}, io.StringIO(json.dumps(conf)), buf)
    return rc, json.loads(buf.getvalue() or "{}")

def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout

out["add"] = call("ADD", plugin)
result = out["add"][1]
veth = veth_name("cni-e2e-uid")
out["node_routes"] = sh("ip", "route", "show", "dev", veth) + sh("ip", "-6", "route", "show", "dev", veth)
out["bridge_ports"] = sh("ip", "-o", "link", "show", "master", "pkcnib0")
out["check"] = call("CHECK", {**plugin, "prevResult": result})
out["check_bare"] = call("CHECK", plugin)
sh("ip", "-6", "route", "del", "fd53:0:0:1::2/128", "dev", veth)
out["check_no_route"] = call("CHECK", {**plugin, "prevResult": result})
out["check_other"] = call("CHECK", {**plugin, "prevResult": {"ips": [{"address": "10.253.0.99/32"}]}})
out["del"] = call("DEL", plugin)
out["veth_after_del"] = sh("ip", "link", "show", veth)
print(json.dumps(out))
"""


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    tag = secrets.token_hex(3)
    node, sandbox = f"pkcnin{tag}", f"pkcnis{tag}"
    made = []
    try:
        for ns in (node, sandbox):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
        subprocess.run(["ip", "-n", node, "link", "set", "lo", "up"], check=True)
        yield node, sandbox
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_add_check_del_of_a_dual_stack_pod(namespaces: tuple[str, str], tmp_path: Path) -> None:
    node, sandbox = namespaces
    res = subprocess.run(["ip", "netns", "exec", node, sys.executable, "-c", SCRIPT, sandbox, str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    rc, add = out["add"]
    assert rc == 0, add
    assert [i["address"] for i in add["ips"]] == ["10.253.0.2/32", "fd53:0:0:1::2/128"]
    assert {i["interface"] for i in add["ips"]} == {1} and add["interfaces"][1]["sandbox"].endswith(sandbox)
    # a routed link: the node routes each address into the veth, the bridge has no ports
    assert "10.253.0.2 proto 202 scope link src 10.253.0.1" in out["node_routes"]
    assert "fd53:0:0:1::2 proto 202 src fd53:0:0:1::1" in out["node_routes"]
    assert out["bridge_ports"] == ""
    pod_routes = subprocess.run(["ip", "-n", sandbox, "route"], capture_output=True, text=True).stdout
    assert out["check"] == [0, {}] and out["check_bare"] == [0, {}]
    assert out["check_no_route"][0] == 1 and out["check_no_route"][1]["code"] == 11
    assert "no route to fd53:0:0:1::2" in out["check_no_route"][1]["msg"]
    assert out["check_other"][0] == 1 and "lacks 10.253.0.2" in out["check_other"][1]["msg"]
    assert out["del"] == [0, {}] and out["veth_after_del"] == ""
    assert pod_routes == ""  # the veth went with DEL, and the sandbox's routes with it
