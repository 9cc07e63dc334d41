"""Every PATCH content type end to end, server-side apply create/conflict/force, 415 for SMP on CRs."""

from __future__ import annotations

CM = "/api/v1/namespaces/default/configmaps"
DEP = "/apis/apps/v1/namespaces/default/deployments"


def cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def deployment(name: str, containers: list[dict]) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}}


async def test_merge_and_json_patch(kc):
    await kc.ok("POST", CM, cm("a", x="1", y="2"))
    out = await kc.ok("PATCH", f"{CM}/a", {"data": {"x": None, "z": "3"}}, content_type="application/merge-patch+json")
    assert out["data"] == {"y": "2", "z": "3"}
    out = await kc.ok("PATCH", f"{CM}/a", [{"op": "replace", "path": "/data/y", "value": "9"}],
                      content_type="application/json-patch+json")
    assert out["data"]["y"] == "9"
    status, err, _ = await kc.call("PATCH", f"{CM}/a", [{"op": "test", "path": "/data/y", "value": "0"}],
                                   content_type="application/json-patch+json")
    assert status == 422, err
    status, err, _ = await kc.call("PATCH", f"{CM}/a", {"data": {}}, content_type="text/plain")
    assert status == 415 and err["reason"] == "UnsupportedMediaType"
    status, err, _ = await kc.call("PATCH", f"{CM}/nope", {"data": {}}, content_type="application/merge-patch+json")
    assert status == 404
    stale = {"metadata": {"resourceVersion": "1"}, "data": {"q": "1"}}
    status, err, _ = await kc.call("PATCH", f"{CM}/a", stale, content_type="application/merge-patch+json")
    assert status == 409 and err["reason"] == "Conflict"


async def test_strategic_merge_patch(kc):
    await kc.ok("POST", DEP, deployment("d", [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}}
    out = await kc.ok("PATCH", f"{DEP}/d", patch, content_type="application/strategic-merge-patch+json")
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in cs] == [("a", "a:1"), ("b", "b:2")]
    assert out["metadata"]["generation"] == 2


async def test_server_side_apply(kc):
    body = cm("s", a="1")
    status, err, _ = await kc.call("PATCH", f"{CM}/s", body, content_type="application/apply-patch+yaml")
    assert status == 422 and "fieldManager: Required value" in err["message"]
    status, out, _ = await kc.call("PATCH", f"{CM}/s?fieldManager=alice", body,
                                   content_type="application/apply-patch+yaml")
    assert status == 201 and out["data"] == {"a": "1"}
    managers = {(m["manager"], m["operation"]) for m in out["metadata"]["managedFields"]}
    assert ("alice", "Apply") in managers
    status, err, _ = await kc.call("PATCH", f"{CM}/s?fieldManager=bob", cm("s", a="2"),
                                   content_type="application/apply-patch+yaml")
    assert status == 409 and err["reason"] == "Conflict"
    assert err["message"].startswith("Apply failed with 1 conflict")
    assert err["details"]["causes"][0]["reason"] == "FieldManagerConflict"
    assert err["details"]["causes"][0]["field"] == ".data.a"
    out = await kc.ok("PATCH", f"{CM}/s?fieldManager=bob&force=true", cm("s", a="2"),
                      content_type="application/apply-patch+yaml")
    assert out["data"]["a"] == "2"
    yaml_body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\ndata:\n  a: '2'\n  b: '3'\n"
    out = await kc.ok("PATCH", f"{CM}/s?fieldManager=bob", raw=yaml_body, content_type="application/apply-patch+yaml")
    assert out["data"] == {"a": "2", "b": "3"}


async def test_managed_fields_for_updates(kc):
    out = await kc.ok("POST", CM + "?fieldManager=kubectl-create", cm("m", a="1"))
    assert out["metadata"]["managedFields"][0]["manager"] == "kubectl-create"
    assert out["metadata"]["managedFields"][0]["operation"] == "Update"


async def test_smp_rejected_for_custom_resources(kc):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    await kc.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    base = "/apis/example.com/v1/namespaces/default/widgets"
    await kc.ok("POST", base, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"a": 1}})
    status, err, _ = await kc.call("PATCH", f"{base}/w", {"spec": {"a": 2}},
                                   content_type="application/strategic-merge-patch+json")
    assert status == 415 and err["reason"] == "UnsupportedMediaType"
    out = await kc.ok("PATCH", f"{base}/w", {"spec": {"a": 2}}, content_type="application/merge-patch+json")
    assert out["spec"] == {"a": 2}
