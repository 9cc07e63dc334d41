"""tables: kubectl's columns per kind, pod status/restarts, ages, CRD printer columns."""

from __future__ import annotations

import datetime as dt

import pytest

from pyk3s.api.resources import ResourceTable
from pyk3s.api.tables import eval_jsonpath, human_duration, render_table

NOW = dt.datetime(2025, 1, 10, 12, 0, 0, tzinfo=dt.UTC)
TABLE = ResourceTable.builtin()


def ago(**kw) -> str:
    return (NOW - dt.timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name, **kw):
    return {"name": name, "namespace": "default", "creationTimestamp": ago(minutes=5), **kw}


def table(group, plural, objs, **kw):
    info = TABLE.get(group, "v1", plural)
    assert info is not None
    return render_table(info, objs, now=NOW, **kw)


def cells(group, plural, obj):
    return table(group, plural, [obj])["rows"][0]["cells"]


def names(group, plural, wide=False):
    defs = table(group, plural, [])["columnDefinitions"]
    return [c["name"] for c in defs if wide or c["priority"] == 0]


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (5, "5s"), (119, "119s"), (200, "3m20s"), (600, "10m"), (3 * 3600 - 1, "179m"),
    (5 * 3600, "5h"), (7 * 3600 + 1800, "7h30m"), (20 * 3600, "20h"), (51 * 3600, "2d3h"), (72 * 3600, "3d"),
    (30 * 86400, "30d"), (800 * 86400, "2y70d"), (3000 * 86400, "8y"), (-1, "0s"), (-5, "<invalid>"),
])
def test_human_duration(seconds, text):
    assert human_duration(dt.timedelta(seconds=seconds)) == text


def _cs(name, ready=True, restarts=0, state=None, last_finished=None):
    cs = {"name": name, "ready": ready, "restartCount": restarts, "state": state or {"running": {}}}
    if last_finished:
        cs["lastState"] = {"terminated": {"finishedAt": last_finished, "exitCode": 1}}
    return cs


def pod(containers=("c",), statuses=(), phase="Running", **extra):
    p = {"metadata": meta("web"), "spec": {"containers": [{"name": c} for c in containers], "nodeName": "n1"},
         "status": {"phase": phase, "podIP": "10.42.0.7", "containerStatuses": list(statuses)}}
    p["status"].update(extra.pop("status", {}))
    p["metadata"].update(extra.pop("metadata", {}))
    p["spec"].update(extra.pop("spec", {}))
    return p


def test_pod_columns():
    assert names("", "pods") == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert names("", "pods", wide=True)[5:] == ["IP", "Node", "Nominated Node", "Readiness Gates"]


@pytest.mark.parametrize("p,ready,status,restarts", [
    (pod(statuses=[_cs("c")]), "1/1", "Running", "0"),
    (pod(("a", "b"), [_cs("a"), _cs("b", ready=False)]), "1/2", "Running", "0"),
    (pod(statuses=[_cs("c", False, state={"waiting": {"reason": "CrashLoopBackOff"}}, restarts=5,
                       last_finished=ago(minutes=5))]), "0/1", "CrashLoopBackOff", "5 (5m ago)"),
    (pod(statuses=[_cs("c", False, state={"terminated": {"reason": "Completed", "exitCode": 0}})],
         phase="Succeeded"), "0/1", "Completed", "0"),
    (pod(statuses=[_cs("c", False, state={"terminated": {"exitCode": 3}})], phase="Failed"),
     "0/1", "ExitCode:3", "0"),
    (pod(phase="Pending"), "0/1", "Pending", "0"),
    (pod(statuses=[_cs("c")], metadata={"deletionTimestamp": ago(seconds=3)}), "1/1", "Terminating", "0"),
    (pod(statuses=[_cs("c", False, state={"waiting": {"reason": "ContainerCreating"}})],
         spec={"initContainers": [{"name": "init"}]},
         status={"initContainerStatuses": [_cs("init", False, state={"waiting": {"reason": "PodInitializing"}})]},
         phase="Pending"), "0/1", "Init:0/1", "0"),
    (pod(spec={"initContainers": [{"name": "init"}]}, phase="Pending",
         status={"initContainerStatuses": [_cs("init", False, state={"terminated": {"exitCode": 2}})]}),
     "0/1", "Init:ExitCode:2", "0"),
], ids=["running", "partly-ready", "crashloop", "completed", "exitcode", "pending", "terminating", "init-waiting",
        "init-failed"])
def test_pod_status(p, ready, status, restarts):
    c = cells("", "pods", p)
    assert c[1:4] == [ready, status, restarts]
    assert c[4] == "5m"


def test_pod_wide_cells():
    p = pod(statuses=[_cs("c")], spec={"readinessGates": [{"conditionType": "x/ok"}]},
            status={"conditions": [{"type": "x/ok", "status": "True"}]})
    assert cells("", "pods", p)[5:] == ["10.42.0.7", "n1", "<none>", "1/1"]
    assert cells("", "pods", pod(phase="Pending", spec={"nodeName": ""}, status={"podIP": ""}))[5:] == [
        "<none>", "<none>", "<none>", "<none>"]


def svc(kind, ports, **spec):
    return {"metadata": meta("s"), "spec": {"type": kind, "clusterIP": "10.43.0.5", "ports": ports, **spec}}


@pytest.mark.parametrize("obj,external,ports", [
    (svc("ClusterIP", [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]), "<none>",
     "80/TCP,53/UDP"),
    (svc("NodePort", [{"port": 80, "nodePort": 31234, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]),
     "<none>", "80:31234/TCP,443/TCP"),
    (svc("LoadBalancer", [{"port": 80, "nodePort": 30001, "protocol": "TCP"}]), "<pending>", "80:30001/TCP"),
    ({**svc("LoadBalancer", [{"port": 80, "nodePort": 30001}]),
      "status": {"loadBalancer": {"ingress": [{"ip": "172.31.0.2"}, {"ip": "172.31.0.3"}]}}},
     "172.31.0.2,172.31.0.3", "80:30001/TCP"),
    (svc("ClusterIP", [], externalIPs=["1.2.3.4"]), "1.2.3.4", "<none>"),
    (svc("ExternalName", [], externalName="example.com"), "example.com", "<none>"),
], ids=["clusterip", "nodeport", "lb-pending", "lb-ingress", "external-ips", "externalname"])
def test_service_cells(obj, external, ports):
    c = cells("", "services", obj)
    assert c[3:5] == [external, ports]


def test_service_columns_and_selector():
    assert names("", "services") == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    c = cells("", "services", svc("ClusterIP", [], selector={"b": "2", "a": "1"}))
    assert c[6] == "a=1,b=2"


def test_deployment_replicaset_daemonset():
    tpl = {"spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"}}}
    d = {"metadata": meta("d"), "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": tpl},
         "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert cells("apps", "deployments", d) == ["d", "2/3", 3, 2, "5m", "web,side", "nginx,busybox", "app=d"]
    rs = {"metadata": meta("r"), "spec": {"replicas": 2, "template": tpl}, "status": {"replicas": 2}}
    assert cells("apps", "replicasets", rs)[:5] == ["r", 2, 2, 0, "5m"]
    ds = {"metadata": meta("ds"), "spec": {"template": tpl, "selector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}]}},
          "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                     "updatedNumberScheduled": 2, "numberAvailable": 1}}
    assert names("apps", "daemonsets") == ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available",
                                           "Node Selector", "Age"]
    assert cells("apps", "daemonsets", ds) == ["ds", 2, 2, 1, 2, 1, "kubernetes.io/os=linux", "5m", "web,side",
                                               "nginx,busybox", "tier in (a,b)"]


def test_nodes():
    node = {"metadata": {"name": "n1", "creationTimestamp": ago(days=2, hours=3),
                         "labels": {"node-role.kubernetes.io/control-plane": "true",
                                    "node-role.kubernetes.io/master": "true"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "10.99.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.4+pyk3s1", "osImage": "Debian", "kernelVersion": "6.1",
                                    "containerRuntimeVersion": "pyk3s://0.1"}}}
    assert cells("", "nodes", node) == ["n1", "Ready,SchedulingDisabled", "control-plane,master", "2d3h",
                                        "v1.32.4+pyk3s1", "10.99.0.2", "<none>", "Debian", "6.1", "pyk3s://0.1"]
    assert cells("", "nodes", {"metadata": {"name": "n2"}})[1:3] == ["Unknown", "<none>"]


def test_small_kinds():
    assert cells("", "namespaces", {"metadata": meta("ns"), "status": {"phase": "Active"}}) == ["ns", "Active", "5m"]
    assert cells("", "configmaps", {"metadata": meta("c"), "data": {"a": "1"}, "binaryData": {"b": ""}})[1] == 2
    assert cells("", "secrets", {"metadata": meta("s"), "type": "Opaque", "data": {"a": ""}})[1:3] == ["Opaque", 1]
    assert cells("", "serviceaccounts", {"metadata": meta("sa")})[1] == 0
    ep = {"metadata": meta("e"), "subsets": [{"addresses": [{"ip": f"10.42.0.{i}"} for i in range(1, 6)],
                                              "ports": [{"port": 80}]}]}
    assert cells("", "endpoints", ep)[1] == "10.42.0.1:80,10.42.0.2:80,10.42.0.3:80 + 2 more..."
    assert cells("", "endpoints", {"metadata": meta("e")})[1] == "<none>"


def test_group_kinds():
    slice_ = {"metadata": meta("s-abc"), "addressType": "IPv4", "ports": [{"port": 80}, {"port": 443}],
              "endpoints": [{"addresses": ["10.42.0.4"]}]}
    assert cells("discovery.k8s.io", "endpointslices", slice_)[1:4] == ["IPv4", "80,443", "10.42.0.4"]
    ing = {"metadata": meta("i"), "spec": {"ingressClassName": "traefik", "rules": [{"host": "a.test"}, {}],
                                           "tls": [{"hosts": ["a.test"]}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "172.31.0.2"}]}}}
    assert cells("networking.k8s.io", "ingresses", ing)[1:5] == ["traefik", "a.test", "172.31.0.2", "80, 443"]
    assert cells("coordination.k8s.io", "leases", {"metadata": meta("l"), "spec": {"holderIdentity": "n1"}})[1] == "n1"
    crd = {"metadata": {"name": "widgets.example.com", "creationTimestamp": "2025-01-01T00:00:00Z"}}
    assert cells("apiextensions.k8s.io", "customresourcedefinitions", crd) == ["widgets.example.com",
                                                                                "2025-01-01T00:00:00Z"]


def test_events():
    ev = {"metadata": meta("web.1"), "type": "Warning", "reason": "BackOff", "message": " restarting \n",
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
          "source": {"component": "kubelet", "host": "n1"}, "count": 4,
          "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(seconds=30)}
    assert cells("", "events", ev) == ["30s", "Warning", "BackOff", "pod/web", "spec.containers{c}", "kubelet, n1",
                                       "restarting", "10m", 4, "web.1"]


def test_generic_and_row_objects():
    info = TABLE.get("k3s.cattle.io", "v1", "addons")
    obj = {"metadata": meta("a", labels={"x": "y"}), "spec": {"big": True}}
    t = render_table(info, [obj], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                      "metadata": obj["metadata"]}
    assert render_table(info, [obj], include_object="Object", now=NOW)["rows"][0]["object"] is obj
    assert "object" not in render_table(info, [obj], include_object="None", now=NOW)["rows"][0]
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"


def test_crd_printer_columns():
    info = TABLE.get("k3s.cattle.io", "v1", "addons")
    cols = [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            {"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts[*]", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {"name": "Missing", "type": "string", "jsonPath": ".spec.nope"}]
    obj = {"metadata": meta("w"), "spec": {"replicas": 2, "hosts": ["a", "b"]},
           "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    t = render_table(info, [obj], crd_columns=cols, now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Replicas", "Ready", "Hosts", "Age", "Missing"]
    assert t["columnDefinitions"][3]["priority"] == 1
    assert t["rows"][0]["cells"] == ["w", 2, "True", "a,b", "5m", None]


def test_jsonpath_subset():
    obj = {"a": {"b.c": [1, 2], "l": [{"k": "x", "v": 1}, {"k": "y", "v": 2}]}}
    assert eval_jsonpath(obj, "{.a['b.c'][1]}") == [2]
    assert eval_jsonpath(obj, ".a.l[?(@.k=='y')].v") == [2]
    assert eval_jsonpath(obj, ".a.zz") == []
