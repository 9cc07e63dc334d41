"""Port-forward end to end: real kubectl (SPDY over WebSocket, then plain SPDY) and the Python client.

One server with its embedded agent; a ``pyk3s/whoami`` pod behind a Service. kubectl runs as a
subprocess forwarding a random free local port; curl goes through it; kubectl is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import yaml
from pyk3s_server import ServerProcess, free_port

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

POD = "pk-pf-web"
NS = "default"


@pytest.fixture(scope="module")
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    s = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb,coredns"])
    try:
        s.start(timeout=60)
        docs = [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "labels": {"app": POD}},
             "spec": {"terminationGracePeriodSeconds": 1,
                      "containers": [{"name": "web", "image": "pyk3s/whoami", "ports": [{"containerPort": 80}],
                                      "readinessProbe": {"httpGet": {"path": "/health", "port": 80},
                                                         "periodSeconds": 1}}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": POD},
             "spec": {"selector": {"app": POD}, "ports": [{"port": 8080, "targetPort": 80}]}},
        ]
        s.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        s.wait_for(lambda: "True" in s.kubectl("get", "pod", POD, "-o",
                                               "jsonpath={.status.conditions[?(@.type=='Ready')].status}").out,
                   timeout=60, what="whoami pod ready")
        yield s
    finally:
        s.cleanup()


@contextmanager
def port_forward(srv: ServerProcess, target: str, remote: int, env: dict[str, str] | None = None
                 ) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    local = free_port()
    cmd = ["kubectl", "--kubeconfig", str(srv.kubeconfig), "--cache-dir", str(srv.tmp / "pf-cache"),
           "port-forward", "-n", NS, target, f"{local}:{remote}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:N -> M" once listening
        assert "Forwarding from" in line, f"kubectl port-forward did not start: {line!r} {proc.stderr.read()!r}"
        yield local, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def curl(port: int, path: str = "/", timeout: float = 15) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--max-time", str(int(timeout)), f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, timeout=timeout + 5)


def _exercise(port: int) -> None:
    for _ in range(3):
        r = curl(port)
        assert r.returncode == 0, r.stderr
        assert b"Hostname:" in r.stdout and b"GET / HTTP/1.1" in r.stdout
    big = curl(port, "/data?size=3000000")
    assert big.returncode == 0 and len(big.stdout) == 3000000, (big.returncode, len(big.stdout), big.stderr)
    # two connections at once, each with keep-alive requests (curl reuses its connection for both URLs)
    results: list[subprocess.CompletedProcess[bytes]] = []

    def two_requests() -> None:
        results.append(subprocess.run(
            ["curl", "-sS", "--max-time", "15", f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/api"],
            capture_output=True, timeout=20))

    threads = [threading.Thread(target=two_requests) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    for r in results:
        assert r.returncode == 0, r.stderr
        assert r.stdout.count(b"Hostname") >= 1 and b'"hostname"' in r.stdout.lower()


def test_kubectl_port_forward_websocket_tunnel(srv: ServerProcess) -> None:
    with port_forward(srv, f"pod/{POD}", 80) as (port, proc):
        _exercise(port)
        time.sleep(6)  # kubectl pings the SPDY session every 5s; it must stay usable
        r = curl(port)
        assert r.returncode == 0 and b"Hostname:" in r.stdout, r.stderr
        assert proc.poll() is None


def test_kubectl_port_forward_plain_spdy(srv: ServerProcess) -> None:
    with port_forward(srv, f"pod/{POD}", 80, env={"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}) as (port, proc):
        _exercise(port)
        assert proc.poll() is None


def test_kubectl_port_forward_service(srv: ServerProcess) -> None:
    with port_forward(srv, f"svc/{POD}", 8080) as (port, _proc):
        r = curl(port)
        assert r.returncode == 0 and b"Hostname:" in r.stdout, r.stderr


def test_kubectl_port_forward_unused_port_reports_the_error(srv: ServerProcess) -> None:
    with port_forward(srv, f"pod/{POD}", 81) as (port, proc):
        r = curl(port, timeout=10)
        assert r.returncode != 0
        try:
            proc.wait(timeout=15)  # kubectl gives up the session after a forwarding error
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=10)
        assert proc.stderr is not None
        err = proc.stderr.read()
    assert "error forwarding port 81 to pod" in err and "connection refused" in err, err


def test_python_client_portforward(srv: ServerProcess) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward

    api_client = config.new_client_from_config(str(srv.kubeconfig))
    try:
        api = client.CoreV1Api(api_client)
        pf = portforward(api.connect_get_namespaced_pod_portforward, POD, NS, ports="80")
        sock = pf.socket(80)
        sock.setblocking(True)
        sock.settimeout(15)
        sock.sendall(b"GET /api HTTP/1.0\r\nHost: pf\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        assert data.startswith(b"HTTP/1.") and b'"hostname"' in data.lower(), data[:300]
        assert pf.error(80) is None

        pf = portforward(api.connect_get_namespaced_pod_portforward, POD, NS, ports="81")
        sock = pf.socket(81)
        sock.settimeout(15)
        deadline = time.monotonic() + 15
        while sock.recv(1024) and time.monotonic() < deadline:
            pass
        sock.close()
        assert "connection refused" in (pf.error(81) or ""), pf.error(81)
    finally:
        api_client.close()
