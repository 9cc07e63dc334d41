"""CRUD, conflicts, namespace lifecycle and deletion semantics of the API core."""

from __future__ import annotations

CM = "/api/v1/namespaces/default/configmaps"


def cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


async def test_create_get_list(kc):
    out = await kc.ok("POST", CM, cm("a", x="1"))
    meta = out["metadata"]
    assert meta["namespace"] == "default" and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    got = await kc.ok("GET", f"{CM}/a")
    assert got == out
    lst = await kc.ok("GET", CM)
    assert lst["kind"] == "ConfigMapList" and [i["metadata"]["name"] for i in lst["items"]] == ["a"]
    assert int(lst["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])


async def test_create_errors(kc):
    await kc.ok("POST", CM, cm("a"))
    status, out, _ = await kc.call("POST", CM, cm("a"))
    assert status == 409 and out["reason"] == "AlreadyExists" and out["message"] == 'configmaps "a" already exists'
    status, out, _ = await kc.call("GET", f"{CM}/nope")
    assert status == 404 and out["message"] == 'configmaps "nope" not found' and out["kind"] == "Status"
    body = cm("b")
    body["metadata"]["namespace"] = "other"
    status, out, _ = await kc.call("POST", CM, body)
    assert status == 400
    status, out, _ = await kc.call("POST", "/api/v1/namespaces/missing/configmaps", cm("c"))
    assert status == 404 and out["message"] == 'namespaces "missing" not found'


async def test_generate_name_and_dry_run(kc):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    out = await kc.ok("POST", CM, body)
    assert out["metadata"]["name"].startswith("gen-") and len(out["metadata"]["name"]) == 9
    out = await kc.ok("POST", CM + "?dryRun=All", cm("dry"))
    assert out["metadata"]["name"] == "dry"
    status, _, _ = await kc.call("GET", f"{CM}/dry")
    assert status == 404


async def test_update_conflict(kc):
    out = await kc.ok("POST", CM, cm("a", x="1"))
    out["data"]["x"] = "2"
    new = await kc.ok("PUT", f"{CM}/a", out)
    assert new["data"]["x"] == "2" and new["metadata"]["resourceVersion"] != out["metadata"]["resourceVersion"]
    status, err, _ = await kc.call("PUT", f"{CM}/a", out)  # stale resourceVersion
    assert status == 409 and err["reason"] == "Conflict"
    assert err["message"] == ('Operation cannot be fulfilled on configmaps "a": the object has been modified; '
                              "please apply your changes to the latest version and try again")
    status, err, _ = await kc.call("PUT", f"{CM}/zz", cm("zz"))
    assert status == 404


async def test_field_validation(kc):
    body = cm("a")
    body["spec"] = {"foo": 1}
    status, err, _ = await kc.call("POST", CM + "?fieldValidation=Strict", body)
    assert status == 400 and err["message"] == 'strict decoding error: unknown field "spec"'
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x", "bogus": 1}]}}
    status, err, _ = await kc.call("POST", "/api/v1/namespaces/default/pods?fieldValidation=Strict", pod)
    assert status == 400 and 'unknown field "spec.containers[0].bogus"' in err["message"]
    status, out, resp = await kc.call("POST", "/api/v1/namespaces/default/pods?fieldValidation=Warn", pod)
    assert status == 201 and "bogus" not in out["spec"]["containers"][0]
    assert "spec.containers[0].bogus" in resp.headers["Warning"]


async def test_generation_and_status_rules(kc):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
           "status": {"replicas": 5}}
    base = "/apis/apps/v1/namespaces/default/deployments"
    out = await kc.ok("POST", base, dep)
    assert out["metadata"]["generation"] == 1 and out["status"] == {}
    out = await kc.ok("PATCH", f"{base}/d", {"metadata": {"labels": {"a": "b"}}},
                      content_type="application/merge-patch+json")
    assert out["metadata"]["generation"] == 1
    out = await kc.ok("PATCH", f"{base}/d", {"spec": {"replicas": 3}, "status": {"replicas": 9}},
                      content_type="application/merge-patch+json")
    assert out["metadata"]["generation"] == 2 and out["spec"]["replicas"] == 3 and out["status"] == {}
    out = await kc.ok("PATCH", f"{base}/d/status", {"spec": {"replicas": 7}, "status": {"replicas": 3}},
                      content_type="application/merge-patch+json")
    assert out["status"]["replicas"] == 3 and out["spec"]["replicas"] == 3 and out["metadata"]["generation"] == 2
    scale = await kc.ok("GET", f"{base}/d/scale")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 3 and scale["status"] == {"replicas": 3, "selector": "app=d"}
    scale = await kc.ok("PATCH", f"{base}/d/scale", {"spec": {"replicas": 5}}, content_type="application/merge-patch+json")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 5
    assert (await kc.ok("GET", f"{base}/d"))["spec"]["replicas"] == 5


async def test_finalizers(kc):
    body = cm("f")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await kc.ok("POST", CM, body)
    out = await kc.ok("DELETE", f"{CM}/f")
    assert out["kind"] == "ConfigMap" and out["metadata"]["deletionTimestamp"]
    assert out["metadata"]["deletionGracePeriodSeconds"] == 0
    again = await kc.ok("DELETE", f"{CM}/f")
    assert again["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
    status, err, _ = await kc.call("PATCH", f"{CM}/f", {"metadata": {"finalizers": ["example.com/hold", "new"]}},
                                   content_type="application/merge-patch+json")
    assert status == 422
    await kc.ok("PATCH", f"{CM}/f", {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
    status, _, _ = await kc.call("GET", f"{CM}/f")
    assert status == 404


async def test_delete_status_and_propagation(kc):
    await kc.ok("POST", CM, cm("a"))
    out = await kc.ok("DELETE", f"{CM}/a")
    assert out["kind"] == "Status" and out["status"] == "Success" and out["details"]["name"] == "a"
    await kc.ok("POST", CM, cm("b"))
    out = await kc.ok("DELETE", f"{CM}/b", {"propagationPolicy": "Foreground"})
    assert out["metadata"]["finalizers"] == ["foregroundDeletion"] and out["metadata"]["deletionTimestamp"]
    await kc.ok("POST", CM, cm("c"))
    out = await kc.ok("DELETE", f"{CM}/c?propagationPolicy=Orphan")
    assert out["metadata"]["finalizers"] == ["orphan"]


async def test_delete_of_a_service_answers_with_the_service(kc):
    base = "/api/v1/namespaces/default/services"
    await kc.ok("POST", base, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                               "spec": {"ports": [{"port": 80}]}})
    out = await kc.ok("DELETE", f"{base}/s")
    assert out["kind"] == "Service" and out["metadata"]["name"] == "s"
    status, _, _ = await kc.call("GET", f"{base}/s")
    assert status == 404


async def test_graceful_pod_delete(kc):
    base = "/api/v1/namespaces/default/pods"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x"}], "terminationGracePeriodSeconds": 20}}
    await kc.ok("POST", base, pod)
    out = await kc.ok("DELETE", f"{base}/p")  # unbound: gone at once
    status, _, _ = await kc.call("GET", f"{base}/p")
    assert status == 404
    await kc.ok("POST", base, pod)
    await kc.ok("POST", f"{base}/p/binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                                              "target": {"kind": "Node", "name": "n1"}})
    out = await kc.ok("DELETE", f"{base}/p")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 20 and out["spec"]["nodeName"] == "n1"
    await kc.ok("DELETE", f"{base}/p", {"gracePeriodSeconds": 0})
    status, _, _ = await kc.call("GET", f"{base}/p")
    assert status == 404


async def test_namespace_lifecycle(kc):
    status, err, _ = await kc.call("DELETE", "/api/v1/namespaces/default")
    assert status == 403 and "may not be deleted" in err["message"]
    ns = await kc.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
    assert ns["spec"]["finalizers"] == ["kubernetes"] and ns["status"]["phase"] == "Active"
    await kc.ok("POST", "/api/v1/namespaces/t/configmaps", cm("x"))
    out = await kc.ok("DELETE", "/api/v1/namespaces/t")
    assert out["status"]["phase"] == "Terminating" and out["metadata"]["deletionTimestamp"]
    status, err, _ = await kc.call("POST", "/api/v1/namespaces/t/configmaps", cm("y"))
    assert status == 403 and err["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    assert err["message"] == "unable to create new content in namespace t because it is being terminated"
    out["spec"]["finalizers"] = []
    await kc.ok("PUT", "/api/v1/namespaces/t/finalize", out)
    status, _, _ = await kc.call("GET", "/api/v1/namespaces/t")
    assert status == 404


async def test_deletecollection(kc):
    for n in ("a", "b", "c"):
        body = cm(n)
        body["metadata"]["labels"] = {"grp": "1" if n != "c" else "2"}
        await kc.ok("POST", CM, body)
    out = await kc.ok("DELETE", CM + "?labelSelector=grp%3D1".replace("%3D", "="))
    assert sorted(i["metadata"]["name"] for i in out["items"]) == ["a", "b"]
    left = await kc.ok("GET", CM)
    assert [i["metadata"]["name"] for i in left["items"]] == ["c"]
