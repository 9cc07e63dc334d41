"""End-to-end: a HelmChartConfig turns on the packaged Traefik's kubernetesGateway provider, as on K3s.

One module-scoped cluster (server + embedded agent, Traefik on, cluster DNS off). The traefik-crd
release serves the Gateway API CRDs from the start; enabling ``providers.kubernetesGateway`` renders the
chart's GatewayClass ``traefik`` and Gateway ``traefik-gateway`` and rolls Traefik out with
``--providers.kubernetesgateway``; `kubectl get` lists Gateway API objects by name and short name; an
HTTPRoute to a whoami Service is answered through port 80 and its parent and the Gateway are Accepted;
deleting the HelmChartConfig removes the GatewayClass and Gateway again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from helm_e2e import ROLL, apply_config, chart, condition, curl, delete_config, has_args, lacks_args, settled
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

GW = "gateway.networking.k8s.io"
ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: pk-whoami
  namespace: default
spec:
  parentRefs:
  - name: traefik-gateway
    namespace: kube-system
  hostnames: [whoami.pk.test]
  rules:
  - backendRefs:
    - name: whoami
      port: 80
"""


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
        image: traefik/whoami
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
"""


@pytest.fixture(scope="module")
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    server = ServerProcess(agent=True, extra_args=["--disable", "coredns"])
    try:
        server.start(timeout=60)
        yield server
    finally:
        server.cleanup()


def _get(srv: ServerProcess, *args: str) -> dict[str, Any] | None:
    p = srv.kubectl("get", *args, "-o", "json", check=False)
    return p.json() if p.rc == 0 else None


def test_traefik_crd_serves_the_gateway_api_kinds(srv: ServerProcess) -> None:
    names = [f"{p}.{GW}" for p in ("gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants")]
    srv.wait_for(lambda: all(_get(srv, "crd", n) for n in names), timeout=60, what="the Gateway API CRDs")
    crd = _get(srv, "crd", f"gateways.{GW}")
    assert crd is not None
    assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.3.0"
    resources = srv.kubectl("api-resources", "--api-group", GW).out
    rows = {line.split()[0]: line.split() for line in resources.splitlines()[1:]}
    assert rows["gatewayclasses"][1:] == ["gc", f"{GW}/v1", "false", "GatewayClass"]
    assert rows["gateways"][1:] == ["gtw", f"{GW}/v1", "true", "Gateway"]
    assert rows["referencegrants"][1:] == ["refgrant", f"{GW}/v1beta1", "true", "ReferenceGrant"]
    assert {"httproutes", "grpcroutes"} <= set(rows)


def test_enabling_the_provider_renders_the_gatewayclass_and_gateway(srv: ServerProcess) -> None:
    srv.wait_for(lambda: settled(srv, lambda p: True), timeout=ROLL, what="a Ready traefik pod")
    # routes from every namespace, as a K3s user opens the default Gateway to them (Gateway API's default is Same)
    apply_config(srv, "providers:\n  kubernetesGateway:\n    enabled: true\n"
                      "gateway:\n  listeners:\n    web:\n      namespacePolicy:\n        from: All\n")
    gc = srv.wait_for(lambda: _get(srv, "gatewayclass", "traefik"), timeout=60, what="GatewayClass traefik")
    assert gc["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert gc["metadata"]["annotations"]["meta.helm.sh/release-name"] == "traefik"
    gw = srv.wait_for(lambda: _get(srv, "gateway", "-n", "kube-system", "traefik-gateway"), timeout=30,
                      what="Gateway traefik-gateway")
    assert gw["spec"] == {"gatewayClassName": "traefik", "listeners": [
        {"name": "web", "port": 8000, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}
    role = srv.kubectl("get", "clusterrole", "traefik-kube-system", "-o", "json").json()
    assert any(GW in r["apiGroups"] and "httproutes/status" in r["resources"] for r in role["rules"])
    assert condition(srv, "Failed")["status"] == "False"
    ignored = {i["key"] for i in chart(srv).get("status", {}).get("ignoredValues") or []}
    assert "gateway" not in ignored and "gatewayClass" not in ignored

    srv.wait_for(lambda: settled(srv, has_args("--providers.kubernetesgateway")), timeout=ROLL,
                 what="traefik with --providers.kubernetesgateway")

    table = srv.kubectl("get", "gatewayclass,gateway", "-A").out
    assert f"gatewayclass.{GW}/traefik" in table and "traefik.io/gateway-controller" in table
    assert f"gateway.{GW}/traefik-gateway" in table
    header = srv.kubectl("get", "gtw", "-n", "kube-system").out.splitlines()[0].split()
    assert header == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]


def _accepted(obj: dict[str, Any] | None, kind: str) -> bool:
    if obj is None:
        return False
    status = obj.get("status") or {}
    conds = status.get("conditions") or [] if kind == "Gateway" else \
        [c for p in status.get("parents") or [] for c in p.get("conditions") or []]
    return any(c["type"] == "Accepted" and c["status"] == "True" for c in conds)


def test_an_httproute_is_answered_on_port_80_and_the_statuses_say_so(srv: ServerProcess) -> None:
    assert srv.node is not None
    srv.kubectl("apply", "-n", "default", "-f", "-", input=APP)
    srv.kubectl("apply", "-f", "-", input=ROUTE)
    route = _get(srv, "httproute", "-n", "default", "pk-whoami")
    assert route is not None and route["spec"]["hostnames"] == ["whoami.pk.test"]
    out = srv.kubectl("get", "gateways,httproutes", "-A").out
    assert f"httproute.{GW}/pk-whoami" in out and "whoami.pk.test" in out

    def answered() -> str:
        r = curl("-i", "-H", "Host: whoami.pk.test", f"http://{srv.node.ip}:80/via-gateway")  # type: ignore[union-attr]
        return r.stdout if r.stdout.startswith("HTTP/1.1 200") else ""
    try:
        reply = srv.wait_for(answered, timeout=90, what="the HTTPRoute answered through port 80")
    except TimeoutError:
        last = curl("-i", "-H", "Host: whoami.pk.test", f"http://{srv.node.ip}:80/via-gateway").stdout
        logs = srv.kubectl("logs", "-n", "kube-system", "deploy/traefik", "--tail", "40", check=False).out
        route_now = _get(srv, "httproute", "-n", "default", "pk-whoami")
        raise AssertionError(f"no answer through the Gateway: {last!r}\nroute: {route_now}\ntraefik:\n{logs}") from None
    assert "GET /via-gateway HTTP/1.1" in reply and "Hostname: whoami-" in reply
    assert curl("-H", "Host: other.pk.test", f"http://{srv.node.ip}:80/").stdout == "404 page not found\n"
    srv.wait_for(lambda: _accepted(_get(srv, "httproute", "-n", "default", "pk-whoami"), "HTTPRoute"), timeout=30,
                 what="the HTTPRoute's parent Accepted")
    srv.wait_for(lambda: _accepted(_get(srv, "gateway", "-n", "kube-system", "traefik-gateway"), "Gateway"),
                 timeout=30, what="the Gateway Accepted")
    srv.kubectl("delete", "httproute", "-n", "default", "pk-whoami")
    srv.wait_for(lambda: not answered(), timeout=30, what="the route gone")
    srv.kubectl("delete", "-n", "default", "-f", "-", input=APP)


def test_deleting_the_config_removes_them(srv: ServerProcess) -> None:
    delete_config(srv)
    srv.wait_for(lambda: _get(srv, "gatewayclass", "traefik") is None, timeout=60, what="GatewayClass removed")
    assert _get(srv, "gateway", "-n", "kube-system", "traefik-gateway") is None
    srv.wait_for(lambda: settled(srv, lacks_args("--providers.kubernetesgateway")), timeout=ROLL,
                 what="traefik without the provider")
