"""End-to-end: TCP and UDP routers of the packaged Traefik in a real cluster (`pyk3s server` with its agent).

One module-scoped cluster; a HelmChartConfig adds the entry points K3s users add for databases and DNS
(``pktcp`` :9400/tcp with PROXY protocol from anyone, ``pkudp`` :9200/udp, ``pkuntrusted`` :9300/tcp that
trusts nobody's PROXY headers), access logs, a 3s read timeout on ``websecure`` and PROXY protocol on
``web``. Real packets to the node address, through ServiceLB, in order:

1. TLS passthrough on ``websecure``: two SNI names to two whoami pods that terminate TLS themselves; the
   client verifies each backend's own certificate (only the pod has its key) and gets the pod's answer;
2. ``HostSNI(`*`)`` on ``pktcp`` to a whoamitcp echo; PROXY protocol v1 and v2 from a trusted client: the
   ingress's access log names the original address;
3. a UDP echo through an IngressRouteUDP on ``pkudp`` (one session per client address), relayed in
   userspace as access logs are on, the session in the access log (the kernel relay of UDP routers:
   ``test_ingress_udp_relay.py``);
4. PROXY protocol v1 and v2 on ``web`` to an HTTP router: whoami sees the original address in
   X-Forwarded-For; an untrusted client's header is read and ignored, a malformed one closes the connection;
5. bad input: a rule that does not parse, an unknown TLS option, an undeclared entry point, a UDP route on a
   TCP entry point (each an error on that router in /api/tcp|udp/routers, the rest keeps working), a
   ClientHello that never completes (closed after the read timeout);
6. the dashboard and ``pyk3s ingress explain tcp://`` show the TCP routers.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from helm_e2e import ROLL, apply_config, curl, has_args, is_ready, service_ports, settled, traefik_pods
from pyk3s_server import REPO, ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

VALUES = """
logs:
  access:
    enabled: true
ports:
  web:
    proxyProtocol:
      trustedIPs: [0.0.0.0/0]
  websecure:
    transport:
      respondingTimeouts:
        readTimeout: 3s
  pktcp:
    port: 9400
    expose: {default: true}
    exposedPort: 9400
    protocol: TCP
    proxyProtocol:
      insecure: true
  pkuntrusted:
    port: 9300
    expose: {default: true}
    exposedPort: 9300
    protocol: TCP
    proxyProtocol:
      trustedIPs: [192.0.2.0/24]
  pkudp:
    port: 9200
    expose: {default: true}
    exposedPort: 9200
    protocol: UDP
"""


def cert_pair(host: str) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


CERTS = {name: cert_pair(f"{name}.example.com") for name in ("alpha", "beta")}


def tls_app(name: str) -> str:
    crt, key = CERTS[name]
    b64 = base64.b64encode
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: {name}-tls}}
type: kubernetes.io/tls
data: {{tls.crt: {b64(crt.encode()).decode()}, tls.key: {b64(key.encode()).decode()}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: whoami
        image: traefik/whoami
        args: ["--port", "8443", "--name", "{name}", "--cert", "/certs/tls.crt", "--key", "/certs/tls.key"]
        ports: [{{containerPort: 8443, name: https}}]
        volumeMounts: [{{name: certs, mountPath: /certs}}]
      volumes: [{{name: certs, secret: {{secretName: {name}-tls}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: https, port: 443, targetPort: https}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {{name: {name}}}
spec:
  entryPoints: [websecure]
  routes:
  - match: HostSNI(`{name}.example.com`)
    services: [{{name: {name}, port: 443}}]
  tls: {{passthrough: true}}
---
"""


APPS = tls_app("alpha") + tls_app("beta") + """
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: tcp
        image: traefik/whoamitcp
        args: ["--port", ":9000", "--name", "tcp-echo"]
        ports: [{containerPort: 9000, name: tcp}]
      - name: udp
        image: traefik/whoamiudp
        args: ["--port", ":9053", "--name", "udp-echo"]
        ports: [{containerPort: 9053, name: udp, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: tcp, port: 9000, targetPort: tcp}, {name: udp, port: 53, targetPort: udp, protocol: UDP}]
---
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
        args: ["--port", "8080", "--verbose"]
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
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: whoami}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`app.example.com`)
    kind: Rule
    services: [{name: whoami, port: 80}]
  - match: Host(`traefik.example.com`) && PathPrefix(`/api`)
    kind: Rule
    services: [{name: api@internal, kind: TraefikService}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: echo}
spec:
  entryPoints: [pktcp, pkuntrusted]
  routes:
  - match: HostSNI(`*`)
    services: [{name: echo, port: 9000}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {name: echo}
spec:
  entryPoints: [pkudp]
  routes:
  - services: [{name: echo, port: 53}]
---
"""

BROKEN = """
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: broken}
spec:
  entryPoints: [websecure]
  tls: {}
  routes:
  - match: HostSNI(`bad.example.com`) &&
    services: [{name: alpha, port: 443}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: no-such-option}
spec:
  entryPoints: [websecure]
  tls: {options: {name: nope}}
  routes:
  - match: HostSNI(`opt.example.com`)
    services: [{name: alpha, port: 443}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: undeclared}
spec:
  entryPoints: [nowhere]
  routes:
  - match: HostSNI(`*`)
    services: [{name: echo, port: 9000}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {name: on-tcp}
spec:
  entryPoints: [pktcp]
  routes:
  - services: [{name: echo, port: 53}]
"""


def proxy_v1(src: str = "203.0.113.7", port: int = 4242) -> bytes:
    return f"PROXY TCP4 {src} 10.0.0.1 {port} 80\r\n".encode()


def proxy_v2(src: str = "203.0.113.9", port: int = 4343) -> bytes:
    return (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + socket.inet_aton(src) + socket.inet_aton("10.0.0.1")
            + port.to_bytes(2, "big") + (80).to_bytes(2, "big"))


def exchange(ip: str, port: int, payload: bytes, timeout: float = 5, until: bytes = b"") -> bytes:
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(payload)
        out = b""
        while True:
            try:
                data = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            out += data
            if until and until in out:
                break
    return out


def attempt(fn, *args, **kw):  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kw)
    except OSError:
        return b""


def tls_answer(ip: str, sni: str, ca_pem: str) -> tuple[str, bytes]:
    """(CN of the certificate the client saw and verified against ``ca_pem``, the HTTP answer)."""
    ctx = ssl.create_default_context(cadata=ca_pem)
    with socket.create_connection((ip, 443), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=sni) as tls:
        cert = tls.getpeercert()
        tls.sendall(f"GET /pt HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        body = b""
        while chunk := tls.recv(65536):
            body += chunk
    cn = dict(x[0] for x in cert["subject"])["commonName"]
    return cn, body


def api(ip: str, path: str) -> object:
    r = curl("-H", "Host: traefik.example.com", f"http://{ip}/api/{path}")
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.startswith(("[", "{")) else None


def traefik_log(srv: ServerProcess) -> str:
    pods = traefik_pods(srv)
    return srv.kubectl("logs", "-n", "kube-system", pods[0]["metadata"]["name"]).out if pods else ""


@pytest.fixture(scope="module")
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    server = ServerProcess(agent=True, extra_args=["--disable", "coredns"])
    try:
        server.start(timeout=60)
        apply_config(server, VALUES)
        server.kubectl("apply", "-f", "-", input=APPS)
        server.wait_for(lambda: settled(server, has_args("--entryPoints.pkudp.address=:9200/udp",
                                                         "--entryPoints.pktcp.proxyProtocol.insecure")),
                        timeout=ROLL, what="traefik with the extra entry points")
        server.wait_for(lambda: all(any(is_ready(p) for p in server.kubectl(
            "get", "pods", "-l", f"app={app}", "-o", "json").json()["items"]) for app in ("alpha", "beta", "echo", "whoami")),
            timeout=ROLL, what="backends Ready")
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def node_ip(srv: ServerProcess) -> str:
    assert srv.node is not None
    ip = srv.node.ip
    srv.wait_for(lambda: service_ports(srv).get("pkudp") == 9200, timeout=60, what="port 9200 on the Service")
    srv.wait_for(lambda: curl("-H", "Host: app.example.com", f"http://{ip}/").stdout.startswith("Hostname: whoami-"),
                 timeout=90, what="whoami through port 80")
    return ip


# -- 1 -------------------------------------------------------------------------------------------------------
def test_tls_passthrough_two_names_backend_certificates(srv: ServerProcess, node_ip: str) -> None:
    for name in ("alpha", "beta"):
        cn, body = srv.wait_for(lambda n=name: attempt(tls_answer, node_ip, f"{n}.example.com", CERTS[n][0]) or None,
                                timeout=60, interval=1, what=f"{name} through TLS passthrough")
        assert cn == f"{name}.example.com"
        assert body.startswith(b"HTTP/1.1 200") and f"Name: {name}".encode() in body
        assert b"X-Forwarded-For" not in body  # the bytes went through untouched: no HTTP proxy in between
    # the other backend's certificate does not verify for this name: each SNI reaches its own pod
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_answer(node_ip, "alpha.example.com", CERTS["beta"][0])


# -- 2 -------------------------------------------------------------------------------------------------------
def test_catch_all_tcp_echo_and_proxy_protocol_in_access_log(srv: ServerProcess, node_ip: str) -> None:
    answer = srv.wait_for(lambda: attempt(exchange, node_ip, 9400, b"hello", until=b"hello"), timeout=60,
                          interval=1, what="the TCP echo through pktcp")
    assert answer == b"Received: hello"
    for header, src in ((proxy_v1("203.0.113.7"), "203.0.113.7"), (proxy_v2("203.0.113.9"), "203.0.113.9")):
        assert exchange(node_ip, 9400, header + b"WHO", until=b"RemoteAddr").startswith(b"Name: tcp-echo")
        srv.wait_for(lambda s=src: s in traefik_log(srv), timeout=30, interval=1,
                     what=f"the TCP connection from {src} in the access log")
    log = traefik_log(srv)
    line = next(x for x in log.splitlines() if "203.0.113.9" in x)
    assert "default-echo-" in line  # the router's name (protocol TCP, the PROXY header's client)
    # an untrusted peer's header is read and dropped: the connection goes on with the real address
    assert exchange(node_ip, 9300, proxy_v1("198.51.100.77") + b"ping", until=b"ping") == b"Received: ping"
    time.sleep(1)
    assert "198.51.100.77" not in traefik_log(srv)


# -- 3 -------------------------------------------------------------------------------------------------------
def test_udp_echo_through_ingressrouteudp(srv: ServerProcess, node_ip: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.connect((node_ip, 9200))

        def echo() -> bytes:
            s.send(b"ping")
            try:
                return s.recv(100)
            except OSError:
                return b""
        assert srv.wait_for(echo, timeout=60, interval=0.5, what="the UDP echo") == b"Received: ping"
        s.send(b"WHO")
        assert s.recv(1000).startswith(b"Name: udp-echo")
    # access logs are on: the router is relayed in userspace (the API says why) and each session is logged
    # once it ends (udp.timeout 3s)
    routers = srv.wait_for(lambda: api(node_ip, "udp/routers"), timeout=60, interval=1, what="/api/udp/routers")
    echo = next(r for r in routers if r["name"] == "default-echo-0@kubernetescrd")
    assert echo["relay"] == "userspace: access logs are on (a session's record needs its byte counts)"
    srv.wait_for(lambda: '"default-echo-0@kubernetescrd"' in traefik_log(srv), timeout=30, interval=1,
                 what="the UDP session in the access log")


# -- 4 -------------------------------------------------------------------------------------------------------
def test_proxy_protocol_to_http_router(srv: ServerProcess, node_ip: str) -> None:
    request = b"GET /pp HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n"
    for header, src in ((proxy_v1("203.0.113.17"), "203.0.113.17"), (proxy_v2("203.0.113.19"), "203.0.113.19")):
        answer = srv.wait_for(lambda h=header: (a := attempt(exchange, node_ip, 80, h + request)).startswith(
            b"HTTP/1.1 200") and a, timeout=60, interval=1, what="whoami behind a PROXY header")
        assert f"X-Forwarded-For: {src}".encode() in answer and f"X-Real-Ip: {src}".encode() in answer
    whoami = srv.kubectl("get", "pods", "-l", "app=whoami", "-o", "json").json()["items"][0]["metadata"]["name"]
    assert "X-Forwarded-For: 203.0.113.19" in srv.kubectl("logs", whoami).out  # whoami's own log
    assert exchange(node_ip, 80, request).startswith(b"HTTP/1.1 200")  # no header: still served
    # a malformed header closes the connection, nothing reaches whoami
    assert exchange(node_ip, 80, b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n" + request) == b""


# -- 5 -------------------------------------------------------------------------------------------------------
def test_bad_input_is_reported_and_the_rest_works(srv: ServerProcess, node_ip: str) -> None:
    srv.kubectl("apply", "-f", "-", input=BROKEN)

    def routers() -> dict[str, dict] | None:
        tcp, udp = api(node_ip, "tcp/routers"), api(node_ip, "udp/routers")
        if not isinstance(tcp, list) or not isinstance(udp, list):
            return None
        found = {r["name"].split("-")[1]: r for r in tcp + udp if r["name"].startswith("default-")}
        return found if {"broken", "no", "undeclared", "on"} <= set(found) else None
    found = srv.wait_for(routers, timeout=60, interval=1, what="the broken routers in the API")
    assert found["broken"]["status"] == "disabled" and "invalid rule" in found["broken"]["error"][0]
    assert found["no"]["error"] == ["unknown TLS options: default-nope@kubernetescrd"]
    assert found["undeclared"]["error"] == ['entryPoint "nowhere" doesn\'t exist', "no valid entryPoint for this router"]
    assert found["on"]["error"][0] == 'entryPoint "pktcp" doesn\'t exist for UDP routers (it is not declared /udp)'
    assert found["alpha"]["status"] == "enabled" and found["echo"]["status"] == "enabled"
    # every other router keeps working
    assert tls_answer(node_ip, "alpha.example.com", CERTS["alpha"][0])[0] == "alpha.example.com"
    assert exchange(node_ip, 9400, b"still", until=b"still") == b"Received: still"
    # the router with an unknown TLS option closes its connections
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with socket.create_connection((node_ip, 443), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="opt.example.com") as tls:
            tls.recv(1)
    # a ClientHello that never completes is closed after the entry point's read timeout (3s)
    with socket.create_connection((node_ip, 443), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        start = time.monotonic()
        try:
            assert s.recv(10) == b""
        except ConnectionResetError:
            pass
        assert 2 < time.monotonic() - start < 8
    srv.kubectl("delete", "-f", "-", input=BROKEN)


# -- 6 -------------------------------------------------------------------------------------------------------
def test_api_dashboard_and_explain(srv: ServerProcess, node_ip: str) -> None:
    overview = srv.wait_for(lambda: api(node_ip, "overview"), timeout=60, interval=1, what="/api/overview")
    assert isinstance(overview, dict) and overview["tcp"]["routers"]["total"] >= 3 and overview["udp"]["routers"]["total"] >= 1
    eps = {e["name"]: e for e in api(node_ip, "entrypoints")}  # type: ignore[union-attr]
    assert eps["pkudp"]["address"] == ":9200/udp" and eps["pktcp"]["proxyProtocol"] == {"insecure": True}
    page = curl("-H", "Host: traefik.example.com", f"http://{node_ip}/api/rawdata")
    raw = json.loads(page.stdout)
    assert any(n.startswith("default-alpha-") for n in raw["tcpRouters"]) and raw["udpRouters"]
    r = subprocess.run([sys.executable, "-m", "pyk3s", "ingress", "explain", "tcp://node:443", "--sni", "beta.example.com",
                        "--kubeconfig", str(srv.kubeconfig)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "router:      default-beta-" in r.stdout and "TLS passthrough" in r.stdout
