"""End-to-end: K3s docs' HelmChartConfig examples that change how Traefik's entry points handle traffic.

Against the real behaviour, in one module-scoped cluster with a whoami backend:

1. access logs on (``logs.access.enabled``): each request is written to Traefik's log in its common
   format; off again once the HelmChartConfig is deleted;
2. an extra TCP entry point exposed on the Service, with an IngressRouteTCP on it: bytes sent to the
   node's port reach whoami unchanged (no HTTP router in between, so no X-Forwarded-* headers);
3. PROXY protocol trusted IPs on ``web``: a PROXY v1 header from a trusted peer sets the client address
   whoami sees; from an untrusted peer it is read and ignored; without the setting it is a bad request.

The chart renders each of these as Traefik's arguments (``--accesslog=true``,
``--entryPoints.pktcp.address=:9000/tcp``, ``--entryPoints.web.proxyProtocol.trustedIPs=...``); the
ingress must act on them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterator

import pytest
from helm_e2e import (
    ROLL,
    apply_config,
    curl,
    delete_config,
    has_args,
    is_ready,
    lacks_args,
    service_ports,
    settled,
    traefik_pods,
)
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: whoami}
spec:
  replicas: 1
  selector: {matchLabels: {app: whoami}}
  template:
    metadata: {labels: {app: whoami}}
    spec:
      containers:
      - name: whoami
        image: pyk3s/whoami
        args: ["--port", "8080"]
        ports: [{containerPort: 8080, name: web}]
        readinessProbe: {httpGet: {path: /health, port: web}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: whoami}
spec:
  selector: {app: whoami}
  ports: [{name: http, port: 80, targetPort: web}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: whoami}
spec:
  rules:
  - host: app.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}
"""

ROUTE_TCP = """
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: pk-tcp}
spec:
  entryPoints: [pktcp]
  routes:
  - match: HostSNI(`*`)
    services:
    - {name: whoami, port: 80}
"""


def exchange(ip: str, port: int, payload: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, read until the peer closes (the requests say Connection: close)."""
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def answer_of(ip: str, port: int, payload: bytes) -> bytes:
    """``exchange``, with b"" while the port does not answer yet (a rollout of Traefik or ServiceLB)."""
    try:
        return exchange(ip, port, payload)
    except OSError:
        return b""


@pytest.fixture
def reset_config(srv: ServerProcess) -> Iterator[None]:
    """Whatever a test leaves behind, the next one starts from the packaged settings."""
    yield
    srv.kubectl("delete", "ingressroutetcp.traefik.io", "pk-tcp", "--ignore-not-found")
    delete_config(srv)
    srv.wait_for(lambda: settled(srv, lambda p: True), timeout=ROLL, what="traefik settled again")


def request(path: str, host: str = "app.example.com") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


@pytest.fixture(scope="module")
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    server = ServerProcess(agent=True, extra_args=["--disable", "coredns"])
    try:
        server.start(timeout=60)
        server.kubectl("apply", "-f", "-", input=APP)
        server.wait_for(lambda: any(is_ready(p) for p in server.kubectl(
            "get", "pods", "-l", "app=whoami", "-o", "json").json()["items"]), timeout=ROLL, what="whoami Ready")
        server.wait_for(lambda: settled(server, lambda p: True), timeout=ROLL, what="traefik Ready")
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def node_ip(srv: ServerProcess) -> str:
    assert srv.node is not None
    ip = srv.node.ip
    srv.wait_for(lambda: curl("-H", "Host: app.example.com", f"http://{ip}/").stdout.startswith("Hostname: whoami-"),
                 timeout=60, what="whoami through port 80")
    return ip


def test_access_logs(srv: ServerProcess, node_ip: str, reset_config: None) -> None:
    apply_config(srv, "logs:\n  access:\n    enabled: true\n")
    pods = srv.wait_for(lambda: settled(srv, has_args("--accesslog=true")), timeout=ROLL,
                        what="traefik with access logs")
    name = pods[0]["metadata"]["name"]
    line = re.compile(r'"GET /pk-access-log\?n=1 HTTP/1.1" 200 ')

    def logged() -> bool:
        curl("-H", "Host: app.example.com", f"http://{node_ip}/pk-access-log?n=1")
        return bool(line.search(srv.kubectl("logs", "-n", "kube-system", name).out))
    srv.wait_for(logged, timeout=30, interval=1, what="the request in Traefik's access log")
    delete_config(srv)
    pods = srv.wait_for(lambda: settled(srv, lacks_args("--accesslog=true")), timeout=ROLL,
                        what="traefik without access logs")
    name = pods[0]["metadata"]["name"]
    srv.wait_for(lambda: curl("-H", "Host: app.example.com", f"http://{node_ip}/pk-access-log?n=1").stdout
                 .startswith("Hostname: whoami-"), timeout=30, what="the request served")
    assert not line.search(srv.kubectl("logs", "-n", "kube-system", name).out)


def test_extra_tcp_entry_point_routes_tcp(srv: ServerProcess, node_ip: str, reset_config: None) -> None:
    apply_config(srv, "ports:\n  pktcp:\n    port: 9000\n    expose:\n      default: true\n"
                      "    exposedPort: 9000\n    protocol: TCP\n")
    srv.kubectl("apply", "-f", "-", input=ROUTE_TCP)
    srv.wait_for(lambda: settled(srv, has_args("--entryPoints.pktcp.address=:9000/tcp")), timeout=ROLL,
                 what="traefik with the pktcp entry point")
    srv.wait_for(lambda: service_ports(srv).get("pktcp") == 9000, timeout=30, what="port 9000 on the Service")

    def through_tcp() -> bytes:
        answer = answer_of(node_ip, 9000, request("/over-tcp", host="tcp.example.com"))
        return answer if b"Hostname: whoami-" in answer else b""
    answer = srv.wait_for(through_tcp, timeout=60, interval=1, what="whoami through the TCP entry point")
    assert b"GET /over-tcp HTTP/1.1" in answer and b"Host: tcp.example.com" in answer
    assert b"X-Forwarded-For" not in answer  # passed through as bytes, not proxied as HTTP
    srv.kubectl("delete", "ingressroutetcp.traefik.io", "pk-tcp")
    delete_config(srv)
    srv.wait_for(lambda: "pktcp" not in service_ports(srv), timeout=60, what="port 9000 removed")


def test_proxy_protocol_trusted_ips(srv: ServerProcess, node_ip: str, reset_config: None) -> None:
    header = b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 80\r\n"
    apply_config(srv, "ports:\n  web:\n    proxyProtocol:\n      trustedIPs:\n        - 0.0.0.0/0\n")
    srv.wait_for(lambda: settled(srv, has_args("--entryPoints.web.proxyProtocol.trustedIPs=0.0.0.0/0")),
                 timeout=ROLL, what="traefik trusting PROXY headers")

    def via_proxy_header() -> bytes:
        answer = answer_of(node_ip, 80, header + request("/pp"))
        return answer if b"Hostname: whoami-" in answer else b""
    answer = srv.wait_for(via_proxy_header, timeout=60, interval=1, what="whoami behind a PROXY header")
    assert b"X-Forwarded-For: 203.0.113.7" in answer and b"X-Real-Ip: 203.0.113.7" in answer
    # no header: still served (awaited too: a pod of the previous revision may still be leaving the endpoints)
    srv.wait_for(lambda: b"Hostname: whoami-" in answer_of(node_ip, 80, request("/plain")), timeout=30, interval=1,
                 what="a request without a PROXY header served")

    apply_config(srv, "ports:\n  web:\n    proxyProtocol:\n      trustedIPs:\n        - 192.0.2.0/24\n")
    srv.wait_for(lambda: settled(srv, has_args("--entryPoints.web.proxyProtocol.trustedIPs=192.0.2.0/24")),
                 timeout=ROLL, what="traefik trusting another network")
    def untrusted() -> bytes:
        # until the endpoints drop the pod that trusted every address, it may still take a request
        answer = via_proxy_header()
        return answer if b"203.0.113.7" not in answer else b""
    answer = srv.wait_for(untrusted, timeout=60, interval=1, what="an untrusted PROXY header ignored")
    assert b"X-Forwarded-For: 203.0.113.7" not in answer

    delete_config(srv)
    srv.wait_for(lambda: settled(srv, lacks_args("--entryPoints.web.proxyProtocol.trustedIPs=192.0.2.0/24")),
                 timeout=ROLL, what="traefik without PROXY protocol")
    srv.wait_for(lambda: answer_of(node_ip, 80, header + request("/pp")).startswith(b"HTTP/1.1 400"), timeout=60,
                 interval=1, what="a PROXY header refused as a bad request")
    assert traefik_pods(srv)
