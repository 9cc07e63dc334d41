"""The network map (`pyk3s map`) on a 3-node dev cluster with the packaged Traefik: a Deployment, a
ClusterIP and two LoadBalancer Services (one Pending: port 80 is held by Traefik's svclb pods), an
Ingress, an IngressRoute with a middleware and one whose middleware does not exist, an
IngressRouteTCP and two NetworkPolicies.

Headless Chromium loads the page (screenshots in tests/e2e/artifacts/netmap-*.png; the elements that
carry the Pending reason, the router error and the policy matrix are checked to be on screen); the
trace box answers a URL, a DNS name and a pod pair as `pyk3s ingress explain`, `pyk3s dns explain` and
`pyk3s netpol explain` do; the page shows a new Service within 2 s; every JSON view answers; the map
also serves a server without an agent.

Traffic goes only to loopback (the map, the browser) and to the cluster's own underlay and node
namespaces (the API).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, Browser
from cluster import Cluster
from pyk3s_server import REPO, ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM} (Debian package chromium)")

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

SCENARIO = """
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {team: demo}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: whoami, image: traefik/whoami, ports: [{name: http, containerPort: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      containers:
      - {name: whoami, image: traefik/whoami, ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: demo}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-alt, namespace: demo}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 8088, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: demo}
spec:
  rules:
  - host: web.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip-api, namespace: demo}
spec:
  stripPrefix: {prefixes: [/api]}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: api, namespace: demo}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`api.example`) && PathPrefix(`/api`)
    kind: Rule
    middlewares: [{name: strip-api}]
    services: [{name: web, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: admin, namespace: demo}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`admin.example`)
    kind: Rule
    middlewares: [{name: admin-auth}]
    services: [{name: web, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: echo, namespace: demo}
spec:
  entryPoints: [websecure]
  routes:
  - match: HostSNI(`echo.example`)
    services: [{name: web, port: 80}]
  tls: {passthrough: true}
"""

POLICIES = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: demo}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-client, namespace: demo}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: http}]
"""


class MapProcess:
    """`pyk3s map --port 0` in its own process group; ``url`` is what it printed."""

    def __init__(self, kubeconfig: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "pyk3s", "map", "--kubeconfig", kubeconfig, "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                     start_new_session=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("pyk3s map: serving http://127.0.0.1:"), line + self.proc.stdout.read()
        self.url = line.split("serving ", 1)[1].strip()

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=60) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _ready_endpoints(c: Cluster, ns: str, name: str) -> int:
    res = c.kubectl("get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={name}", "-o", "json",
                    check=False)
    if res.rc != 0:
        return 0
    return sum(1 for s in res.json()["items"] for e in s.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready"))


@pytest.fixture(scope="module")
def cluster(kubectl_bin: str) -> Iterator[Cluster]:
    c = Cluster(nodes=3, server_args=("--debug",))
    try:
        c.start(timeout=180)
        c.wait_for(lambda: c.kubectl("get", "crd", "ingressroutetcps.traefik.io", check=False).rc == 0, timeout=120,
                   what="Traefik's CRDs")
        c.kubectl("apply", "-f", "-", input=SCENARIO)
        c.wait_for(lambda: _ready_endpoints(c, "demo", "web") == 2, timeout=120, what="2 ready web endpoints")
        c.wait_for(lambda: "is held by pod kube-system/svclb-traefik" in c.kubectl(
            "get", "svc", "-n", "demo", "web-lb", "-o", "jsonpath={.status.conditions[*].message}", check=False).out,
                   timeout=120, what="web-lb Pending on port 80")
        yield c
    finally:
        c.cleanup()


@pytest.fixture(scope="module")
def policies(cluster: Cluster) -> bool:
    """The two NetworkPolicies (the server serves NetworkPolicy and the agent enforces it)."""
    served = cluster.kubectl("api-resources", "--api-group=networking.k8s.io", "-o", "name", check=False).out
    assert "networkpolicies" in served, served
    cluster.kubectl("apply", "-f", "-", input=POLICIES)
    return True


@pytest.fixture(scope="module")
def netmap(cluster: Cluster) -> Iterator[MapProcess]:
    m = MapProcess(str(cluster.kubeconfig))
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser(1280, 900) as b:
        yield b
        assert b.js("window.mapErrors || []") == [], "the page reported errors"


def _shot(b: Browser, name: str, selector: str | None = None) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # screenshots are for people, not for the repository
    path = b.screenshot(ARTIFACTS / f"netmap-{name}.png", selector)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def _on_screen(b: Browser, selector: str, text: str) -> dict[str, Any]:
    """The first element matching ``selector`` whose text has ``text``: scrolled into view, not covered,
    inside the 1,280 px wide viewport; its text and colour."""
    return b.wait(f"""(() => {{
        const el = Array.from(document.querySelectorAll({json.dumps(selector)}))
            .find((e) => e.textContent.includes({json.dumps(text)}));
        if (!el) return null;
        el.scrollIntoView({{block: "center"}});
        const r = el.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + Math.min(20, r.width / 2), r.top + Math.min(8, r.height / 2));
        if (!hit || !(el.contains(hit) || hit.contains(el))) return null;
        return {{text: el.textContent, left: r.left, right: r.right, width: r.width, height: r.height,
                 color: getComputedStyle(el).color, background: getComputedStyle(el).backgroundColor}};
    }})()""", timeout=45, what=f"{selector} with {text!r} on screen")


# -- the JSON API ----------------------------------------------------------------------------------------

def test_json_api_answers_for_each_view(cluster: Cluster, netmap: MapProcess) -> None:
    paths = netmap.get("/api/")["paths"]
    assert {"/api/overview", "/api/nodes", "/api/services", "/api/ingress", "/api/policies", "/api/trace",
            "/api/watch", "/api/status"} <= set(paths)
    overview = netmap.get("/api/overview")
    assert overview["nodes"] == {"total": 3, "ready": 3}
    assert overview["loadBalancers"]["pending"] == 1 and overview["routers"]["errors"] == 1
    nodes = netmap.get("/api/nodes")["nodes"]
    assert [n["name"] for n in nodes] == [m.name for m in cluster.members]
    for n, member in zip(nodes, cluster.members, strict=True):
        assert {"type": "InternalIP", "address": member.ip} in n["addresses"] and n["podCIDRs"] and n["ready"]
        assert n["backend"]["type"] in ("vxlan", "host-gw")
    demo = netmap.get("/api/services?namespace=demo")["namespaces"][0]
    svcs = {s["name"]: s for s in demo["services"]}
    assert svcs["web"]["ready"] == 2 and {e["node"] for e in svcs["web"]["endpoints"]} <= {m.name for m in cluster.members}
    assert svcs["web-lb"]["lb"]["state"] == "pending"
    assert set(svcs["web-lb"]["lb"]["nodes"]) == {m.name for m in cluster.members}
    assert svcs["web-alt"]["lb"]["state"] == "ready"
    ingress = netmap.get("/api/ingress")
    assert ingress["source"] == "kube-system/traefik" and ingress["publishedService"] == "kube-system/traefik"
    admin = next(r for r in ingress["routers"] if r["from"] == "IngressRoute demo/admin")
    assert admin["status"] == "disabled" and "does not exist" in admin["errors"][0]
    if importlib.util.find_spec("pyk3s.addons.ingress.routing.tcp_compile") is not None:  # TCP routers compiled
        echo = next(r for r in ingress["routers"] if r["from"] == "IngressRouteTCP demo/echo")
        assert (echo["protocol"], echo["status"], echo["passthrough"]) == ("tcp", "enabled", True)
        assert {s["service"] for s in ingress["tcpServices"][echo["service"]]["servers"]} == {"demo/web"}
    assert netmap.get("/api/status")["synced"]
    assert "available" in netmap.get("/api/policies?namespace=demo")
    assert netmap.get("/api/trace?q=web.demo.svc.cluster.local")["kind"] == "dns"


# -- the page ----------------------------------------------------------------------------------------------

@needs_chromium
def test_page_shows_the_pending_reason(cluster: Cluster, netmap: MapProcess, browser: Browser) -> None:
    browser.goto(netmap.url + "#tab=services&theme=light")
    reason = _on_screen(browser, "#view-services .reason", "port 80/TCP is held by pod kube-system/svclb-traefik")
    assert reason["right"] <= 1280 and reason["text"].startswith("Pending: no node can serve this load balancer")
    for member in cluster.members:
        assert member.name in reason["text"]
    _shot(browser, "pending")
    _shot(browser, "pending-reason", "#view-services .reason")
    assert "overflow" not in browser.js("document.documentElement.scrollWidth > 1280 ? 'overflow' : 'fits'")


@needs_chromium
def test_page_shows_the_router_error(netmap: MapProcess, browser: Browser) -> None:
    browser.goto(netmap.url + "#tab=ingress&theme=dark")
    node = _on_screen(browser, "#view-ingress .diagram .node.error", 'middleware "demo-admin-auth@kubernetescrd" does not exist')
    assert node["right"] <= 1280
    row = _on_screen(browser, "#view-ingress tr.row", "IngressRoute demo/admin")
    assert "disabled" in row["text"] and "does not exist" in row["text"]
    _shot(browser, "ingress")
    _shot(browser, "router-error", "#view-ingress .diagram")
    assert browser.js("document.documentElement.scrollWidth") <= 1280
    # search: the routers table keeps the matching row, the diagram dims the rest
    browser.js("const s = document.querySelector('#search'); s.value = 'admin.example';"
               "s.dispatchEvent(new Event('input'))")
    rows = browser.js("Array.from(document.querySelectorAll('#view-ingress tr.row:not(.hide)')).map((r) => r.textContent)")
    assert len(rows) == 1 and "IngressRoute demo/admin" in rows[0]
    assert browser.js("document.querySelectorAll('#view-ingress .node.dim').length") > 0
    # and the theme switch
    before = browser.js("document.documentElement.dataset.theme")
    browser.js("document.querySelector('#theme').click()")
    assert browser.js("document.documentElement.dataset.theme") != before


@needs_chromium
def test_page_shows_the_policy_matrix(cluster: Cluster, netmap: MapProcess, policies: bool, browser: Browser) -> None:
    assert policies
    browser.goto(netmap.url + "#tab=policies&ns=demo&port=80/TCP&theme=light")
    browser.wait("document.querySelectorAll('#matrix td.c').length === 9", timeout=45, what="a 3x3 matrix")
    cells = browser.js("Array.from(document.querySelectorAll('#matrix td.c')).map((c) => "
                       "[c.dataset.from, c.dataset.to, c.classList.contains('yes')])")
    app = lambda key: key.split("/")[1].rsplit("-", 2)[0]  # noqa: E731 - demo/web-6d4f-x2 -> web
    for src, dst, yes in cells:
        if src == dst:
            continue
        # default-deny isolates every pod of demo; web-from-client lets only client reach web on http
        assert yes == (app(src) == "client" and app(dst) == "web"), (src, dst, yes)
    _on_screen(browser, "#matrix", "demo/")
    browser.js("document.querySelector('#matrix td.c.no').click()")
    explained = _on_screen(browser, "#cell-explain pre", "DENIED")
    assert "isolated by" in explained["text"]
    _shot(browser, "matrix")
    _shot(browser, "matrix-only", "#view-policies .matrix-wrap")


# -- the trace box against the explain commands ---------------------------------------------------------------

def _cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyk3s", *args, "--kubeconfig", str(cluster.kubeconfig)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("url", ["http://api.example/api/users", "http://admin.example/", "http://web.example/x"])
def test_url_trace_is_ingress_explains_answer(cluster: Cluster, netmap: MapProcess, url: str) -> None:
    cli = _cli(cluster, "ingress", "explain", "--json", url)
    assert cli.returncode in (0, 2), cli.stderr
    got = netmap.get("/api/trace?q=" + urllib.parse.quote(url))
    assert got["kind"] == "url" and got["ingress"] == json.loads(cli.stdout)
    router = next(h for h in got["hops"] if h["layer"] == "router")
    if "admin" in url:
        assert got["status"] == "error" and router["why"][0].startswith('disabled: middleware "demo-admin-auth')
    else:
        assert router["status"] == "ok" and [h for h in got["hops"] if h["layer"] == "endpoint"]


def test_dns_trace_is_dns_explains_answer(cluster: Cluster, netmap: MapProcess) -> None:
    cli = _cli(cluster, "dns", "explain", "web.demo.svc.cluster.local")
    assert cli.returncode == 0, cli.stderr
    got = netmap.get("/api/trace?q=web.demo.svc.cluster.local")
    assert got["dns"]["text"] == cli.stdout
    assert [h["title"] for h in got["hops"] if h["layer"] == "service"] == ["Service demo/web"]


def _pod_names(cluster: Cluster, app: str) -> list[str]:
    out = cluster.kubectl("get", "pods", "-n", "demo", "-l", f"app={app}", "-o", "jsonpath={.items[*].metadata.name}").out
    return sorted(out.split())


def test_pod_pair_trace_is_netpol_explains_answer(cluster: Cluster, netmap: MapProcess, policies: bool) -> None:
    assert policies
    client, web = _pod_names(cluster, "client")[0], _pod_names(cluster, "web")[0]
    for src, dst in ((f"demo/{client}", f"demo/{web}"), (f"demo/{web}", f"demo/{client}")):
        cli = _cli(cluster, "netpol", "explain", "--json", src, dst, "80/TCP")
        assert cli.returncode in (0, 1), cli.stderr
        got = netmap.get("/api/trace?q=" + urllib.parse.quote(f"{src} -> {dst}:80"))
        assert got["kind"] == "pods" and got["netpol"] == json.loads(cli.stdout)
        assert got["status"] == ("ok" if cli.returncode == 0 else "error")


def test_tcp_trace_is_ingress_explains_answer(cluster: Cluster, netmap: MapProcess) -> None:
    query = "tcp://echo.example:443 --sni echo.example"
    cli = _cli(cluster, "ingress", "explain", "--json", *query.split())
    assert cli.returncode == 0, cli.stderr
    got = netmap.get("/api/trace?q=" + urllib.parse.quote(query))
    assert got["kind"] == "tcp" and got["ingress"] == json.loads(cli.stdout)
    assert got["ingress"]["match"]["router"].startswith("demo-echo-")
    assert [h for h in got["hops"] if h["layer"] == "endpoint"]


@needs_chromium
def test_trace_box_in_the_page(cluster: Cluster, netmap: MapProcess, browser: Browser) -> None:
    url = "http://api.example/api/users"
    browser.goto(netmap.url + "#tab=overview&theme=light")
    browser.wait("document.querySelector('#view-overview .cards')", timeout=45, what="overview")
    _on_screen(browser, "#view-overview .attention li", "LoadBalancer demo/web-lb")
    _shot(browser, "overview")
    browser.js(f"document.querySelector('#trace-q').value = {json.dumps(url)};"
               "document.querySelector('#trace-form').requestSubmit()")
    text = browser.wait("(() => { const p = document.querySelector('pre[data-engine=ingress]');"
                        " return p && p.textContent; })()", timeout=60, what="the trace's ingress answer")
    cli = _cli(cluster, "ingress", "explain", "--json", url)
    assert json.loads(text) == json.loads(cli.stdout)
    assert browser.js("document.querySelectorAll('#trace-out .diagram .node').length") >= 6
    _shot(browser, "trace")


# -- live updates --------------------------------------------------------------------------------------------

@needs_chromium
def test_page_shows_a_new_service_within_2s(cluster: Cluster, netmap: MapProcess, browser: Browser) -> None:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    browser.goto(netmap.url + "#tab=services")
    browser.wait("document.querySelector('#live.on') && document.getElementById('svc-demo/web')", timeout=45,
                 what="live page")
    api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(cluster.kubeconfig)))
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fresh"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 80}]}}
    t0 = time.monotonic()
    api.create_namespaced_service("demo", body)
    browser.wait("document.getElementById('svc-demo/fresh')", timeout=10, interval=0.02, what="the new Service row")
    elapsed = time.monotonic() - t0
    print(f"the page showed the new Service {elapsed:.2f}s after it was created")
    assert elapsed < 2.0, f"the page showed the new Service after {elapsed:.2f}s"
    browser.wait("document.getElementById('svc-demo/fresh').textContent.includes('2/2 ready')", timeout=30,
                 what="its endpoints")
    cluster.kubectl("delete", "service", "-n", "demo", "fresh")
    browser.wait("!document.getElementById('svc-demo/fresh')", timeout=10, what="the row gone")


# -- a server without an agent -------------------------------------------------------------------------------

def test_map_serves_a_server_without_an_agent(api_server: ServerProcess) -> None:
    m = MapProcess(str(api_server.kubeconfig))
    try:
        overview = m.get("/api/overview")
        assert overview["nodes"]["total"] == 0 and overview["watch"]["synced"]
        assert m.get("/api/services")["namespaces"]
        assert m.get("/api/ingress")["source"] == "default flags"
    finally:
        m.stop()
