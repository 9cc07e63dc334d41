"""End-to-end: the packaged Traefik-compatible ingress inside a real `pyk3s server` with its agent.

One module-scoped cluster with every packaged add-on on (traefik and servicelb NOT disabled); the tests
run in file order against it and send real packets to the node address on a link of our own:

1. traefik.yaml deploys: the pod runs `pyk3s traefik`, is Ready through /ping, ServiceLB publishes
   kube-system/traefik on the node address, port 80 answers Traefik's 404;
2. an Ingress (default class) and an IngressRoute to a whoami Deployment route by host and path;
3. the networking guide's dashboard example: 401 / dashboard / API; the listing without `---` fails in
   kubectl and in the manifests directory (ParseManifestFailed naming the line of the second document);
4. TLS with SNI from a kubernetes.io/tls Secret, Traefik's default certificate otherwise;
5. a WebSocket through the ingress to whoami's /echo;
6. the dashboard in headless Chromium (screenshot kept in tests/e2e/artifacts/, DOM checked);
7. editing traefik.yaml (the values of HelmChart traefik) in the manifests directory rolls the
   Deployment; a restart stages the packaged file again; a restart with `--disable traefik` then removes
   every Traefik object, the HelmCharts, their release records and the file (an
   edited copy would be kept and applied as the user's own: the deploy controller's reading of the
   guide's recipe, tested by the manifests area).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyk3s_server import REPO, ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]


def _shared() -> Path:
    """../shared beside the checkout (for a git worktree: beside its main checkout)."""
    here = REPO.parent / "shared"
    if here.is_dir():
        return here
    common = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                            capture_output=True, text=True).stdout.strip()
    beside_main = Path(common).parent.parent / "shared" if common else here
    return beside_main if beside_main.is_dir() else here


GUIDE = _shared() / "docs" / "k3s-networking-guide.md"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
GUIDE_LISTING = Path(__file__).resolve().parent / "guide" / "dashboard.yaml"

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: whoami}
spec:
  replicas: 2
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
      - path: /ing
        pathType: Prefix
        backend: {service: {name: whoami, port: {number: 80}}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: whoami-crd}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`crd.example.com`) && PathPrefix(`/crd`)
    kind: Rule
    services:
    - {name: whoami, port: 80}
  - match: Host(`ws.example.com`)
    kind: Rule
    services:
    - {name: whoami, port: http}
"""


# -- helpers ---------------------------------------------------------------------------------------------

def guide_listing() -> str:
    """The dashboard listing exactly as the guide prints it (no `---` after the Secret): the copy kept
    in tests/e2e/guide/, checked against the guide itself when the guide is beside the checkout."""
    listing = GUIDE_LISTING.read_text()
    if GUIDE.exists():
        m = re.search(r"dashboard：\n\n```\n(.*?)```", GUIDE.read_text(), re.S)
        assert m, "dashboard listing not found in the networking guide"
        assert m.group(1) == listing, f"{GUIDE_LISTING} differs from the guide's listing"
    return listing


def with_separator(listing: str) -> str:
    marker = "apiVersion: traefik.containo.us/v1alpha1\nkind: IngressRoute"
    assert listing.count(marker) == 1
    return listing.replace(marker, "---\n" + marker)


def curl(*args: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-m", str(timeout), *args], capture_output=True, text=True,
                          timeout=timeout + 5)


def is_ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def traefik_pods(srv: ServerProcess) -> list[dict]:
    items = srv.kubectl("get", "pods", "-n", "kube-system", "-l", "app.kubernetes.io/name=traefik",
                        "-o", "json").json()["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def with_log_level(text: str, level: str) -> str:
    """traefik.yaml with ``logs.general.level`` set in HelmChart traefik's values."""
    import yaml

    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        if d["kind"] == "HelmChart" and d["metadata"]["name"] == "traefik":
            values = yaml.safe_load(d["spec"].get("valuesContent") or "") or {}
            values.setdefault("logs", {}).setdefault("general", {})["level"] = level
            d["spec"]["valuesContent"] = yaml.safe_dump(values, sort_keys=False)
    return yaml.safe_dump_all(docs, sort_keys=False)


def cmdline(p: dict) -> list[str]:
    pid = int(p["status"]["containerStatuses"][0]["containerID"].removeprefix("pyk3s://"))
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def events(srv: ServerProcess, name: str, namespace: str = "kube-system") -> list[dict]:
    return srv.kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}",
                       "-o", "json").json()["items"]


def make_cert(host: str, directory: Path) -> tuple[Path, Path]:
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
    crt, pem = directory / "tls.crt", directory / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def served_cert_cn(ip: str, sni: str) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, 443), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def chromium(url: str, node_ip: str, *mode: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``url`` with traefik.example.com mapped to the node address; killed as a
    process group on timeout."""
    profile = tempfile.mkdtemp(prefix="pk-chromium-")
    argv = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
            "--virtual-time-budget=8000", f"--host-resolver-rules=MAP traefik.example.com {node_ip}", *mode, url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


# -- the cluster -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    server = ServerProcess(agent=True)
    try:
        server.start(timeout=60)
        yield server
    finally:
        server.cleanup()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert server.ident not in links and server.nft_table not in tables, "cluster left links or nft tables"


@pytest.fixture(scope="module")
def node_ip(srv: ServerProcess) -> str:
    assert srv.node is not None
    return srv.node.ip


# -- 1. the packaged traefik.yaml ------------------------------------------------------------------------

def test_packaged_traefik_runs_and_is_published(srv: ServerProcess, node_ip: str) -> None:
    pod = srv.wait_for(lambda: next((p for p in traefik_pods(srv) if is_ready(p)), None), timeout=90,
                       what="a Ready traefik pod")
    c = pod["spec"]["containers"][0]
    assert c["image"].startswith("rancher/mirrored-library-traefik:")
    assert c["readinessProbe"]["httpGet"]["path"] == "/ping" and c["livenessProbe"]["httpGet"]["path"] == "/ping"
    argv = cmdline(pod)
    assert argv[1:4] == ["-m", "pyk3s", "traefik"], argv
    assert "--providers.kubernetescrd" in argv and "--entryPoints.web.address=:8000/tcp" in argv

    def lb_ip() -> str:
        return srv.kubectl("get", "svc", "-n", "kube-system", "traefik",
                           "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}").out
    assert srv.wait_for(lambda: lb_ip() == node_ip, timeout=60, what="traefik LB status") is True
    svclb = srv.kubectl("get", "ds", "-n", "kube-system", "-l", "svccontroller.k3s.cattle.io/svcname=traefik",
                        "-o", "json").json()["items"]
    assert len(svclb) == 1 and svclb[0]["metadata"]["name"].startswith("svclb-traefik-")

    res = srv.wait_for(lambda: (r := curl("-i", f"http://{node_ip}:80/")).returncode == 0 and r, timeout=30,
                       what="port 80 answering")
    head, _, body = res.stdout.partition("\n\n")
    assert head.startswith("HTTP/1.1 404 Not Found")
    assert "Content-Type: text/plain; charset=utf-8" in head and "X-Content-Type-Options: nosniff" in head
    assert body == "404 page not found\n"


# -- 2. Ingress and IngressRoute to whoami ---------------------------------------------------------------

def test_ingress_and_ingressroute_route_through_port_80(srv: ServerProcess, node_ip: str) -> None:
    srv.kubectl("apply", "-f", "-", input=APP)
    srv.wait_for(lambda: sum(is_ready(p) for p in srv.kubectl("get", "pods", "-l", "app=whoami", "-o", "json")
                             .json()["items"]) == 2, timeout=60, what="whoami Ready")

    ing = srv.kubectl("get", "ingress", "whoami", "-o", "json").json()
    assert ing["spec"]["ingressClassName"] == "traefik"  # the default IngressClass from traefik.yaml

    def routed(host: str, path: str) -> str:
        r = curl("-H", f"Host: {host}", f"http://{node_ip}{path}")
        return r.stdout if r.returncode == 0 and r.stdout.startswith("Hostname: whoami-") else ""

    body = srv.wait_for(lambda: routed("app.example.com", "/ing/a?x=1"), timeout=30, what="Ingress route")
    assert "GET /ing/a?x=1 HTTP/1.1" in body and "Host: app.example.com" in body
    assert "X-Forwarded-Proto: http" in body and "X-Forwarded-Port: 80" in body
    xff = re.search(r"X-Forwarded-For: (\S+)", body)
    assert xff and "::ffff:" not in xff.group(1)
    assert re.search(r"X-Forwarded-Server: traefik-", body)
    body = srv.wait_for(lambda: routed("crd.example.com", "/crd/b"), timeout=30, what="IngressRoute route")
    assert "GET /crd/b HTTP/1.1" in body and "Host: crd.example.com" in body

    # host and path both matter
    for host, path in (("other.example.com", "/ing/a"), ("app.example.com", "/crd/b"), ("crd.example.com", "/ing")):
        r = curl("-i", "-H", f"Host: {host}", f"http://{node_ip}{path}")
        assert r.stdout.startswith("HTTP/1.1 404") and r.stdout.endswith("404 page not found\n"), (host, path)
    # both replicas serve
    seen = {routed("app.example.com", "/ing").splitlines()[0] for _ in range(8)}
    assert len(seen) == 2, seen

    def status_ip() -> str:
        return srv.kubectl("get", "ingress", "whoami", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}").out
    srv.wait_for(lambda: status_ip() == node_ip, timeout=30, what="Ingress status")
    assert node_ip in srv.kubectl("get", "ingress", "whoami").out


# -- 3. the guide's dashboard example --------------------------------------------------------------------

def test_guide_dashboard_example(srv: ServerProcess, node_ip: str, tmp_path: Path) -> None:
    listing = guide_listing()
    (tmp_path / "dashboard.yaml").write_text(with_separator(listing))
    out = srv.kubectl("apply", "-f", str(tmp_path / "dashboard.yaml")).out
    assert "secret/authsecret" in out and "ingressroute.traefik.containo.us/traefik-dashboard" in out
    assert "middleware.traefik.containo.us/auth" in out

    host = ("-H", "Host: traefik.example.com")
    res = srv.wait_for(lambda: (r := curl("-i", *host, f"http://{node_ip}/dashboard/")).stdout.startswith(
        "HTTP/1.1 401") and r, timeout=30, what="dashboard router")
    head, _, body = res.stdout.partition("\n\n")
    assert body == "401 Unauthorized\n"
    assert "Www-Authenticate: Basic realm=\"traefik\"" in head and "Content-Type: text/plain\n" in head
    assert curl("-i", "-u", "test:wrong", *host, f"http://{node_ip}/dashboard/").stdout.startswith("HTTP/1.1 401")

    res = curl("-i", "-u", "test:test", *host, f"http://{node_ip}/dashboard/")
    head, _, body = res.stdout.partition("\n\n")
    assert head.startswith("HTTP/1.1 200") and "Content-Security-Policy: frame-src 'self'" in head
    assert "<html" in body and "HTTP routers" in body
    res = curl("-u", "test2:test2", *host, f"http://{node_ip}/api/overview")
    overview = json.loads(res.stdout)
    assert overview["http"]["middlewares"]["total"] >= 1 and "KubernetesCRD" in overview["providers"]
    routers = json.loads(curl("-u", "test:test", *host, f"http://{node_ip}/api/http/routers").stdout)
    dash = [r for r in routers if r["name"].startswith("default-traefik-dashboard-")]
    assert dash and dash[0]["status"] == "enabled" and dash[0]["service"] == "api@internal"
    assert dash[0]["middlewares"] == ["default-auth@kubernetescrd"]

    # as printed (no `---`): kubectl sends one merged object and the API server rejects the Secret's key
    (tmp_path / "as-printed.yaml").write_text(listing)
    res = srv.kubectl("apply", "-f", str(tmp_path / "as-printed.yaml"), check=False)
    assert res.rc != 0 and 'unknown field "data"' in res.err, res.err
    # ... and in the manifests directory the deploy controller names the line of the second document
    second = 1 + listing.splitlines().index("apiVersion: traefik.containo.us/v1alpha1")
    target = srv.manifests_dir / "pk-dashboard.yaml"
    target.write_text(listing)
    try:
        def parse_failed() -> str:
            return next((e["message"] for e in events(srv, "pk-dashboard") if e["reason"] == "ParseManifestFailed"), "")
        msg = srv.wait_for(parse_failed, timeout=40, what="ParseManifestFailed event")
        assert str(target) in msg and f"second document probably starts at line {second}" in msg
        assert "---" in msg
    finally:
        target.unlink(missing_ok=True)


# -- 4. TLS with SNI -------------------------------------------------------------------------------------

def test_tls_sni_from_secret_and_default_certificate(srv: ServerProcess, node_ip: str, tmp_path: Path) -> None:
    crt, key = make_cert("secure.example.com", tmp_path)
    srv.kubectl("create", "secret", "tls", "pk-secure-tls", f"--cert={crt}", f"--key={key}")
    srv.kubectl("apply", "-f", "-", input="""
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: whoami-tls}
spec:
  entryPoints: [websecure]
  routes:
  - match: Host(`secure.example.com`)
    kind: Rule
    services:
    - {name: whoami, port: 80}
  tls: {secretName: pk-secure-tls}
""")
    url = "https://secure.example.com/tls"
    resolve = ("--resolve", f"secure.example.com:443:{node_ip}")
    res = srv.wait_for(lambda: (r := curl("--cacert", str(crt), *resolve, url)).returncode == 0 and r,
                       timeout=30, what="our certificate for secure.example.com")
    assert res.stdout.startswith("Hostname: whoami-") and "X-Forwarded-Proto: https" in res.stdout
    assert "X-Forwarded-Port: 443" in res.stdout
    assert served_cert_cn(node_ip, "secure.example.com") == "secure.example.com"
    # an unknown name gets Traefik's generated default certificate (and no route)
    assert served_cert_cn(node_ip, "unknown.example.com") == "TRAEFIK DEFAULT CERT"
    res = curl("-k", "-v", "--resolve", f"unknown.example.com:443:{node_ip}", "https://unknown.example.com/")
    assert "CN=TRAEFIK DEFAULT CERT" in res.stderr and res.stdout == "404 page not found\n"
    # the trust check is real: the default certificate does not verify against our CA
    bad = curl("--cacert", str(crt), "--resolve", f"unknown.example.com:443:{node_ip}", "https://unknown.example.com/")
    assert bad.returncode != 0


# -- 5. WebSockets ---------------------------------------------------------------------------------------

def test_websocket_through_the_ingress(srv: ServerProcess, node_ip: str) -> None:
    import aiohttp

    async def exchange() -> list[object]:
        got: list[object] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"http://{node_ip}/echo", headers={"Host": "ws.example.com"}, timeout=5) as ws:
            await ws.send_str("hello through traefik")
            got.append((await ws.receive(timeout=5)).data)
            await ws.send_bytes(b"\x00\x01" * 40000)
            got.append((await ws.receive(timeout=5)).data)
            await ws.close()
        return got

    text, blob = asyncio.run(exchange())
    assert text == "hello through traefik" and blob == b"\x00\x01" * 40000


# -- 6. the dashboard in a browser -----------------------------------------------------------------------

@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs chromium")
def test_dashboard_in_chromium(srv: ServerProcess, node_ip: str, tmp_path: Path) -> None:
    srv.kubectl("apply", "-f", "-", input=with_separator(guide_listing()))  # idempotent; the test also runs alone
    srv.wait_for(lambda: curl("-H", "Host: traefik.example.com", f"http://{node_ip}/dashboard/").stdout
                 == "401 Unauthorized\n", timeout=30, what="dashboard router")
    url = "http://test:test@traefik.example.com/dashboard/"
    dom = chromium(url, node_ip, "--dump-dom")
    assert "<table" in dom.stdout, dom.stderr[-2000:]
    routers = dom.stdout.split('id="routers"', 1)[1].split("</table>", 1)[0]
    assert "default-traefik-dashboard-" in routers and "default-auth@kubernetescrd" in routers
    assert 'class="enabled">enabled<' in routers
    mws = dom.stdout.split('id="middlewares"', 1)[1].split("</table>", 1)[0]
    assert "default-auth@kubernetescrd" in mws and "basicauth" in mws and 'class="enabled">enabled<' in mws

    png = tmp_path / "dashboard.png"
    # A loaded machine can take the picture before the page's tables arrive (a ~7 KB empty page):
    # take it again, a bounded number of times.
    for _ in range(3):
        shot = chromium(url, node_ip, f"--screenshot={png}")
        if png.exists() and png.stat().st_size > 20_000:
            break
    assert png.exists() and png.stat().st_size > 20_000, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # screenshots are for people, not for the repository
    shutil.copy(png, ARTIFACTS / "dashboard.png")


# -- 7. editing traefik.yaml, then --disable traefik ----------------------------------------------------

def test_editing_traefik_yaml_rolls_the_deployment(srv: ServerProcess, node_ip: str) -> None:
    path = srv.manifests_dir / "traefik.yaml"
    text = path.read_text()
    assert "level: DEBUG" not in text
    path.write_text(with_log_level(text, "DEBUG"))  # the chart values in HelmChart traefik's valuesContent

    def rolled() -> dict | None:
        pods = traefik_pods(srv)
        ready = [p for p in pods if is_ready(p) and "--log.level=DEBUG" in cmdline(p)]
        return ready[0] if len(pods) == 1 and ready else None
    srv.wait_for(rolled, timeout=120, interval=1, what="traefik rolled with --log.level=DEBUG")
    assert any(e["reason"] == "AppliedManifest" for e in events(srv, "traefik"))
    srv.wait_for(lambda: curl(f"http://{node_ip}/").stdout == "404 page not found\n", timeout=30,
                 what="port 80 served by the new pod")


def test_restart_restages_then_disable_traefik_removes_everything(srv: ServerProcess, node_ip: str) -> None:
    # a start rewrites the packaged file (the edit is gone, as the guide warns) ...
    srv.restart(timeout=60)
    assert "level: DEBUG" not in (srv.manifests_dir / "traefik.yaml").read_text()
    srv.wait_for(lambda: "--log.level=INFO" in srv.kubectl("get", "deploy", "-n", "kube-system", "traefik", "-o",
                                                          "jsonpath={.spec.template.spec.containers[0].args}").out,
                 timeout=60, interval=1, what="traefik.yaml re-staged and applied")
    # ... and a start with --disable traefik uninstalls the staged copy
    srv.restart(extra_args=["--disable", "traefik"], timeout=60)
    objects = ("deployment/traefik", "service/traefik", "serviceaccount/traefik")

    def gone() -> bool:
        left = [o for o in objects if srv.kubectl("get", "-n", "kube-system", o, check=False).rc == 0]
        left += [o for o in ("ingressclass/traefik", "clusterrole/traefik-kube-system",
                             "clusterrolebinding/traefik-kube-system", "crd/ingressroutes.traefik.io",
                             "crd/middlewares.traefik.containo.us")
                 if srv.kubectl("get", o, check=False).rc == 0]
        left += [d["metadata"]["name"] for d in srv.kubectl("get", "ds", "-n", "kube-system", "-o", "json")
                 .json()["items"] if d["metadata"]["name"].startswith("svclb-traefik-")]
        left += [p["metadata"]["name"] for p in traefik_pods(srv)]
        if srv.kubectl("get", "addon", "-n", "kube-system", "traefik", check=False).rc == 0:
            left.append("addon/traefik")
        left += [f"helmchart/{h}" for h in ("traefik", "traefik-crd")
                 if srv.kubectl("get", "helmchart", "-n", "kube-system", h, check=False).rc == 0]
        left += [s["metadata"]["name"] for s in srv.kubectl("get", "secrets", "-n", "kube-system", "-l", "owner=helm",
                                                             "-o", "json").json()["items"]]
        assert not left, left
        return True
    srv.wait_for(gone, timeout=120, interval=1, what="every Traefik object removed")
    assert not (srv.manifests_dir / "traefik.yaml").exists()
    srv.wait_for(lambda: curl(f"http://{node_ip}:80/", timeout=2).returncode != 0, timeout=30,
                 what="port 80 closed")
    # still off after another restart: the file is not staged again
    srv.restart(extra_args=["--disable", "traefik"], timeout=60)
    time.sleep(3)
    assert not (srv.manifests_dir / "traefik.yaml").exists()
    assert srv.kubectl("get", "-n", "kube-system", "deployment/traefik", check=False).rc != 0
