"""End-to-end: a HelmChartConfig turns on the packaged Traefik's kubernetesGateway provider, as on K3s.

One module-scoped cluster (server + embedded agent, Traefik on, cluster DNS off). The traefik-crd
release serves the Gateway API CRDs from the start; enabling ``providers.kubernetesGateway`` renders the
chart's GatewayClass ``traefik`` and Gateway ``traefik-gateway`` and rolls Traefik out with
``--providers.kubernetesgateway``; `kubectl get` lists Gateway API objects by name and short name;
deleting the HelmChartConfig removes the GatewayClass and Gateway again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from helm_e2e import ROLL, apply_config, chart, condition, delete_config, has_args, lacks_args, settled
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")]

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
    apply_config(srv, "providers:\n  kubernetesGateway:\n    enabled: true\n")
    gc = srv.wait_for(lambda: _get(srv, "gatewayclass", "traefik"), timeout=60, what="GatewayClass traefik")
    assert gc["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert gc["metadata"]["annotations"]["meta.helm.sh/release-name"] == "traefik"
    gw = srv.wait_for(lambda: _get(srv, "gateway", "-n", "kube-system", "traefik-gateway"), timeout=30,
                      what="Gateway traefik-gateway")
    assert gw["spec"] == {"gatewayClassName": "traefik", "listeners": [{"name": "web", "port": 8000, "protocol": "HTTP"}]}
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


def test_routes_are_stored_and_listed(srv: ServerProcess) -> None:
    srv.kubectl("apply", "-f", "-", input=ROUTE)
    route = _get(srv, "httproute", "-n", "default", "pk-whoami")
    assert route is not None and route["spec"]["hostnames"] == ["whoami.pk.test"]
    out = srv.kubectl("get", "gateways,httproutes", "-A").out
    assert f"httproute.{GW}/pk-whoami" in out and "whoami.pk.test" in out
    srv.kubectl("delete", "httproute", "-n", "default", "pk-whoami")


def test_deleting_the_config_removes_them(srv: ServerProcess) -> None:
    delete_config(srv)
    srv.wait_for(lambda: _get(srv, "gatewayclass", "traefik") is None, timeout=60, what="GatewayClass removed")
    assert _get(srv, "gateway", "-n", "kube-system", "traefik-gateway") is None
    srv.wait_for(lambda: settled(srv, lacks_args("--providers.kubernetesgateway")), timeout=ROLL,
                 what="traefik without the provider")
