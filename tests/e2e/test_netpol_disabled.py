"""``--disable-network-policy``: NetworkPolicies are served and validated, nothing is enforced, and the
node holds no policy table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from netpol_cases import CASES, Check, Reachability, policy
from netpol_model import Model
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")]


def test_disable_network_policy(kubectl_bin: str) -> None:
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb,coredns", "--disable-network-policy"])
    try:
        srv.start(timeout=90)
        m = Model(srv.kubectl)
        m.create()
        m.wait_ready()
        m.apply_step(next(c for c in CASES if c.name == 'default-deny-all').steps[0])  # namespace x: deny all
        time.sleep(1)
        ok, seen, _ = m.wait_matrix(Check(80, "TCP", Reachability()), timeout=3)
        assert ok, f"policies enforced despite --disable-network-policy\n{Reachability.render(seen, seen)}"
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert f"pyk3s-netpol-{srv.bridge}" not in tables
        # still served and validated by the API
        assert srv.kubectl("get", "netpol", "-n", "x", "deny-all", "-o", "name").out.strip() == \
            "networkpolicy.networking.k8s.io/deny-all"
        bad = srv.kubectl("apply", "-f", "-", check=False, input=json.dumps(
            policy("x", "bad", ingress=[{"ports": [{"port": 70000}]}])))
        assert bad.rc != 0 and "must be between 1 and 65535, inclusive" in bad.err
    finally:
        srv.cleanup()
