"""/version, health, legacy and aggregated discovery, OpenAPI v3 index and documents."""

from __future__ import annotations

import json

AGG = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
       "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


async def test_version_and_health(kc):
    v = await kc.ok("GET", "/version")
    assert v["major"] == "1" and v["minor"] == "32" and v["gitVersion"].startswith("v1.32.")
    for f in ("gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"):
        assert isinstance(v[f], str)
    for p in ("/healthz", "/livez", "/readyz"):
        status, body, resp = await kc.call("GET", p)
        assert status == 200 and body == "ok"


async def test_legacy_discovery(kc):
    api = await kc.ok("GET", "/api")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    apis = await kc.ok("GET", "/apis")
    groups = {g["name"]: g for g in apis["groups"]}
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    assert "apiextensions.k8s.io" in groups and "k3s.cattle.io" in groups
    core = await kc.ok("GET", "/api/v1")
    res = {r["name"]: r for r in core["resources"]}
    assert res["pods"]["shortNames"] == ["po"] and res["pods"]["categories"] == ["all"]
    assert res["pods"]["namespaced"] and not res["nodes"]["namespaced"]
    assert res["pods/log"]["kind"] == "Pod" and "pods/status" in res
    apps = await kc.ok("GET", "/apis/apps/v1")
    scale = {r["name"]: r for r in apps["resources"]}["deployments/scale"]
    assert scale["group"] == "autoscaling" and scale["kind"] == "Scale"
    grp = await kc.ok("GET", "/apis/apps")
    assert grp["kind"] == "APIGroup" and grp["name"] == "apps"
    status, err, _ = await kc.call("GET", "/apis/nope.example.com/v1")
    assert status == 404


async def test_aggregated_discovery(kc):
    status, body, resp = await kc.call("GET", "/api", accept=AGG)
    assert resp.content_type == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert body["kind"] == "APIGroupDiscoveryList" and [i["metadata"]["name"] for i in body["items"]] == [""]
    pods = next(r for r in body["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"} and pods["scope"] == "Namespaced"
    assert pods["singularResource"] == "pod" and "watch" in pods["verbs"]
    assert any(s["subresource"] == "log" for s in pods["subresources"])
    _, body, _ = await kc.call("GET", "/apis", accept=AGG)
    names = [i["metadata"]["name"] for i in body["items"]]
    assert "apps" in names and "" not in names
    authz = next(i for i in body["items"] if i["metadata"]["name"] == "authorization.k8s.io")
    ssar = next(r for r in authz["versions"][0]["resources"] if r["resource"] == "selfsubjectaccessreviews")
    assert ssar["verbs"] == ["create"]


async def test_unsupported_verbs(kc):
    status, err, _ = await kc.call("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    assert status == 405 and err["reason"] == "MethodNotAllowed"
    status, _, _ = await kc.call("GET", "/api/v1/nosuchthings")
    assert status == 404


async def test_virtual_resource(kc, api_server):
    async def review(req, body):
        return {**body, "status": {"allowed": True}}

    api_server.register_virtual("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview",
                                review)
    out = await kc.ok("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                      {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                       "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}})
    assert out["status"]["allowed"] is True


async def test_openapi(kc):
    idx = await kc.ok("GET", "/openapi/v3")
    paths = idx["paths"]
    for gv in ("api/v1", "apis/apps/v1", "apis/apiextensions.k8s.io/v1"):
        assert paths[gv]["serverRelativeURL"].startswith(f"/openapi/v3/{gv}?hash=")
    url = paths["api/v1"]["serverRelativeURL"]
    path, _, q = url.partition("?")
    status, doc, resp = await kc.call("GET", path, query=[tuple(q.split("="))])
    assert status == 200 and "immutable" in resp.headers["Cache-Control"]
    item = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert item["patch"]["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert any(p["name"] == "fieldValidation" for p in item["patch"]["parameters"])
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Pod"}]
    ref = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["items"]["allOf"][0]["$ref"]
    assert ref == "#/components/schemas/io.k8s.api.core.v1.Container"
    status, _, _ = await kc.call("GET", "/openapi/v2")
    assert status == 404
    # kubectl's protobuf request gets an empty document: swagger "2.0", info, no definitions
    status, _, resp = await kc.call("GET", "/openapi/v2",
                                    accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert status == 200 and resp.body.startswith(b"\x0a\x032.0\x12") and b"Kubernetes" in resp.body
    # CRD group-versions appear with a schema built from openAPIV3Schema
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.example.com"},
           "spec": {"group": "example.com", "scope": "Cluster", "names": {"plural": "gadgets", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "description": "the spec"}}}}}]}}
    await kc.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    idx = await kc.ok("GET", "/openapi/v3")
    doc = await kc.ok("GET", "/openapi/v3/apis/example.com/v1")
    sch = doc["components"]["schemas"]["com.example.v1.Gadget"]
    assert sch["x-kubernetes-group-version-kind"] == [{"group": "example.com", "version": "v1", "kind": "Gadget"}]
    assert "apis/example.com/v1" in idx["paths"]
    json.dumps(doc)
