"""NetworkPolicy on one node, with real packets: the upstream e2e model (namespaces x, y, z; pods a, b, c
serving TCP and UDP on ports 80 and 81), every case's full 9x9 matrix probed from every pod, and the
same matrix from ``pyk3s netpol matrix``; then explain, events, a new pod's first packets, a kill -9 of
the server (its agent) without a window, and ``--disable-network-policy``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from netpol_cases import CASES, PODS, Case, Check, Reachability
from netpol_model import Model
from pyk3s_server import REPO, ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")]


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[ServerProcess, Model]]:
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb,coredns"])
    try:
        srv.start(timeout=90)
        m = Model(srv.kubectl)
        m.create()
        m.wait_ready()
        yield srv, m
    finally:
        srv.cleanup()


def case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def netpol_cli(srv: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyk3s", "netpol", *args, "--kubeconfig", str(srv.kubeconfig)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def cli_matrix(srv: ServerProcess, check: Check) -> dict[tuple[str, str], bool]:
    port = "icmp" if check.protocol == "ICMP" else f"{check.port}/{check.protocol}"
    res = netpol_cli(srv, "matrix", "-n", "x", "-n", "y", "-n", "z", "--port", port, "--json")
    assert res.returncode == 0, res.stderr
    table = next(iter(json.loads(res.stdout).values()))
    return {(s, d): table[f"{s} -> {d}"] for s in PODS for d in PODS}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_model_case(model: tuple[ServerProcess, Model], case: Case) -> None:
    srv, m = model
    try:
        for n, step in enumerate(case.steps):
            m.apply_step(step)
            for check in step.checks:
                want = check.expected.with_loopback()
                start = time.monotonic()
                ok, seen, rounds = m.wait_matrix(check)
                what = f"{case.name} step {n}: {check.port}/{check.protocol}{' via Services' if check.via_service else ''}"
                assert ok, f"{what}: probed (rows from, columns to; ! where not expected)\n" \
                           f"{Reachability.render(seen, want)}\n{srv.log()[-3000:]}"
                print(f"{what}: matrix as expected after {time.monotonic() - start:.2f}s ({rounds} probe rounds)")
                if not check.via_service:
                    assert cli_matrix(srv, check) == want, f"{what}: pyk3s netpol matrix disagrees"
    finally:
        m.reset()


def test_explain_names_the_deciding_rule(model: tuple[ServerProcess, Model]) -> None:
    srv, m = model
    m.apply_step(case('allow-from-namespace-by-label').steps[0])  # x/a accepts only from namespace y
    try:
        res = netpol_cli(srv, "explain", "y/b", "x/a", "80/tcp")
        assert res.returncode == 0, res.stdout + res.stderr
        assert "ALLOWED" in res.stdout and "x/allow-client-a-via-ns-selector ingress[0]" in res.stdout
        res = netpol_cli(srv, "explain", "z/b", "x/a")
        assert res.returncode == 1 and "DENIED" in res.stdout and "no rule allows it" in res.stdout
        res = netpol_cli(srv, "explain", m.ips["x/b"], "x/c", "81/udp")
        assert res.returncode == 0 and "not isolated" in res.stdout
        res = netpol_cli(srv, "explain", "x/nope", "x/a")
        assert res.returncode == 2 and "not found" in res.stderr
    finally:
        m.reset()


def test_policy_with_sctp_on_a_kernel_without_it_is_reported(model: tuple[ServerProcess, Model]) -> None:
    import socket

    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        pytest.skip("this kernel has SCTP: nothing to report")
    except OSError:
        pass
    srv, m = model
    m.apply_step(case('protocol-only-and-sctp-is-not-tcp').steps[0])  # x/b allows SCTP 80 only
    try:
        def reported() -> bool:
            evs = srv.kubectl("get", "events", "-n", "x", "--field-selector",
                              "involvedObject.kind=NetworkPolicy,involvedObject.name=sctp-80", "-o", "json").json()
            return any(e["reason"] == "ProtocolNotSupported" and e["type"] == "Warning" for e in evs["items"])
        srv.wait_for(reported, timeout=20, what="ProtocolNotSupported event")
        evs = srv.kubectl("get", "events", "-n", "x", "--field-selector", "reason=ProtocolNotSupported").out
        assert "the kernel has no SCTP" in evs and "sctp-80" in evs
        # its pods are still isolated: nothing reaches x/b on TCP
        ok, seen, _ = m.wait_matrix(Check(80, "TCP", Reachability().all_ingress("x/b", False)))
        assert ok, Reachability.render(seen, seen)
    finally:
        m.reset()


def test_the_node_always_reaches_its_own_pods(model: tuple[ServerProcess, Model]) -> None:
    import socket

    srv, m = model
    m.apply_step(case('default-deny-all').steps[0])  # namespace x: no ingress at all
    try:
        ok, seen, _ = m.wait_matrix(case('default-deny-all').steps[0].checks[0])
        assert ok, Reachability.render(seen, seen)
        # this test runs in the node's network namespace, like the kubelet's probes
        for key in ("x/a", "x/b", "x/c"):
            with socket.create_connection((m.ips[key], 80), timeout=3):
                pass
    finally:
        m.reset()


NEWCOMER = """
apiVersion: v1
kind: Pod
metadata: {name: newcomer, namespace: x, labels: {pod: newcomer}}
spec:
  terminationGracePeriodSeconds: 0
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["%(python)s", "-c", "%(script)s"]
"""
PROBE_SCRIPT = (
    "import socket,time\\n"
    "for i in range(40):\\n"
    "    try:\\n"
    "        socket.create_connection(('%(target)s', 80), timeout=0.2).close(); print('CONNECTED', i, flush=True)\\n"
    "    except OSError as e:\\n"
    "        print('refused', i, e, flush=True)\\n"
    "    time.sleep(0.05)\\n")


def test_a_new_pod_is_isolated_from_its_first_packet(model: tuple[ServerProcess, Model]) -> None:
    srv, m = model
    m.apply_step(case('default-deny-all').steps[0])  # namespace x: deny all ingress and egress
    try:
        script = (PROBE_SCRIPT % {"target": m.ips["y/a"]}).replace('"', '\\"')
        srv.kubectl("apply", "-f", "-", input=NEWCOMER % {"python": sys.executable, "script": script})
        srv.wait_for(lambda: srv.kubectl("get", "pod", "-n", "x", "newcomer", "-o",
                                         "jsonpath={.status.phase}").out in ("Succeeded", "Failed"),
                     timeout=60, what="newcomer finished")
        log = srv.kubectl("logs", "-n", "x", "newcomer").out
        assert "refused 0" in log, log
        assert "CONNECTED" not in log, f"the new pod sent before its policy was programmed:\n{log}"
    finally:
        srv.kubectl("delete", "pod", "-n", "x", "newcomer", "--wait=false", check=False)
        m.reset()


class Prober(threading.Thread):
    """Probes a few pairs every ~0.2 s and records what it sees, until stopped."""

    def __init__(self, m: Model, pairs: list[tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.m, self.pairs = m, pairs
        self.samples: list[tuple[float, tuple[str, str], bool]] = []
        self.stop_now = threading.Event()

    def run(self) -> None:
        while not self.stop_now.is_set():
            for src, dst in self.pairs:
                proc = subprocess.run(["ip", "netns", "exec", self.m.netns[src], sys.executable,
                                       str(REPO / "tests" / "support" / "netpol_probe.py"), "--timeout", "0.5"],
                                      input=json.dumps([[self.m.ips[dst], "TCP", 80]]), capture_output=True, text=True)
                self.samples.append((time.monotonic(), (src, dst), json.loads(proc.stdout or "[false]")[0]))
            time.sleep(0.2)


def test_kill9_of_the_agent_leaves_no_window(model: tuple[ServerProcess, Model]) -> None:
    srv, m = model
    m.apply_step(case('allow-from-namespace-by-label').steps[0])  # x/a accepts only from namespace y
    ok, seen, _ = m.wait_matrix(case('allow-from-namespace-by-label').steps[0].checks[0])
    assert ok
    prober = Prober(m, [("z/a", "x/a"), ("y/a", "x/a")])
    prober.start()
    try:
        time.sleep(1)
        killed = time.monotonic()
        srv.stop(signal.SIGKILL)
        time.sleep(2)  # down: the kernel keeps the last rules
        table = subprocess.run(["nft", "list", "table", "inet", f"pyk3s-netpol-{srv.bridge}"], capture_output=True,
                               text=True)
        assert table.returncode == 0, "the policy table went with the killed agent"
        srv.start(timeout=90)
        srv.wait_for(lambda: "True" in srv.kubectl("get", "node", srv.node_name, "-o",
                                                    "jsonpath={.status.conditions[?(@.type=='Ready')].status}").out,
                     timeout=60, what="node Ready again")
        time.sleep(3)  # the restarted agent has recomputed and replaced its table
    finally:
        prober.stop_now.set()
        prober.join(30)
    leaked = [(round(t - killed, 2), pair) for t, pair, ok in prober.samples if pair == ("z/a", "x/a") and ok]
    assert not leaked, f"x/a was reachable from z/a around the restart: {leaked}"
    timeline = [(round(t - killed, 2), ok) for t, pair, ok in prober.samples if pair == ("y/a", "x/a")]
    assert any(ok for _, ok in timeline), f"y/a never reached x/a: {timeline}"
    srv.wait_for(lambda: m.observe(Check(80, "TCP", Reachability()))[("y/a", "x/a")], timeout=30,
                 what=f"y/a reaching x/a after the restart (probes: {timeline})")
    print(f"{len(prober.samples)} probes across the kill -9 and restart; z/a never reached x/a")
    ok, seen, _ = m.wait_matrix(case('allow-from-namespace-by-label').steps[0].checks[0])
    assert ok, Reachability.render(seen, case('allow-from-namespace-by-label').steps[0].checks[0].expected.with_loopback())
    m.reset()
