"""Server-side apply (spec 5.8-5.11): create, update, removal, conflicts, force, list types."""

import copy
import json

import pytest

from pyk3s.api.patch import LAST_APPLIED, ApplyConflict, PatchError, server_side_apply, update_managed_fields

CM = ("", "v1", "ConfigMap")
DEPLOY = ("apps", "v1", "Deployment")


def cm(data, **meta):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", **meta}, "data": data}


def apply(live, obj, manager="kubectl", force=False, gvk=CM, now="2025-01-01T00:00:01Z"):
    return server_side_apply(live, obj, manager=manager, force=force, api_version="v1", gvk=gvk, now=now)


def update(old, new, manager, now="2025-01-01T00:00:00Z"):
    out = copy.deepcopy(new)
    out["metadata"]["managedFields"] = update_managed_fields(
        old, new, manager=manager, operation="Update", api_version="v1", subresource=None, now=now)
    return out


def owners(obj):
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def test_create_records_apply_entry():
    out = apply(None, cm({"a": "1"}))
    assert out["data"] == {"a": "1"}
    assert out["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2025-01-01T00:00:01Z",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]


def test_reapply_removes_fields_no_longer_applied():
    live = apply(None, cm({"a": "1", "b": "2"}, labels={"x": "1"}))
    out = apply(live, cm({"a": "1"}))
    assert out["data"] == {"a": "1"}
    assert "labels" not in out["metadata"]
    assert owners(out)[("kubectl", "Apply")] == {"f:data": {"f:a": {}}}


def test_removal_spares_fields_another_manager_owns():
    live = apply(None, cm({"a": "1", "b": "2"}))
    live = apply(live, cm({"b": "2"}), manager="other")  # same value: shared, no conflict
    out = apply(live, cm({"a": "1"}))
    assert out["data"] == {"a": "1", "b": "2"}


def test_dropping_the_whole_map_removes_it():
    live = apply(None, cm({"a": "1"}))
    out = apply(live, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}})
    assert "data" not in out and "managedFields" not in out["metadata"]


def test_conflict_with_update_manager_message():
    live = update(None, cm({"a": "1"}), "kubectl-client-side-apply")
    with pytest.raises(ApplyConflict) as err:
        apply(live, cm({"a": "2"}), manager="mine")
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.a'
    assert err.value.conflicts == [("kubectl-client-side-apply", "v1", ".data.a")]
    assert err.value.causes == [{"reason": "FieldManagerConflict", "field": ".data.a",
                                 "message": 'conflict with "kubectl-client-side-apply" using v1'}]


def test_conflict_with_other_applier_and_many_conflicts():
    live = apply(None, cm({"a": "1", "b": "1"}), manager="alice")
    live = update(live, cm({"a": "1", "b": "1", "c": "1"}), "bob")
    with pytest.raises(ApplyConflict) as err:
        apply(live, cm({"a": "2", "b": "2", "c": "2"}), manager="carol")
    assert err.value.message == (
        'Apply failed with 3 conflicts: conflicts with "alice":\n- .data.a\n- .data.b\n'
        'conflicts with "bob" using v1:\n- .data.c')


def test_same_value_is_shared_not_a_conflict():
    live = update(None, cm({"a": "1"}), "creator")
    out = apply(live, cm({"a": "1"}), manager="mine")
    assert owners(out) == {("mine", "Apply"): {"f:data": {"f:a": {}}},
                           ("creator", "Update"): {"f:data": {".": {}, "f:a": {}}}}


def test_force_takes_ownership_and_drops_empty_manager():
    live = update(None, cm({"a": "1"}), "creator")
    out = apply(live, cm({"a": "2"}), manager="mine", force=True)
    assert out["data"] == {"a": "2"}
    assert owners(out) == {("mine", "Apply"): {"f:data": {"f:a": {}}}, ("creator", "Update"): {"f:data": {}}}
    out = apply(live, cm({"a": "2"}, labels={"x": "y"}), manager="mine", force=True)
    live = update(None, cm({"a": "1"}), "creator")
    live["metadata"]["managedFields"][0]["fieldsV1"] = {"f:data": {"f:a": {}}}
    out = apply(live, cm({"a": "2"}), manager="mine", force=True)
    assert list(owners(out)) == [("mine", "Apply")]


def test_kubectl_upgrade_from_client_side_apply_without_conflict():
    # Live values equal the last-applied annotation, so fieldManager=kubectl may take them over.
    last = json.dumps(cm({"a": "1"}))
    live = update(None, cm({"a": "1"}, annotations={LAST_APPLIED: last}), "kubectl-client-side-apply")
    out = apply(live, cm({"a": "2"}), manager="kubectl")
    assert out["data"] == {"a": "2"}
    assert json.loads(out["metadata"]["annotations"][LAST_APPLIED]) == cm({"a": "2"})
    assert out["metadata"]["annotations"][LAST_APPLIED].endswith("\n")


def test_kubectl_upgrade_still_conflicts_when_live_drifted():
    last = json.dumps(cm({"a": "1"}))
    live = update(None, cm({"a": "9"}, annotations={LAST_APPLIED: last}), "kubectl-client-side-apply")
    with pytest.raises(ApplyConflict):
        apply(live, cm({"a": "2"}), manager="kubectl")


def test_rejects_managed_fields_in_body_and_missing_manager():
    with pytest.raises(PatchError) as err:
        apply(None, cm({}, managedFields=[]))
    assert (err.value.code, err.value.message) == (400, "metadata.managedFields must be nil")
    with pytest.raises(PatchError) as err:
        apply(None, cm({}), manager="")
    assert (err.value.code, err.value.message) == (422, "fieldManager: Required value: is required for apply patch")


def deploy(containers, **spec):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": containers, **spec}}}}


def test_fieldsv1_shape_for_deployment():
    out = apply(None, deploy([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]), gvk=DEPLOY)
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {'k:{"name":"web"}': {
                ".": {}, "f:image": {}, "f:name": {},
                "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}}}}}


def tmpl(obj):
    return obj["spec"]["template"]["spec"]


def test_containers_merge_by_name_ports_by_port_and_protocol():
    live = apply(None, deploy([{"name": "a", "image": "1", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]),
                 gvk=DEPLOY, manager="one")
    out = apply(live, deploy([{"name": "a", "ports": [{"containerPort": 53, "protocol": "TCP"}]},
                              {"name": "b", "image": "2"}]), gvk=DEPLOY, manager="two")
    assert tmpl(out)["containers"] == [
        {"name": "a", "image": "1", "ports": [{"containerPort": 53, "protocol": "UDP"},
                                              {"containerPort": 53, "protocol": "TCP"}]},
        {"name": "b", "image": "2"}]


def test_removing_a_container_the_applier_owned():
    live = apply(None, deploy([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]), gvk=DEPLOY)
    out = apply(live, deploy([{"name": "a", "image": "1"}]), gvk=DEPLOY)
    assert tmpl(out)["containers"] == [{"name": "a", "image": "1"}]


ATOMIC = [
    ("nodeSelector-atomic-map", {"nodeSelector": {"a": "1", "b": "2"}}, {"nodeSelector": {"c": "3"}},
     "nodeSelector", {"c": "3"}),
    ("tolerations-atomic-list", {"tolerations": [{"key": "a"}]}, {"tolerations": [{"key": "b"}]},
     "tolerations", [{"key": "b"}]),
]


@pytest.mark.parametrize(("first", "second", "field", "want"), [c[1:] for c in ATOMIC], ids=[c[0] for c in ATOMIC])
def test_atomic_fields_are_replaced(first, second, field, want):
    live = apply(None, deploy([{"name": "a", "image": "1"}], **first), gvk=DEPLOY, manager="one")
    out = apply(live, deploy([{"name": "a", "image": "1"}], **second), gvk=DEPLOY, manager="two", force=True)
    assert tmpl(out)[field] == want


def test_service_selector_atomic_and_ports_by_port_protocol():
    svc = lambda ports, sel: {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},  # noqa: E731
                              "spec": {"ports": ports, "selector": sel}}
    gvk = ("", "v1", "Service")
    live = apply(None, svc([{"port": 80}], {"a": "1", "b": "2"}), gvk=gvk, manager="one")
    out = apply(live, svc([{"port": 80, "protocol": "UDP"}], {"c": "3"}), gvk=gvk, manager="two", force=True)
    assert out["spec"]["selector"] == {"c": "3"}
    assert out["spec"]["ports"] == [{"port": 80}, {"port": 80, "protocol": "UDP"}]


def test_finalizers_are_a_set():
    live = apply(None, cm({}, finalizers=["a", "b"]), manager="one")
    out = apply(live, cm({}, finalizers=["b", "c"]), manager="two")
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]
    assert owners(out)[("two", "Apply")]["f:metadata"] == {"f:finalizers": {'v:"b"': {}, 'v:"c"': {}}}


def test_custom_resource_maps_merge_lists_atomic():
    gvk = ("ex.com", "v1", "Widget")
    cr = lambda spec: {"apiVersion": "ex.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}  # noqa: E731
    live = apply(None, cr({"a": {"x": 1}, "items": [1, 2]}), gvk=gvk, manager="one")
    out = apply(live, cr({"a": {"y": 2}, "items": [3]}), gvk=gvk, manager="two", force=True)
    assert out["spec"] == {"a": {"x": 1, "y": 2}, "items": [3]}
    assert owners(out)[("one", "Apply")] == {"f:spec": {"f:a": {"f:x": {}}}}


def test_unchanged_reapply_keeps_time():
    live = apply(None, cm({"a": "1"}), now="T1")
    out = apply(live, cm({"a": "1"}), now="T2")
    assert out["metadata"]["managedFields"][0]["time"] == "T1"
