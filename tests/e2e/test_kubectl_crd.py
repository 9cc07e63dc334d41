"""kubectl 1.32 with a CustomResourceDefinition on a real ``pyk3s server``: Established condition,
discovery, printer columns, category ``all``, status and scale subresources, patch types, explain."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyk3s_server import ServerProcess

pytestmark = pytest.mark.e2e

CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg], categories: [all]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: A widget of the e2e suite.
        properties:
          spec:
            type: object
            description: What the widget should be.
            properties:
              size: {type: string, description: How big the widget is.}
              replicas: {type: integer}
              selector: {type: string}
          status:
            type: object
            properties:
              replicas: {type: integer}
              phase: {type: string}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .spec.selector}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas, priority: 1}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
"""

WIDGET = """apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: %s, replicas: 1, selector: "app=w"}
"""


def get_json(srv: ServerProcess, *args: str) -> dict:
    return srv.kubectl("get", *args, "-o", "json").json()  # type: ignore[return-value]


def ensure_w1(srv: ServerProcess, tmp: Path) -> None:
    if srv.kubectl("get", "widget", "w1", check=False).rc != 0:
        (tmp / "w1.yaml").write_text(WIDGET % "big")
        srv.kubectl("apply", "-f", str(tmp / "w1.yaml"))


@pytest.fixture(scope="module")
def widgets(api_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("crd")
    (tmp / "crd.yaml").write_text(CRD)
    k = api_server.kubectl
    r = k("apply", "-f", str(tmp / "crd.yaml"))
    assert r.out.strip() == "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    r = k("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s")
    assert r.out.strip() == "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met"
    conditions = {c["type"]: c["status"] for c in get_json(api_server, "crd", "widgets.example.com")["status"]
                  ["conditions"]}
    assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    return tmp


def test_custom_resource_apply_get_and_printer_columns(api_server, widgets):
    k = api_server.kubectl
    k("delete", "widget", "w1", "--ignore-not-found")  # a rerun starts from scratch
    f = widgets / "w1.yaml"
    f.write_text(WIDGET % "big")
    assert k("apply", "-f", str(f)).out.strip() == "widget.example.com/w1 created"
    assert k("apply", "-f", str(f)).out.strip() == "widget.example.com/w1 unchanged"
    lines = k("get", "wg").out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "AGE"] and lines[1].split()[:2] == ["w1", "big"]
    assert re.fullmatch(r"\d+s", lines[1].split()[2])
    assert k("get", "widgets", "-o", "wide").out.splitlines()[0].split() == ["NAME", "SIZE", "REPLICAS", "AGE"]
    assert k("get", "widget", "w1", "-o", "jsonpath={.spec.size}").out == "big"

    f.write_text(WIDGET % "small")
    r = k("apply", "-f", str(f), "-v=6")
    assert r.out.strip() == "widget.example.com/w1 configured"
    assert get_json(api_server, "widget", "w1")["spec"]["size"] == "small"

    out = k("get", "all").out
    assert re.search(r"^widget\.example\.com/w1\s+small\s+\d+s$", out, re.M)
    assert "service/kubernetes" in out

    rows = {line.split()[0]: line.split() for line in k("api-resources", "--api-group=example.com").out.splitlines()}
    assert rows["widgets"] == ["widgets", "wg", "example.com/v1", "true", "Widget"]


def test_custom_resource_patch_types(api_server, widgets):
    k = api_server.kubectl
    ensure_w1(api_server, widgets)
    before = get_json(api_server, "widget", "w1")
    r = k("patch", "widget", "w1", "-p", '{"spec":{"size":"huge"}}', check=False)
    assert r.rc == 1
    assert r.err.strip() == (
        "error: application/strategic-merge-patch+json is not supported by example.com/v1, Kind=Widget: the body of "
        "the request was in an unknown format - accepted media types include: application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml")
    assert get_json(api_server, "widget", "w1") == before
    k("patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"size":"huge"}}')
    k("patch", "widget", "w1", "--type=json", "-p", '[{"op":"replace","path":"/spec/replicas","value":2}]')
    spec = get_json(api_server, "widget", "w1")["spec"]
    assert (spec["size"], spec["replicas"]) == ("huge", 2)


def test_custom_resource_status_and_scale_subresources(api_server, widgets):
    k = api_server.kubectl
    ensure_w1(api_server, widgets)
    r = k("patch", "widget", "w1", "--subresource=status", "--type=merge",
          "-p", '{"status":{"phase":"Ready","replicas":1},"spec":{"size":"ignored"}}')
    assert r.out.strip() == "widget.example.com/w1 patched"
    w = get_json(api_server, "widget", "w1")
    assert w["status"] == {"phase": "Ready", "replicas": 1} and w["spec"]["size"] != "ignored"
    k("patch", "widget", "w1", "--type=merge", "-p", '{"status":{"phase":"Lost"}}')
    assert get_json(api_server, "widget", "w1")["status"]["phase"] == "Ready", "main resource ignores .status"

    assert k("scale", "widget", "w1", "--replicas=4").out.strip() == "widget.example.com/w1 scaled"
    assert get_json(api_server, "widget", "w1")["spec"]["replicas"] == 4
    scale = json.loads(k("get", "--raw", "/apis/example.com/v1/namespaces/default/widgets/w1/scale").out)
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 4}
    assert scale["status"] == {"replicas": 1, "selector": "app=w"}


def test_explain_custom_resource(api_server, widgets):
    out = api_server.kubectl("explain", "widgets.spec").out
    assert out.startswith("GROUP:      example.com\nKIND:       Widget\nVERSION:    v1\n\nFIELD: spec <Object>\n")
    assert "What the widget should be." in out
    assert re.search(r"^  size\t<string>\n    How big the widget is\.$", out, re.M)


def test_crd_deletion_removes_the_api(api_server, widgets):
    k = api_server.kubectl
    k("delete", "crd", "widgets.example.com", "--timeout=30s")
    r = k("get", "widgets", check=False)
    assert r.rc == 1 and r.err.strip().endswith('the server doesn\'t have a resource type "widgets"')
