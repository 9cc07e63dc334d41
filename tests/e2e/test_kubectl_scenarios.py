"""kubectl 1.32 scenarios against a real ``pyk3s server`` over HTTPS (no agent): every case checks
kubectl's output and the object as stored (read back with ``-o json``)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest
from pyk3s_server import ServerProcess

pytestmark = pytest.mark.e2e


def get_json(srv: ServerProcess, *args: str) -> dict:
    return srv.kubectl("get", *args, "-o", "json").json()  # type: ignore[return-value]


def gone(srv: ServerProcess, *args: str) -> bool:
    r = srv.kubectl("get", *args, check=False)
    return r.rc == 1 and "NotFound" in r.err


@pytest.fixture
def ns(api_server: ServerProcess) -> str:
    name = f"pk-{secrets.token_hex(3)}"
    assert api_server.kubectl("create", "namespace", name).out.strip() == f"namespace/{name} created"
    return name


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  labels: {app: web}
data:
  a: "%s"
"""

POD = """apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: %s}
spec:
  containers:
  - name: main
    image: pyk3s/whoami
"""


# --- create / apply ---------------------------------------------------------------------------------


def test_create_then_client_side_apply(api_server, ns, tmp_path):
    k = api_server.kubectl
    f = write(tmp_path, "cm.yaml", CM % "1")
    assert k("create", "-f", f, "-n", ns).out.strip() == "configmap/cfg created"
    r = k("apply", "-f", f, "-n", ns)
    assert r.out.strip() == "configmap/cfg configured"
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in r.err
    stored = get_json(api_server, "cm", "cfg", "-n", ns)
    last = json.loads(stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["data"] == {"a": "1"}

    f2 = write(tmp_path, "cm2.yaml", (CM % "2").replace("name: cfg", "name: cfg2"))
    assert k("apply", "-f", f2, "-n", ns).out.strip() == "configmap/cfg2 created"
    assert k("apply", "-f", f2, "-n", ns).out.strip() == "configmap/cfg2 unchanged"
    write(tmp_path, "cm2.yaml", (CM % "3").replace("name: cfg", "name: cfg2").replace("  labels: {app: web}\n", ""))
    assert k("apply", "-f", f2, "-n", ns).out.strip() == "configmap/cfg2 configured"
    stored = get_json(api_server, "cm", "cfg2", "-n", ns, "--show-managed-fields")
    assert stored["data"] == {"a": "3"}
    assert not stored["metadata"].get("labels"), "a label dropped from the file is removed by the 3-way patch"
    managers = {m["manager"] for m in stored["metadata"]["managedFields"]}
    assert managers == {"kubectl-client-side-apply"}


def test_server_side_apply_conflict_and_force(api_server, ns, tmp_path):
    k = api_server.kubectl
    f = write(tmp_path, "cm.yaml", CM % "1")
    assert k("apply", "--server-side", "-f", f, "-n", ns).out.strip() == "configmap/cfg serverside-applied"
    stored = get_json(api_server, "cm", "cfg", "-n", ns, "--show-managed-fields")
    (entry,) = stored["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("kubectl", "Apply", "v1")
    assert entry["fieldsV1"]["f:data"] == {"f:a": {}}
    assert entry["fieldsV1"]["f:metadata"]["f:labels"] == {"f:app": {}}

    write(tmp_path, "cm.yaml", CM % "2")
    r = k("apply", "--server-side", "--field-manager=other", "-f", f, "-n", ns, check=False)
    assert r.rc == 1
    assert r.err.startswith('error: Apply failed with 1 conflict: conflict with "kubectl": .data.a\n')
    assert "* If you intend to manage all of these fields, please re-run the apply" in r.err
    assert get_json(api_server, "cm", "cfg", "-n", ns)["data"] == {"a": "1"}

    r = k("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", f, "-n", ns)
    assert r.out.strip() == "configmap/cfg serverside-applied"
    stored = get_json(api_server, "cm", "cfg", "-n", ns, "--show-managed-fields")
    assert stored["data"] == {"a": "2"}
    owners = {m["manager"]: m["fieldsV1"] for m in stored["metadata"]["managedFields"]}
    assert "f:a" in owners["other"]["f:data"]
    assert "f:data" not in owners["kubectl"], "forcing takes .data.a away from the previous manager"


# --- get ------------------------------------------------------------------------------------------


def test_get_output_formats_and_selectors(api_server, ns, tmp_path):
    k = api_server.kubectl
    k("apply", "-f", write(tmp_path, "p1.yaml", POD % ("p1", "one")), "-n", ns)
    k("apply", "-f", write(tmp_path, "p2.yaml", POD % ("p2", "two")), "-n", ns)
    wide = k("get", "pods", "-o", "wide", "-n", ns).out.splitlines()
    assert re.split(r"\s{2,}", wide[0].strip()) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                                    "NOMINATED NODE", "READINESS GATES"]
    assert [line.split()[:4] for line in wide[1:]] == [["p1", "0/1", "Pending", "0"], ["p2", "0/1", "Pending", "0"]]

    y = k("get", "pod", "p1", "-n", ns, "-o", "yaml").out
    assert "kind: Pod\n" in y and "  name: p1\n" in y and "image: pyk3s/whoami" in y
    assert k("get", "pod", "p1", "-n", ns, "-o", "jsonpath={.spec.containers[0].name}").out == "main"

    shown = k("get", "pods", "-n", ns, "--show-labels").out.splitlines()
    assert shown[0].split()[-1] == "LABELS" and shown[1].split()[-1] == "app=one"
    assert k("get", "pods", "-n", ns, "-l", "app=two", "-o", "name").out.split() == ["pod/p2"]
    assert k("get", "pods", "-n", ns, "-l", "app in (one,two),app!=one", "-o", "name").out.split() == ["pod/p2"]
    assert k("get", "pods", "-n", ns, "--field-selector", "metadata.name=p1", "-o", "name").out.split() == ["pod/p1"]
    assert k("get", "pods", "-n", ns, "--field-selector", "status.phase=Pending", "-o", "name").out.split() == [
        "pod/p1", "pod/p2"]
    bad = k("get", "pods", "-n", ns, "--field-selector", "spec.foo=x", check=False)
    assert bad.rc == 1 and bad.err.strip().endswith("field label not supported: spec.foo")

    every = k("get", "pods", "-A").out.splitlines()
    assert every[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert [ns, "p1"] in [line.split()[:2] for line in every[1:]]
    assert get_json(api_server, "pods", "-A", "-l", "app=one")["items"][0]["metadata"]["namespace"] == ns


def test_get_chunked_pagination(api_server, ns):
    k = api_server.kubectl
    for i in range(5):
        k("create", "configmap", f"pg{i}", "--from-literal", f"k={i}", "-n", ns)
    r = k("get", "cm", "-n", ns, "--chunk-size=2", "-v=6")
    assert [line.split()[0] for line in r.out.splitlines()[1:]] == ["kube-root-ca.crt", "pg0", "pg1", "pg2", "pg3",
                                                                    "pg4"] or \
        [line.split()[0] for line in r.out.splitlines()[1:]] == ["pg0", "pg1", "pg2", "pg3", "pg4"]
    lists = [line for line in r.err.splitlines() if "GET" in line and "/configmaps?" in line]
    assert len(lists) >= 3 and all("limit=2" in line for line in lists)
    assert sum("continue=" in line for line in lists) == len(lists) - 1
    names = k("get", "cm", "-n", ns, "--chunk-size=2", "-o", "name").out.split()
    assert {f"configmap/pg{i}" for i in range(5)} <= set(names) and len(names) == len(set(names))


def test_get_watch_prints_rows_for_changes(api_server, ns):
    k = api_server.kubectl
    k("create", "configmap", "w0", "--from-literal", "a=b", "-n", ns)
    cmd = ["kubectl", "--kubeconfig", str(api_server.kubeconfig), "--cache-dir",
           str(api_server.tmp / f"kcache-{secrets.token_hex(4)}"), "get", "cm", "-n", ns, "-w", "-l", "w"]
    k("label", "cm", "w0", "w=0", "-n", ns)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(30, proc.kill)   # a missing row must fail the test, not hang it
    watchdog.start()
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["NAME", "DATA", "AGE"]
        assert proc.stdout.readline().split()[0] == "w0"
        k("create", "configmap", "w1", "--from-literal", "a=b", "-n", ns)   # no label yet: not shown
        k("label", "cm", "w1", "w=1", "-n", ns)                              # now matches: a row
        k("annotate", "cm", "w1", "x=y", "-n", ns)                           # modified: a row
        k("delete", "cm", "w1", "-n", ns)                                    # deleted: the row again
        rows = [proc.stdout.readline().split()[:2] for _ in range(3)]
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(10)
    assert rows == [["w1", "1"]] * 3


# --- describe / edit / patch / label / scale ----------------------------------------------------


def test_describe_pod_and_deployment_with_events(api_server, ns, tmp_path):
    k = api_server.kubectl
    k("apply", "-f", write(tmp_path, "p.yaml", POD % ("dp", "dp")), "-n", ns)
    k("create", "deployment", "web", "--image=nginx", "--replicas=1", "-n", ns)
    api_server.wait_for(lambda: "FailedScheduling" in k("describe", "pod", "dp", "-n", ns).out, what="scheduler event")
    out = k("describe", "pod", "dp", "-n", ns).out
    assert re.search(r"^Name:\s+dp$", out, re.M) and re.search(rf"^Namespace:\s+{ns}$", out, re.M)
    assert re.search(r"^Status:\s+Pending$", out, re.M) and re.search(r"^\s+Image:\s+pyk3s/whoami$", out, re.M)
    events = out.split("\nEvents:\n", 1)[1]
    assert re.search(r"Warning\s+FailedScheduling\s+\S+\s+default-scheduler\s+", events)

    api_server.wait_for(lambda: "ScalingReplicaSet" in k("describe", "deploy", "web", "-n", ns).out,
                        what="deployment event")
    out = k("describe", "deployment", "web", "-n", ns).out
    assert re.search(r"^Replicas:\s+1 desired \| 1 updated \| 1 total \| 0 available \| 1 unavailable$", out, re.M)
    assert re.search(r"^NewReplicaSet:\s+web-[a-z0-9]+ \(1/1 replicas created\)$", out, re.M)
    assert re.search(r"Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set web-\S+ "
                     r"from 0 to 1", out)


def test_edit_with_scripted_editor(api_server, ns):
    k = api_server.kubectl
    k("create", "configmap", "ed", "--from-literal", "color=red", "-n", ns)
    before = get_json(api_server, "cm", "ed", "-n", ns)
    r = k("edit", "cm", "ed", "-n", ns, env={"KUBE_EDITOR": "sed -i s/color:\\ red/color:\\ blue/"})
    assert r.out.strip() == "configmap/ed edited"
    after = get_json(api_server, "cm", "ed", "-n", ns, "--show-managed-fields")
    assert after["data"] == {"color": "blue"}
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert "kubectl-edit" in {m["manager"] for m in after["metadata"]["managedFields"]}
    r = k("edit", "cm", "ed", "-n", ns, env={"KUBE_EDITOR": "true"})
    assert r.err.strip() == "Edit cancelled, no changes made."
    assert get_json(api_server, "cm", "ed", "-n", ns)["metadata"]["resourceVersion"] == \
        after["metadata"]["resourceVersion"]


def test_patch_strategic_merge_and_json(api_server, ns):
    k = api_server.kubectl
    k("create", "deployment", "pd", "--image=nginx", "--replicas=0", "-n", ns)
    smp = '{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}'
    assert k("patch", "deploy", "pd", "-n", ns, "-p", smp).out.strip() == "deployment.apps/pd patched"
    containers = get_json(api_server, "deploy", "pd", "-n", ns)["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("side", "busybox"), ("nginx", "nginx")]

    merge = '{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"}]}}}}'
    k("patch", "deploy", "pd", "-n", ns, "--type=merge", "-p", merge)
    containers = get_json(api_server, "deploy", "pd", "-n", ns)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["only"], "a merge patch replaces lists"

    ops = '[{"op":"add","path":"/metadata/labels/j","value":"2"},{"op":"add","path":"/spec/paused","value":true}]'
    k("patch", "deploy", "pd", "-n", ns, "--type=json", "-p", ops)
    stored = get_json(api_server, "deploy", "pd", "-n", ns, "--show-managed-fields")
    assert stored["metadata"]["labels"]["j"] == "2" and stored["spec"]["paused"] is True
    assert "kubectl-patch" in {m["manager"] for m in stored["metadata"]["managedFields"]}
    rv = stored["metadata"]["resourceVersion"]
    r = k("patch", "deploy", "pd", "-n", ns, "--type=json", "-p", '[{"op":"test","path":"/spec/replicas","value":5}]',
          check=False)
    assert r.rc == 1 and "test" in r.err
    assert get_json(api_server, "deploy", "pd", "-n", ns)["metadata"]["resourceVersion"] == rv


def test_label_and_annotate(api_server, ns):
    k = api_server.kubectl
    k("create", "configmap", "lb", "--from-literal", "a=b", "-n", ns)
    assert k("label", "cm", "lb", "tier=fe", "-n", ns).out.strip() == "configmap/lb labeled"
    r = k("label", "cm", "lb", "tier=be", "-n", ns, check=False)
    assert r.rc == 1 and r.err.strip() == "error: 'tier' already has a value (fe), and --overwrite is false"
    k("label", "cm", "lb", "tier=be", "--overwrite", "-n", ns)
    assert get_json(api_server, "cm", "lb", "-n", ns)["metadata"]["labels"] == {"tier": "be"}
    assert k("label", "cm", "lb", "tier-", "-n", ns).out.strip() == "configmap/lb unlabeled"
    assert "labels" not in get_json(api_server, "cm", "lb", "-n", ns)["metadata"], "an empty map is not stored"

    assert k("annotate", "cm", "lb", "note=hi", "-n", ns).out.strip() == "configmap/lb annotated"
    k("annotate", "cm", "lb", "note=ho", "--overwrite", "-n", ns)
    assert get_json(api_server, "cm", "lb", "-n", ns)["metadata"]["annotations"] == {"note": "ho"}
    k("annotate", "cm", "lb", "note-", "-n", ns)
    assert "annotations" not in get_json(api_server, "cm", "lb", "-n", ns)["metadata"]


def test_scale_deployment_uses_the_scale_subresource(api_server, ns):
    k = api_server.kubectl
    k("create", "deployment", "sc", "--image=nginx", "--replicas=0", "-n", ns)
    r = k("scale", "deploy", "sc", "--replicas=2", "-n", ns, "-v=6")
    assert r.out.strip() == "deployment.apps/sc scaled"
    assert re.search(rf"PATCH https://\S+/apis/apps/v1/namespaces/{ns}/deployments/sc/scale\S* 200", r.err)
    assert get_json(api_server, "deploy", "sc", "-n", ns)["spec"]["replicas"] == 2
    scale = json.loads(k("get", "--raw", f"/apis/apps/v1/namespaces/{ns}/deployments/sc/scale").out)
    assert (scale["kind"], scale["apiVersion"], scale["spec"]["replicas"]) == ("Scale", "autoscaling/v1", 2)
    api_server.wait_for(lambda: k("get", "deploy", "sc", "-n", ns).out.splitlines()[1].split()[1:3] == ["0/2", "2"],
                        what="deployment status after scale")
    assert len(get_json(api_server, "pods", "-n", ns, "-l", "app=sc")["items"]) == 2


# --- delete -------------------------------------------------------------------------------------


def _deployment_with_pods(srv: ServerProcess, ns: str, name: str) -> dict:
    srv.kubectl("create", "deployment", name, "--image=nginx", "--replicas=1", "-n", ns)
    return srv.wait_for(lambda: (rs := get_json(srv, "rs", "-n", ns, "-l", f"app={name}")["items"]) and
                        get_json(srv, "pods", "-n", ns, "-l", f"app={name}")["items"] and rs[0],
                        what=f"{name} replicaset and pod")


def test_delete_cascade_background_foreground_orphan(api_server, ns):
    k = api_server.kubectl
    bg = _deployment_with_pods(api_server, ns, "bg")
    assert k("delete", "deploy", "bg", "--cascade=background", "-n", ns).out.strip() == 'deployment.apps "bg" deleted'
    api_server.wait_for(lambda: gone(api_server, "rs", bg["metadata"]["name"], "-n", ns), what="background GC")
    api_server.wait_for(lambda: not get_json(api_server, "pods", "-n", ns, "-l", "app=bg")["items"], what="pods GC")

    fg = _deployment_with_pods(api_server, ns, "fg")
    assert k("delete", "deploy", "fg", "--cascade=foreground", "-n", ns).out.strip() == 'deployment.apps "fg" deleted'
    # kubectl waited for the owner, which foreground deletion keeps until its dependents are gone
    assert gone(api_server, "rs", fg["metadata"]["name"], "-n", ns)
    assert gone(api_server, "deploy", "fg", "-n", ns)

    orphan = _deployment_with_pods(api_server, ns, "or")
    assert k("delete", "deploy", "or", "--cascade=orphan", "-n", ns).out.strip() == 'deployment.apps "or" deleted'
    rs_name = orphan["metadata"]["name"]
    rs = api_server.wait_for(lambda: (o := get_json(api_server, "rs", rs_name, "-n", ns)) and
                             "ownerReferences" not in o["metadata"] and o, what="orphaned replicaset")
    assert rs["metadata"]["uid"] == orphan["metadata"]["uid"]
    time.sleep(1)
    assert get_json(api_server, "rs", rs_name, "-n", ns)["metadata"]["uid"] == orphan["metadata"]["uid"]
    assert get_json(api_server, "pods", "-n", ns, "-l", "app=or")["items"]


# --- wait / rollout -----------------------------------------------------------------------------


def test_wait_for_condition_jsonpath_and_delete(api_server, ns, tmp_path):
    k = api_server.kubectl
    k("apply", "-f", write(tmp_path, "p.yaml", POD % ("wp", "wp")), "-n", ns)
    r = k("wait", "--for=jsonpath={.status.phase}=Pending", "pod/wp", "-n", ns, "--timeout=20s")
    assert r.out.strip() == "pod/wp condition met"
    r = k("wait", "--for=condition=PodScheduled=False", "pod/wp", "-n", ns, "--timeout=20s")
    assert r.out.strip() == "pod/wp condition met"
    r = k("wait", "--for=condition=Ready", "pod/wp", "-n", ns, "--timeout=1s", check=False)
    assert r.rc == 1 and r.err.strip() == "error: timed out waiting for the condition on pods/wp"

    k("create", "configmap", "fin", "-n", ns)
    k("patch", "cm", "fin", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    assert k("delete", "cm", "fin", "-n", ns, "--wait=false").out.strip() == 'configmap "fin" deleted'
    assert get_json(api_server, "cm", "fin", "-n", ns)["metadata"]["deletionTimestamp"]
    waiter = subprocess.Popen(["kubectl", "--kubeconfig", str(api_server.kubeconfig), "--cache-dir",
                               str(api_server.tmp / f"kcache-{secrets.token_hex(4)}"), "wait", "--for=delete",
                               "cm/fin", "-n", ns, "--timeout=30s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        time.sleep(1)
        assert waiter.poll() is None, "kubectl wait --for=delete returned while the finalizer holds the object"
        k("patch", "cm", "fin", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        out, err = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert out.strip() == "configmap/fin condition met"
    assert gone(api_server, "cm", "fin", "-n", ns)


def test_rollout_status_with_zero_replicas(api_server, ns):
    k = api_server.kubectl
    k("create", "deployment", "ro", "--image=nginx", "--replicas=0", "-n", ns)
    r = k("rollout", "status", "deploy/ro", "-n", ns, "--timeout=30s")
    assert r.out.strip() == 'deployment "ro" successfully rolled out'
    d = get_json(api_server, "deploy", "ro", "-n", ns)
    assert d["status"]["observedGeneration"] >= d["metadata"]["generation"]
    k("scale", "deploy", "ro", "--replicas=1", "-n", ns)
    r = k("rollout", "status", "deploy/ro", "-n", ns, "--timeout=2s", check=False)
    assert r.rc == 1
    assert 'Waiting for deployment "ro" rollout to finish: 0 of 1 updated replicas are available...' in r.out
    assert r.err.strip() == "error: timed out waiting for the condition"


# --- discovery, auth, imperative create, explain -------------------------------------------------


def test_api_resources(api_server):
    k = api_server.kubectl
    rows = {line.split()[0]: line.split() for line in k("api-resources").out.splitlines()[1:]}
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert rows["customresourcedefinitions"] == ["customresourcedefinitions", "crd,crds", "apiextensions.k8s.io/v1",
                                                 "false", "CustomResourceDefinition"]
    listable = {line.split()[0] for line in k("api-resources", "--verbs=list").out.splitlines()[1:]}
    assert "pods" in listable and "selfsubjectaccessreviews" not in listable
    apps = [line.split()[0] for line in k("api-resources", "--api-group=apps", "--no-headers").out.splitlines()]
    assert apps == sorted(apps) and {"deployments", "replicasets", "daemonsets"} <= set(apps)
    assert all(line.split()[2] == "apps/v1" for line in k("api-resources", "--api-group=apps").out.splitlines()[1:])


def test_auth_can_i(api_server, ns):
    k = api_server.kubectl
    assert k("auth", "can-i", "create", "pods", "-n", ns).out.strip() == "yes"
    k("create", "serviceaccount", "nobody", "-n", ns)
    token = k("create", "token", "nobody", "-n", ns).out.strip()
    r = k("auth", "can-i", "create", "pods", "-n", ns, "--token", token, "--user", "", check=False, input="")
    assert (r.rc, r.out.strip()) == (1, "no")
    k("create", "role", "podmaker", "--verb=create", "--resource=pods", "-n", ns)
    k("create", "rolebinding", "podmaker", "--role=podmaker", f"--serviceaccount={ns}:nobody", "-n", ns)
    r = api_server.wait_for(lambda: (x := k("auth", "can-i", "create", "pods", "-n", ns, "--token", token, "--user", "",
                                           check=False, input="")).rc == 0 and x, what="rolebinding in effect")
    assert r.out.strip() == "yes"


def test_imperative_create_with_protobuf_bodies(api_server, ns):
    k = api_server.kubectl
    name = f"{ns}-x"
    r = k("create", "namespace", name, "-v=8")
    assert r.out.strip() == f"namespace/{name} created"
    assert "Content-Type: application/vnd.kubernetes.protobuf" in r.err
    assert get_json(api_server, "ns", name)["status"]["phase"] == "Active"

    assert k("create", "configmap", "lit", "--from-literal=a=1", "--from-literal=b=2", "-n", ns).out.strip() == \
        "configmap/lit created"
    assert get_json(api_server, "cm", "lit", "-n", ns)["data"] == {"a": "1", "b": "2"}

    assert k("create", "secret", "generic", "sec", "--from-literal=pw=s3cr3t", "-n", ns).out.strip() == \
        "secret/sec created"
    sec = get_json(api_server, "secret", "sec", "-n", ns)
    assert sec["type"] == "Opaque" and sec["data"] == {"pw": "czNjcjN0"}

    assert k("create", "deployment", "dep", "--image=nginx:1.27", "--replicas=0", "-n", ns).out.strip() == \
        "deployment.apps/dep created"
    dep = get_json(api_server, "deploy", "dep", "-n", ns, "--show-managed-fields")
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "dep"}}
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert {m["manager"] for m in dep["metadata"]["managedFields"]} >= {"kubectl-create"}

    r = k("create", "configmap", "dry", "--from-literal=a=1", "--dry-run=server", "-n", ns)
    assert r.out.strip() == "configmap/dry created (server dry run)"
    assert gone(api_server, "cm", "dry", "-n", ns)


def test_get_all_and_several_kinds(api_server, ns, tmp_path):
    k = api_server.kubectl
    k("create", "deployment", "ga", "--image=nginx", "--replicas=1", "-n", ns)
    k("create", "service", "clusterip", "ga", "--tcp=80:8080", "-n", ns)
    api_server.wait_for(lambda: get_json(api_server, "pods", "-n", ns)["items"], what="a pod")
    out = k("get", "all", "-n", ns).out
    headers = [line.split()[:2] for line in out.splitlines() if line.startswith("NAME")]
    assert [h[1] for h in headers] == ["READY", "TYPE", "READY", "DESIRED"]
    assert re.search(r"^pod/ga-\S+\s+0/1\s+Pending", out, re.M)
    assert re.search(r"^service/ga\s+ClusterIP\s+10\.43\.\d+\.\d+\s+<none>\s+80/TCP", out, re.M)
    assert re.search(r"^deployment\.apps/ga\s+0/1\s+1\s+0", out, re.M)
    assert re.search(r"^replicaset\.apps/ga-\S+\s+1\s+1\s+0", out, re.M)

    out = k("get", "svc,po,deploy", "-n", ns, "-o", "name").out.split()
    assert out[0] == "service/ga" and out[-1] == "deployment.apps/ga" and out[1].startswith("pod/ga-")


def test_explain(api_server):
    k = api_server.kubectl
    out = k("explain", "pods.spec.containers").out
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n\nFIELD: containers <[]Container>\n")
    assert re.search(r"^  image\t<string>$", out, re.M) and re.search(r"^  ports\t<\[\]ContainerPort>$", out, re.M)
    out = k("explain", "deployments").out
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out and re.search(r"^  spec\t<", out, re.M)


def test_namespace_deletion_waits_for_contents(api_server, tmp_path):
    k = api_server.kubectl
    name = f"pk-del-{secrets.token_hex(2)}"
    k("create", "namespace", name)
    k("create", "configmap", "c", "--from-literal=a=b", "-n", name)
    k("create", "deployment", "d", "--image=nginx", "--replicas=1", "-n", name)
    k("apply", "-f", write(tmp_path, "p.yaml", POD % ("p", "p")), "-n", name)
    k("patch", "cm", "c", "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    waiter = subprocess.Popen(["kubectl", "--kubeconfig", str(api_server.kubeconfig), "--cache-dir",
                               str(api_server.tmp / f"kcache-{secrets.token_hex(4)}"), "delete", "ns", name,
                               "--timeout=60s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        terminating = api_server.wait_for(lambda: (o := get_json(api_server, "ns", name))["status"]["phase"] ==
                                          "Terminating" and o, what="Terminating namespace")
        assert terminating["metadata"]["deletionTimestamp"]
        api_server.wait_for(lambda: not get_json(api_server, "pods", "-n", name)["items"], what="pods removed")
        time.sleep(0.5)
        assert waiter.poll() is None, "the namespace is held while a finalizer keeps its content"
        r = k("create", "configmap", "late", "-n", name, check=False)
        assert r.rc == 1 and f"unable to create new content in namespace {name} because it is being terminated" in r.err
        k("patch", "cm", "c", "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert out.strip() == f'namespace "{name}" deleted'
    assert gone(api_server, "ns", name)

