"""The admission pipeline that create and update share: the order of its steps as a client sees it,
and what a write that is not stored releases."""

from __future__ import annotations

import re

SVC = "/api/v1/namespaces/default/services"


def cm(name: str, ns: str = "default", **extra) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, **extra}


def node_port_svc(name: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": port}]}}


async def test_field_validation_comes_before_the_namespace_gate(kc):
    status, err, _ = await kc.call("POST", "/api/v1/namespaces/nowhere/configmaps", cm("a", "nowhere", bogus=1),
                                   query=[("fieldValidation", "Strict")])
    assert status == 400 and err["message"] == 'strict decoding error: unknown field "bogus"'


async def test_the_namespace_gate_comes_before_validation(kc):
    status, err, _ = await kc.call("POST", "/api/v1/namespaces/nowhere/configmaps",
                                   cm("a", "nowhere", data={"not a key": "x"}))
    assert status == 404 and err["message"] == 'namespaces "nowhere" not found'
    status, err, _ = await kc.call("POST", "/api/v1/namespaces/default/configmaps", cm("a", data={"not a key": "x"}))
    assert status == 422 and err["reason"] == "Invalid"


async def test_generated_name_is_validated_and_stored(kc):
    out = await kc.ok("POST", "/api/v1/namespaces/default/configmaps",
                      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}})
    assert re.fullmatch(r"gen-[a-z0-9]{5}", out["metadata"]["name"])
    await kc.ok("GET", f"/api/v1/namespaces/default/configmaps/{out['metadata']['name']}")


async def test_update_keeps_server_metadata_and_counts_generation(kc):
    made = await kc.ok("POST", "/apis/apps/v1/namespaces/default/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    body = {**made, "metadata": {**made["metadata"], "uid": "other", "generation": 7}}
    body["spec"] = {**made["spec"], "replicas": 3}
    out = await kc.ok("PUT", "/apis/apps/v1/namespaces/default/deployments/d", body)
    assert out["metadata"]["uid"] == made["metadata"]["uid"]
    assert out["metadata"]["generation"] == 2


async def test_dry_run_and_failed_creates_release_what_they_allocated(kc):
    await kc.ok("POST", SVC + "?dryRun=All", node_port_svc("dry", 30100))
    await kc.ok("POST", SVC, node_port_svc("a", 30101))
    status, err, _ = await kc.call("POST", SVC, node_port_svc("a", 30100))
    assert status == 409 and err["reason"] == "AlreadyExists"
    out = await kc.ok("POST", SVC, node_port_svc("b", 30100))
    assert out["spec"]["ports"][0]["nodePort"] == 30100
