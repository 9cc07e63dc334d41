"""The map's pure views on plain objects: services with their endpoints and what keeps them empty,
LoadBalancer addresses or each node's Pending reason, nodes with their backend and host ports."""

from __future__ import annotations

from netmap_kit import demo, node, pod, slice_of

from pyk3s.controllers.servicelb.status import pending_message
from pyk3s.netmap.loadbalancer import lb_status, service_events
from pyk3s.netmap.nodes import nodes_view
from pyk3s.netmap.services import cluster_domain, services_view


def _svc(name: str, **spec: object) -> dict:
    return {"metadata": {"name": name, "namespace": "demo", "uid": "u1"}, "spec": {"ports": [{"port": 80}], **spec}}


def _view(services: list[dict], pods: list[dict], slices: list[dict] = (), events: list[dict] = ()) -> dict:
    view = services_view([{"metadata": {"name": "demo"}}], services, slices, pods, events)
    return {s["name"]: s for ns in view["namespaces"] for s in ns["services"]}


def test_endpoints_carry_their_pods_nodes_and_why_one_is_not_ready() -> None:
    web = [pod("demo", "web-1", {"app": "web"}, "n0", "10.42.0.10"),
           pod("demo", "web-2", {"app": "web"}, "n1", "10.42.1.10", ready=False)]
    web[1]["status"]["containerStatuses"] = [{"name": "c", "ready": False,
                                             "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    got = _view([_svc("web", selector={"app": "web"}, clusterIP="10.43.0.20", clusterIPs=["10.43.0.20"])], web,
                [slice_of("demo", "web", 80, web)])["web"]
    assert got["clusterIPs"] == ["10.43.0.20"] and got["dns"] == ["web.demo.svc.cluster.local"]
    assert (got["ready"], got["notReady"]) == (1, 1)
    first, second = got["endpoints"]
    assert (first["pod"], first["node"], first["ready"]) == ("demo/web-1", "n0", True)
    assert second["problem"] == "container c: CrashLoopBackOff" and second["node"] == "n1"
    assert got["problems"] == []


def test_what_keeps_a_service_without_endpoints() -> None:
    pods = [pod("demo", "db-1", {"app": "db"}, "n0", "10.42.0.11", ready=False)]
    got = _view([_svc("none", selector={"app": "nope"}), _svc("db", selector={"app": "db"}),
                 _svc("named", selector={"app": "db"}, ports=[{"port": 80, "targetPort": "metrics"}]),
                 _svc("manual")], pods)
    assert got["none"]["problems"] == ["selector app=nope matches no pod in namespace demo"]
    assert got["db"]["problems"][0].startswith("1 pod(s) match app=db, none is Ready (db-1:")
    assert any("targetPort 'metrics' is not a named container port" in p for p in got["named"]["problems"])
    assert got["manual"]["problems"][0].startswith("no selector and no EndpointSlice")


def test_pending_load_balancer_reads_every_nodes_reason_from_servicelb() -> None:
    reasons = {"n0": "port 80/TCP is held by pod kube-system/svclb-traefik-x; node is not Ready",
               "n1": "node lacks label svccontroller.k3s.cattle.io/enablelb=true (allow-list mode is on)"}
    svc = _svc("lb", type="LoadBalancer")
    svc["status"] = {"conditions": [{"type": "pyk3s.io/LoadBalancerReady", "status": "False",
                                     "reason": "NoNodeAvailable", "message": pending_message(reasons)}]}
    got = lb_status(svc, [])
    assert got is not None and got["state"] == "pending" and got["addresses"] == []
    assert got["nodes"] == reasons


def test_load_balancer_without_a_condition_says_who_should_have_answered() -> None:
    assert lb_status(_svc("c"), []) is None
    classy = lb_status(_svc("c", type="LoadBalancer", loadBalancerClass="example.com/lb"), [])
    assert classy is not None and "leaves this Service to that controller" in classy["reason"]
    silent = lb_status(_svc("s", type="LoadBalancer"), [])
    assert silent is not None and "no load balancer controller has reported" in silent["reason"]
    event = {"involvedObject": {"kind": "Service", "name": "s", "namespace": "demo", "uid": "u1"}, "type": "Warning",
             "reason": "UnAvailableLoadBalancer", "message": "There are no available nodes for LoadBalancer",
             "lastTimestamp": "2026-01-01T00:00:00Z"}
    other = {**event, "involvedObject": {**event["involvedObject"], "uid": "an-older-incarnation"}}
    events = service_events(_svc("s"), [event, other])
    assert len(events) == 1
    assert lb_status(_svc("s", type="LoadBalancer"), events)["reason"].startswith("UnAvailableLoadBalancer: ")
    ready = _svc("r", type="LoadBalancer")
    ready["status"] = {"loadBalancer": {"ingress": [{"ip": "172.31.9.1"}]}}
    assert lb_status(ready, []) == {**lb_status(ready, []), "state": "ready", "addresses": ["172.31.9.1"]}


def test_nodes_show_backend_cidrs_readiness_and_held_host_ports() -> None:
    n0, n1 = node("n0", "172.31.9.1", "10.42.0.0/24"), node("n1", "172.31.9.2", "10.42.1.0/24")
    n1["metadata"]["annotations"] = {"flannel.alpha.coreos.com/backend-type": "vxlan",
                                     "flannel.alpha.coreos.com/public-ip": "172.31.9.2"}
    n1["status"]["conditions"] = [{"type": "Ready", "status": "False", "message": "kubelet stopped posting status"}]
    svclb = pod("kube-system", "svclb-traefik-x", {}, "n0", "10.42.0.3",
                ports=[{"containerPort": 80, "hostPort": 80}, {"containerPort": 443, "hostPort": 443}])
    view = {n["name"]: n for n in nodes_view([n1, n0], [svclb])["nodes"]}
    assert view["n0"]["backend"]["type"] == "host-gw" and view["n0"]["backend"]["source"].startswith("implied")
    assert view["n1"]["backend"] == {"type": "vxlan", "publicIP": "172.31.9.2",
                                     "source": "annotation flannel.alpha.coreos.com/backend-type"}
    assert view["n0"]["hostPorts"] == [{"port": 80, "protocol": "TCP", "pod": "kube-system/svclb-traefik-x"},
                                       {"port": 443, "protocol": "TCP", "pod": "kube-system/svclb-traefik-x"}]
    assert not view["n1"]["ready"] and view["n1"]["readyReason"] == "kubelet stopped posting status"
    assert view["n0"]["podCIDRs"] == ["10.42.0.0/24"] and view["n0"]["pods"] == 1


def test_cluster_domain_comes_from_the_corefile() -> None:
    cm = {"metadata": {"name": "coredns", "namespace": "kube-system"},
          "data": {"Corefile": ".:53 {\n  errors\n  kubernetes example.internal in-addr.arpa {\n  }\n}\n"}}
    assert cluster_domain([cm]) == "example.internal"
    assert cluster_domain([]) == "cluster.local"


def test_the_demo_objects_build_a_view() -> None:
    objs = demo()
    of = {k: [o for o in objs if o["kind"] == k] for k in ("Namespace", "Service", "EndpointSlice", "Pod")}
    view = services_view(of["Namespace"], of["Service"], of["EndpointSlice"], of["Pod"], [])
    names = {s["key"] for ns in view["namespaces"] for s in ns["services"]}
    assert {"demo/web", "demo/web-lb", "kube-system/traefik"} <= names
