"""managedFields for non-apply writes (operation Update, spec 5.2/5.10/5.12)."""

import copy

import pytest

from pyk3s.api.patch import fields_v1, update_managed_fields

NOW = "2025-01-01T00:00:00Z"


def upd(old, new, manager, now=NOW, subresource=None):
    return update_managed_fields(old, new, manager=manager, operation="Update", api_version="v1",
                                 subresource=subresource, now=now)


def with_mf(obj, mf):
    out = copy.deepcopy(obj)
    out["metadata"]["managedFields"] = mf
    return out


CM = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "c", "namespace": "default", "uid": "u", "resourceVersion": "5",
                   "creationTimestamp": "2025-01-01T00:00:00Z", "labels": {"app": "x"}},
      "data": {"a": "1"}}

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "resources": {}, "terminationMessagePath": "/dev/termination-log"}],
                "dnsPolicy": "ClusterFirst", "securityContext": {}}}

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"app": "d"}},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                   "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                   "template": {"metadata": {"labels": {"app": "d"}},
                                "spec": {"containers": [{"name": "c", "image": "i"}]}}}}

CREATE_SHAPES = [
    ("configmap", CM, {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}),
    ("pod", POD, {"f:spec": {
        "f:containers": {'k:{"name":"nginx"}': {
            ".": {}, "f:image": {}, "f:name": {},
            "f:ports": {".": {}, 'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {},
                                                                             "f:protocol": {}}},
            "f:resources": {}, "f:terminationMessagePath": {}}},
        "f:dnsPolicy": {}, "f:securityContext": {}}}),
    ("deployment", DEPLOY, {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:replicas": {}, "f:selector": {},
                   "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                                  "f:type": {}},
                   "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                                  "f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {},
                                                                                 "f:name": {}}}}}}}),
]


@pytest.mark.parametrize(("obj", "want"), [c[1:] for c in CREATE_SHAPES], ids=[c[0] for c in CREATE_SHAPES])
def test_create_fieldsv1_shape_like_upstream(obj, want):
    (entry,) = upd(None, obj, "kubectl-create")
    assert entry == {"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": NOW,
                     "fieldsType": "FieldsV1", "fieldsV1": want}


def test_label_change_moves_ownership_and_unchanged_write_is_noop():
    live = with_mf(CM, upd(None, CM, "kubectl-create"))
    new = copy.deepcopy(live)
    new["metadata"]["labels"]["app"] = "y"
    mf = upd(live, new, "kubectl-label", now="2025-01-02T00:00:00Z")
    assert [(e["manager"], e["fieldsV1"]) for e in mf] == [
        ("kubectl-create", {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {}}}),
        ("kubectl-label", {"f:metadata": {"f:labels": {"f:app": {}}}})]
    live2 = with_mf(new, mf)
    assert upd(live2, copy.deepcopy(live2), "someone") == mf


def test_manager_left_without_fields_is_dropped():
    live = with_mf(CM, upd(None, {**CM, "metadata": {"name": "c"}, "data": {"a": "1"}}, "first"))
    new = copy.deepcopy(live)
    new["data"] = {"a": "2"}
    new["metadata"]["managedFields"] = live["metadata"]["managedFields"]
    live["metadata"]["managedFields"][0]["fieldsV1"] = {"f:data": {"f:a": {}}}
    mf = upd(live, new, "second")
    assert [e["manager"] for e in mf] == ["second"]


def test_removed_field_leaves_owner():
    live = with_mf(CM, upd(None, CM, "kubectl-create"))
    new = copy.deepcopy(live)
    del new["metadata"]["labels"]
    mf = upd(live, new, "kubectl-edit")
    assert [(e["manager"], e["fieldsV1"]) for e in mf] == [("kubectl-create", {"f:data": {".": {}, "f:a": {}}})]


def test_client_side_apply_owns_last_applied_annotation():
    obj = copy.deepcopy(CM)
    obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}
    (entry,) = upd(None, obj, "kubectl-client-side-apply")
    assert entry["fieldsV1"]["f:metadata"]["f:annotations"] == {
        ".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}


def test_client_provided_managed_fields_replace_stored_ones():
    live = with_mf(CM, upd(None, CM, "kubectl-client-side-apply"))
    provided = [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": NOW,
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]
    assert upd(live, with_mf(live, provided), "kubectl") == provided
    assert upd(live, with_mf(live, [{}]), "kubectl") == []


def test_subresource_recorded():
    live = with_mf(POD, upd(None, POD, "create"))
    new = copy.deepcopy(live)
    new["status"] = {"phase": "Running"}
    mf = upd(live, new, "kubelet", subresource="status")
    assert mf[-1]["subresource"] == "status"
    assert mf[-1]["fieldsV1"] == {"f:status": {"f:phase": {}}}


def test_fields_v1_helper_strips_server_fields():
    assert fields_v1(CM, ("", "v1", "ConfigMap")) == {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}


def test_field_set_conversions_leave_no_cyclic_garbage() -> None:
    # They run on every write: garbage in reference cycles would pile up until a full collection.
    import gc

    from pyk3s.api.patch.fieldpath import set_to_trie, trie_to_set

    paths = {("f:metadata",), ("f:metadata", "f:labels"), ("f:metadata", "f:labels", "f:app"), ("f:spec",)}
    gc.collect()
    gc.disable()
    try:
        for _ in range(100):
            assert trie_to_set(set_to_trie(paths)) == frozenset(paths)
        assert gc.collect() == 0
    finally:
        gc.enable()
