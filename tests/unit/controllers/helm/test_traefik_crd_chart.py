"""traefik-crd renders the Gateway API CRDs the chart ships, as gateway-standard-install.yaml v1.3.0 defines them."""

from __future__ import annotations

from typing import Any

from pyk3s.api.crds import crd_rows, validate_crd
from pyk3s.controllers.helm.chart import Release
from pyk3s.controllers.helm.traefik_crd import CHART

GW = "gateway.networking.k8s.io"
RELEASE = Release("traefik-crd", "kube-system")


def _crds() -> dict[str, dict[str, Any]]:
    rendered = CHART.render({}, RELEASE)
    return {m.obj["metadata"]["name"]: m.obj for m in rendered.objects}


def test_gateway_api_standard_channel_kinds() -> None:
    gw = {name: obj for name, obj in _crds().items() if name.endswith("." + GW)}
    assert sorted(gw) == [f"{p}.{GW}" for p in
                          ("gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants")]
    for obj in gw.values():
        assert obj["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.3.0"
        assert obj["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"
        assert obj["spec"]["names"]["categories"] == ["gateway-api"]


def test_names_scope_versions_and_status_as_upstream() -> None:
    crds = _crds()
    expected = {  # plural: (scope, shortNames, [(version, storage)], status subresource)
        "gatewayclasses": ("Cluster", ["gc"], [("v1", True), ("v1beta1", False)], True),
        "gateways": ("Namespaced", ["gtw"], [("v1", True), ("v1beta1", False)], True),
        "grpcroutes": ("Namespaced", None, [("v1", True)], True),
        "httproutes": ("Namespaced", None, [("v1", True), ("v1beta1", False)], True),
        "referencegrants": ("Namespaced", ["refgrant"], [("v1beta1", True)], False),
    }
    for plural, (scope, short, versions, status) in expected.items():
        spec = crds[f"{plural}.{GW}"]["spec"]
        assert spec["scope"] == scope
        assert spec["names"].get("shortNames") == short
        assert [(v["name"], v["storage"]) for v in spec["versions"]] == versions
        assert all(v["served"] for v in spec["versions"])
        assert all(("status" in v.get("subresources", {})) == status for v in spec["versions"])


def test_printer_columns_and_open_schema() -> None:
    gateways = _crds()[f"gateways.{GW}"]["spec"]["versions"][0]
    assert [c["name"] for c in gateways["additionalPrinterColumns"]] == ["Class", "Address", "Programmed", "Age"]
    schema = gateways["schema"]["openAPIV3Schema"]
    assert schema["required"] == ["spec"]
    assert schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] is True
    classes = _crds()[f"gatewayclasses.{GW}"]["spec"]["versions"][0]
    assert [c["name"] for c in classes["additionalPrinterColumns"]] == ["Controller", "Accepted", "Age", "Description"]


def test_the_api_server_serves_them() -> None:
    assert all(validate_crd(obj) == [] for obj in _crds().values())
    rows = [r for obj in _crds().values() if obj["spec"]["group"] == GW for r in crd_rows(obj)]
    by_kind = {(r.kind, r.version): r for r in rows}
    assert not by_kind[("GatewayClass", "v1")].namespaced
    assert by_kind[("Gateway", "v1")].short_names == ("gtw",)
    assert by_kind[("HTTPRoute", "v1")].has_status
    assert not by_kind[("ReferenceGrant", "v1beta1")].has_status
