"""NetworkPolicy on IPv6 pod addresses: a dual-stack 2-node cluster, the upstream model's cases that
matter per family probed over IPv6 (TCP, UDP, ICMPv6, an IPv6 ClusterIP, IPv6 ipBlocks), and the same
policies holding on the pods' IPv4 addresses."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest
from cluster import Cluster
from netpol_cases import CASES, PODS, Case, Reachability
from netpol_model import Model

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")]

NAMES = ("default-deny-ingress", "allow-from-namespace-by-label", "named-ports", "ip-block-with-except",
         "egress-to-a-service")


@pytest.fixture(scope="module")
def dual() -> Iterator[tuple[Cluster, Model, Model]]:
    cl = Cluster(nodes=2, stack="dual", server_args=("--disable", "traefik,servicelb,coredns"))
    try:
        cl.start(timeout=180)
        nodes = {key: cl.members[i % 2].name for i, key in enumerate(PODS)}
        v6, v4 = Model(cl.kubectl, nodes, family=6), Model(cl.kubectl, nodes, family=4)
        v6.create()
        v6.wait_ready(timeout=240)
        v4.wait_ready(timeout=60)
        yield cl, v6, v4
    finally:
        cl.cleanup()


@pytest.mark.parametrize("case", [c for c in CASES if c.name in NAMES], ids=lambda c: c.name)
def test_model_case_over_ipv6(dual: tuple[Cluster, Model, Model], case: Case) -> None:
    cl, v6, v4 = dual
    assert all(":" in ip for ip in v6.ips.values())
    try:
        for n, step in enumerate(case.steps):
            v6.apply_step(step)  # ipBlocks are written from the IPv6 addresses
            for check in step.checks:
                start = time.monotonic()
                ok, seen, rounds = v6.wait_matrix(check, timeout=20)
                what = f"{case.name} step {n}: {check.port}/{check.protocol} over IPv6" \
                       f"{' via Services' if check.via_service else ''}"
                assert ok, f"{what}\n{Reachability.render(seen, check.expected.with_loopback())}\n{cl.logs()[-4000:]}"
                print(f"{what}: as expected after {time.monotonic() - start:.2f}s ({rounds} rounds)")
                if "ip-block" not in case.name and check.protocol != "ICMP" and not check.via_service:
                    ok4, seen4, _ = v4.wait_matrix(check, timeout=10)
                    assert ok4, f"{what}, same policies on IPv4\n" \
                                f"{Reachability.render(seen4, check.expected.with_loopback())}"
    finally:
        v6.reset()
