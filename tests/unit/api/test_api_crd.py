"""CRDs: established at once, CRs served with status/scale subresources, schema validation, cleanup."""

from __future__ import annotations

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
BASE = "/apis/example.com/v1/namespaces/default/widgets"

SCHEMA = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "color": {"type": "string"},
                                              "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
    "status": {"type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}}}}


def crd() -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wg"], "categories": ["all"]},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": SCHEMA},
                                   "subresources": {"status": {}, "scale": {
                                       "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                       "labelSelectorPath": ".status.selector"}},
                                   "additionalPrinterColumns": [{"name": "Color", "type": "string",
                                                                 "jsonPath": ".spec.color"}]}]}}


def widget(name: str, **spec) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


async def test_crd_lifecycle(kc, api_server):
    out = await kc.ok("POST", CRDS, crd())
    conds = {c["type"]: c["status"] for c in out["status"]["conditions"]}
    assert conds == {"NamesAccepted": "True", "Established": "True"}
    assert out["status"]["acceptedNames"]["singular"] == "widget"
    assert out["status"]["acceptedNames"]["listKind"] == "WidgetList"
    assert out["status"]["storedVersions"] == ["v1"]
    res = await kc.ok("GET", "/apis/example.com/v1")
    names = {r["name"] for r in res["resources"]}
    assert {"widgets", "widgets/status", "widgets/scale"} <= names
    w = await kc.ok("POST", BASE, widget("w1", replicas=1, color="red"))
    assert w["metadata"]["generation"] == 1 and "status" not in w
    lst = await kc.ok("GET", BASE)
    assert lst["kind"] == "WidgetList" and lst["apiVersion"] == "example.com/v1"
    status, err, _ = await kc.call("POST", BASE + "?fieldValidation=Strict", widget("bad", colour="x"))
    assert status == 400 and err["message"] == 'strict decoding error: unknown field "spec.colour"'
    ok = await kc.ok("POST", BASE + "?fieldValidation=Strict", widget("ok", extra={"anything": {"goes": 1}}))
    assert ok["spec"]["extra"] == {"anything": {"goes": 1}}
    # status subresource
    w = await kc.ok("PATCH", f"{BASE}/w1/status", {"status": {"replicas": 1, "selector": "app=w"}, "spec": {"color": "x"}},
                    content_type="application/merge-patch+json")
    assert w["status"]["replicas"] == 1 and w["spec"]["color"] == "red"
    w = await kc.ok("PATCH", f"{BASE}/w1", {"status": {"replicas": 5}}, content_type="application/merge-patch+json")
    assert w["status"]["replicas"] == 1
    # scale subresource
    scale = await kc.ok("GET", f"{BASE}/w1/scale")
    assert scale["spec"]["replicas"] == 1 and scale["status"] == {"replicas": 1, "selector": "app=w"}
    scale = await kc.ok("PATCH", f"{BASE}/w1/scale", {"spec": {"replicas": 4}}, content_type="application/merge-patch+json")
    assert scale["spec"]["replicas"] == 4
    assert (await kc.ok("GET", f"{BASE}/w1"))["spec"]["replicas"] == 4
    # table columns come from additionalPrinterColumns
    tbl = await kc.ok("GET", BASE, accept="application/json;as=Table;v=v1;g=meta.k8s.io")
    assert tbl["kind"] == "Table" and tbl["rows"]
    # deleting the CRD removes its objects and its endpoints
    await kc.ok("DELETE", f"{CRDS}/widgets.example.com")
    status, _, _ = await kc.call("GET", BASE)
    assert status == 404
    assert await api_server.store.list("/registry/example.com/widgets/") == (await api_server.store.current_revision(), [])


async def test_crd_seen_by_second_server(api_store, kc):
    from pyk3s.api.app import ApiServer
    from pyk3s.api.config import ApiConfig

    other = ApiServer(api_store, ApiConfig(bootstrap=False))
    await other.start()
    try:
        await kc.ok("POST", CRDS, crd())
        import asyncio

        for _ in range(100):
            if other.catalog.table.get("example.com", "v1", "widgets"):
                break
            await asyncio.sleep(0.01)
        assert other.catalog.table.get("example.com", "v1", "widgets") is not None
    finally:
        await other.stop()


async def test_crd_name_must_match(kc):
    bad = crd()
    bad["metadata"]["name"] = "wrong.example.com"
    status, err, _ = await kc.call("POST", CRDS, bad)
    assert status == 422 and err["reason"] == "Invalid"
