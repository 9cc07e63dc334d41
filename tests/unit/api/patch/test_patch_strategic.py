"""Strategic merge patch: merge keys per type (spec 5.7) and every directive (spec 5.6)."""

import json

import pytest

from pyk3s.api.patch import PatchError, strategic_merge_patch

POD = ("", "v1", "Pod")
DEPLOY = ("apps", "v1", "Deployment")


def c(name, **kw):
    return {"name": name, **kw}


def pod(*containers, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a", "b"]},
            "spec": {"containers": list(containers), **spec}}


LIVE = pod(c("web", image="nginx:1", env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             ports=[{"containerPort": 80}]),
           c("side", image="busybox"),
           tolerations=[{"key": "k1"}], nodeSelector={"disk": "ssd", "zone": "a"},
           volumes=[{"name": "v", "configMap": {"name": "cm"}}])

CASES = [
    ("container-merged-by-name",
     {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}},
     lambda o: [x["image"] for x in o["spec"]["containers"]] == ["nginx:2", "busybox"]
     and o["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]),
    # Upstream's mergeSortedSlice puts patch items the live list does not know before server-only ones.
    ("container-added-first",
     {"spec": {"containers": [{"name": "new", "image": "x"}]}},
     lambda o: [x["name"] for x in o["spec"]["containers"]] == ["new", "web", "side"]),
    ("container-added-last-with-order",
     {"spec": {"$setElementOrder/containers": [{"name": "web"}, {"name": "side"}, {"name": "new"}],
               "containers": [{"name": "new", "image": "x"}]}},
     lambda o: [x["name"] for x in o["spec"]["containers"]] == ["web", "side", "new"]),
    ("patch-delete-element",
     {"spec": {"containers": [{"$patch": "delete", "name": "side"}]}},
     lambda o: [x["name"] for x in o["spec"]["containers"]] == ["web"]),
    ("patch-replace-list",
     {"spec": {"containers": [{"name": "only", "image": "i"}, {"$patch": "replace"}]}},
     lambda o: o["spec"]["containers"] == [{"name": "only", "image": "i"}]),
    ("patch-replace-map",
     {"spec": {"nodeSelector": {"$patch": "replace", "zone": "b"}}},
     lambda o: o["spec"]["nodeSelector"] == {"zone": "b"}),
    ("patch-delete-map",
     {"spec": {"nodeSelector": {"$patch": "delete"}}},
     lambda o: o["spec"]["nodeSelector"] == {}),
    ("patch-merge-explicit",
     {"spec": {"nodeSelector": {"$patch": "merge", "zone": "b"}}},
     lambda o: o["spec"]["nodeSelector"] == {"disk": "ssd", "zone": "b"}),
    ("nested-env-merged-by-name",
     {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}]}},
     lambda o: o["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"},
                                                      {"name": "C", "value": "4"}]),
    ("ports-merged-by-containerPort",
     {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "name": "http"}]}]}},
     lambda o: o["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "name": "http"}]),
    ("null-deletes-key",
     {"spec": {"nodeSelector": {"disk": None}}},
     lambda o: o["spec"]["nodeSelector"] == {"zone": "a"}),
    ("tolerations-replaced-atomically",
     {"spec": {"tolerations": [{"key": "k2"}]}},
     lambda o: o["spec"]["tolerations"] == [{"key": "k2"}]),
    ("command-replaced-atomically",
     {"spec": {"containers": [{"name": "side", "command": ["sh"]}]}},
     lambda o: o["spec"]["containers"][1]["command"] == ["sh"]),
    ("finalizers-merge-as-set",
     {"metadata": {"finalizers": ["b", "c"]}},
     lambda o: o["metadata"]["finalizers"] == ["a", "b", "c"]),
    ("deleteFromPrimitiveList",
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
     lambda o: o["metadata"]["finalizers"] == ["b"]),
    ("setElementOrder-reorders",
     {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
               "containers": [{"name": "web", "image": "nginx:3"}]}},
     lambda o: [(x["name"], x["image"]) for x in o["spec"]["containers"]] == [("side", "busybox"), ("web", "nginx:3")]),
    ("setElementOrder-without-list",
     {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}},
     lambda o: [x["name"] for x in o["spec"]["containers"]] == ["side", "web"]),
    ("setElementOrder-primitive-finalizers",
     {"metadata": {"$setElementOrder/finalizers": ["b", "a", "z"], "finalizers": ["z"]}},
     lambda o: o["metadata"]["finalizers"] == ["b", "a", "z"]),
    ("retainKeys-on-volume",
     {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}]}},
     lambda o: o["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]),
    ("unknown-field-map-merges",
     {"spec": {"newThing": {"a": 1}}},
     lambda o: o["spec"]["newThing"] == {"a": 1}),
]


@pytest.mark.parametrize(("patch", "check"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_strategic_pod(patch, check):
    before = json.dumps(LIVE, sort_keys=True)
    out = strategic_merge_patch(LIVE, patch, POD)
    assert check(out), json.dumps(out, indent=1)
    assert json.dumps(LIVE, sort_keys=True) == before


def test_setElementOrder_keeps_server_only_items_in_place():
    live = pod(c("a"), c("x"), c("b"))
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                      "containers": [{"name": "b", "image": "i"}]}}
    out = strategic_merge_patch(live, patch, POD)
    assert [x["name"] for x in out["spec"]["containers"]] == ["x", "b", "a"]


def test_kubectl_apply_patch_for_image_change():
    # What kubectl 1.32 client-side apply sends after editing the image in the file.
    live = pod(c("nginx", image="nginx:1.26", imagePullPolicy="IfNotPresent"))
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}\n"}},
             "spec": {"$setElementOrder/containers": [{"name": "nginx"}],
                      "containers": [{"image": "nginx:1.27", "name": "nginx"}]}}
    out = strategic_merge_patch(live, patch, POD)
    assert out["spec"]["containers"] == [{"name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"}]
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "{\"new\":1}\n"


def test_kubectl_apply_patch_removing_container():
    live = pod(c("a", image="1"), c("b", image="2"))
    patch = {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                      "containers": [{"$patch": "delete", "name": "b"}]}}
    assert strategic_merge_patch(live, patch, POD)["spec"]["containers"] == [{"name": "a", "image": "1"}]


def test_deployment_strategy_switch_with_retainKeys():
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    assert strategic_merge_patch(live, patch, DEPLOY)["spec"]["strategy"] == {"type": "Recreate"}


def test_template_containers_merge_inside_deployment():
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [c("a", image="1"), c("b", image="2")]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "3"}]}}}}
    out = strategic_merge_patch(live, patch, DEPLOY)
    assert out["spec"]["template"]["spec"]["containers"] == [c("a", image="1"), c("b", image="3")]


def test_service_ports_merge_by_port_and_status_conditions_by_type():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}], "selector": {"a": "1"}},
           "status": {"conditions": [{"type": "X", "status": "False"}]}}
    patch = {"spec": {"ports": [{"port": 443, "targetPort": 8443}], "selector": {"b": "2"}},
             "status": {"conditions": [{"type": "X", "status": "True"}, {"type": "Y", "status": "True"}]}}
    out = strategic_merge_patch(svc, patch, ("", "v1", "Service"))
    assert out["spec"]["ports"] == [{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}]
    assert out["spec"]["selector"] == {"a": "1", "b": "2"}  # SMP merges the map; only SSA treats it as atomic
    assert out["status"]["conditions"] == [{"type": "X", "status": "True"}, {"type": "Y", "status": "True"}]


def test_networking_and_rbac_lists_are_replaced():
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
           "spec": {"rules": [{"host": "a"}, {"host": "b"}]}}
    out = strategic_merge_patch(ing, {"spec": {"rules": [{"host": "c"}]}}, ("networking.k8s.io", "v1", "Ingress"))
    assert out["spec"]["rules"] == [{"host": "c"}]


def test_unknown_kind_is_a_merge_patch():
    cr = {"apiVersion": "ex.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"items": [1, 2], "a": 1}}
    out = strategic_merge_patch(cr, {"spec": {"items": [3], "a": None}}, ("ex.com", "v1", "Widget"))
    assert out["spec"] == {"items": [3]}


ERRORS = [
    ("missing-merge-key", {"spec": {"containers": [{"image": "x"}]}}, 422,
     "map: map[image:x] does not contain declared merge key: name"),
    ("delete-without-key", {"spec": {"containers": [{"$patch": "delete"}]}}, 422,
     "map: map[$patch:delete] does not contain declared merge key: name"),
    ("unknown-map-directive", {"spec": {"nodeSelector": {"$patch": "frob"}}}, 400,
     "Unknown patch type: frob in map: map[]"),
    ("merge-directive-in-list", {"spec": {"containers": [{"$patch": "merge"}]}}, 400,
     "merging lists cannot yet be specified in the patch"),
    ("retainKeys-missing-patched-key", {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name"], "emptyDir": {}}]}},
     400, "invalid patch format of retainKeys"),
    ("setElementOrder-not-a-list", {"spec": {"$setElementOrder/containers": {}}}, 400,
     "invalid patch format of setElementOrder list"),
]


@pytest.mark.parametrize(("patch", "code", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_strategic_errors(patch, code, message):
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(LIVE, patch, POD)
    assert (err.value.code, err.value.message) == (code, message)
