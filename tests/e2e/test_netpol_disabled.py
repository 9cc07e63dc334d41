"""``--disable-network-policy`` on the server of a 2-node cluster: NetworkPolicies are still served and
validated, the agent that joined follows the server's choice (as in K3s), nothing is enforced, and no
node holds a policy table."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from cluster import Cluster
from netpol_cases import CASES, PODS, Check, Reachability, policy
from netpol_model import Model

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")]


def test_disable_network_policy(kubectl_bin: str) -> None:
    cl = Cluster(nodes=2, server_args=("--disable", "traefik,servicelb,coredns", "--disable-network-policy"))
    try:
        cl.start(timeout=180)
        m = Model(cl.kubectl, {key: cl.members[i % 2].name for i, key in enumerate(PODS)})
        m.create()
        m.wait_ready(timeout=240)
        m.apply_step(next(c for c in CASES if c.name == "default-deny-all").steps[0])  # namespace x: deny all
        time.sleep(1)
        ok, seen, _ = m.wait_matrix(Check(80, "TCP", Reachability()), timeout=3)
        assert ok, f"policies enforced despite --disable-network-policy\n{Reachability.render(seen, seen)}"
        for node in cl.members:
            tables = cl.exec_in(node, "nft", "list", "tables").stdout
            assert "pyk3s-netpol" not in tables, f"{node.name} ({node.role}) holds a policy table:\n{tables}"
        # still served and validated by the API
        assert cl.kubectl("get", "netpol", "-n", "x", "deny-all", "-o", "name").out.strip() == \
            "networkpolicy.networking.k8s.io/deny-all"
        bad = cl.kubectl("apply", "-f", "-", check=False, input=json.dumps(
            policy("x", "bad", ingress=[{"ports": [{"port": 70000}]}])))
        assert bad.rc != 0 and "must be between 1 and 65535, inclusive" in bad.err
    finally:
        cl.cleanup()
