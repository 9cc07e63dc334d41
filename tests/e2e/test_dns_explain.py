"""`pyk3s dns explain`: which plugin answers and from which object, against a real API server."""

from __future__ import annotations

import os
import subprocess
import sys

from pyk3s_server import REPO, ServerProcess


def explain(srv: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(srv.kubeconfig)}
    return subprocess.run([sys.executable, "-m", "pyk3s", "dns", "explain", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60)


def test_explain_names_the_service_and_never_asks_upstream(api_server: ServerProcess) -> None:
    k = api_server.kubectl
    k("create", "namespace", "pk-explain")
    k("-n", "pk-explain", "create", "service", "clusterip", "web", "--tcp=80:8080")
    ip = k("-n", "pk-explain", "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").out.strip()
    out = explain(api_server, "web.pk-explain.svc.cluster.local")
    assert out.returncode == 0, out.stderr
    assert "kubernetes" in out.stdout and "pk-explain/web" in out.stdout
    assert f"answer: web.pk-explain.svc.cluster.local. 5 IN A {ip}" in out.stdout
    missing = explain(api_server, "nope.pk-explain.svc.cluster.local")
    assert "result: NXDOMAIN" in missing.stdout
    # a name outside the cluster: forward only says whom it would ask
    ext = explain(api_server, "example.org")
    assert ext.returncode == 0, ext.stderr
    assert "forward: would ask" in ext.stdout and "not sent" in ext.stdout


def test_explain_prints_only_its_answer(api_server: ServerProcess) -> None:
    """Nothing but the story: no warnings about the empty coredns-custom globs, no unclosed API session."""
    out = explain(api_server, "kubernetes.default.svc.cluster.local")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0] == "question: kubernetes.default.svc.cluster.local A"
    assert all(line.startswith(("question:", "server block:", "chain:", "  ", "result:")) for line in lines), lines
