from pyk3s.controllers.servicelb.status import explain, lb_ingress, pending_message, pending_reasons


def node(name: str, *addrs: tuple[str, str], ready: bool = True, labels: dict | None = None, taints=None) -> dict:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or []},
        "status": {"addresses": [{"type": t, "address": a} for t, a in addrs],
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def pod(name: str, node_name: str, *, ready: bool = True, svc: str = "web", host_port: int | None = None,
        ns: str = "kube-system", labels: dict | None = None) -> dict:
    lab = {"svccontroller.k3s.cattle.io/svcname": svc, "svccontroller.k3s.cattle.io/svcnamespace": "default"}
    if labels is not None:
        lab = labels
    ports = [{"containerPort": host_port, "hostPort": host_port, "protocol": "TCP"}] if host_port else []
    return {
        "metadata": {"name": name, "namespace": ns, "labels": lab},
        "spec": {"nodeName": node_name, "containers": [{"name": "c", "ports": ports}]},
        "status": {"podIP": "10.42.0.5", "phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


SVC = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4"]}}


def test_internal_ips_of_ready_pods_sorted_as_strings() -> None:
    nodes = {"a": node("a", ("InternalIP", "10.0.0.9")), "b": node("b", ("InternalIP", "10.0.0.10")),
             "c": node("c", ("InternalIP", "10.0.0.11"))}
    pods = [pod("p1", "a"), pod("p2", "b"), pod("p3", "c", ready=False)]
    assert lb_ingress(SVC, pods, nodes) == [{"ip": "10.0.0.10"}, {"ip": "10.0.0.9"}]


def test_external_ips_win_when_any_node_has_one() -> None:
    nodes = {"a": node("a", ("InternalIP", "10.0.0.1"), ("ExternalIP", "203.0.113.5")),
             "b": node("b", ("InternalIP", "10.0.0.2"))}
    assert lb_ingress(SVC, [pod("p1", "a"), pod("p2", "b")], nodes) == [{"ip": "203.0.113.5"}]


def test_local_policy_needs_a_ready_local_endpoint() -> None:
    svc = {**SVC, "spec": {**SVC["spec"], "externalTrafficPolicy": "Local"}}
    nodes = {"a": node("a", ("InternalIP", "10.0.0.1")), "b": node("b", ("InternalIP", "10.0.0.2"))}
    slices = [{"endpoints": [{"nodeName": "b", "conditions": {"ready": True}, "targetRef": {"kind": "Pod"}}]}]
    assert lb_ingress(svc, [pod("p1", "a"), pod("p2", "b")], nodes, slices) == [{"ip": "10.0.0.2"}]


def test_family_order_and_filter() -> None:
    svc = {**SVC, "spec": {**SVC["spec"], "ipFamilies": ["IPv6", "IPv4"]}}
    nodes = {"a": node("a", ("InternalIP", "10.0.0.1"), ("InternalIP", "fd00::1"))}
    assert lb_ingress(svc, [pod("p1", "a")], nodes) == [{"ip": "fd00::1"}, {"ip": "10.0.0.1"}]


def test_explain_names_the_port_holder_the_label_and_readiness() -> None:
    nodes = {
        "a": node("a", ("InternalIP", "10.0.0.1")),
        "b": node("b", ("InternalIP", "10.0.0.2"), ready=False),
        "c": node("c", ("InternalIP", "10.0.0.3")),
    }
    ds = {"spec": {"template": {"spec": {
        "nodeSelector": {},
        "tolerations": [],
        "containers": [{"name": "lb-tcp-80", "ports": [{"hostPort": 80, "protocol": "TCP"}]}]}}}}
    other = pod("svclb-traefik-x", "a", svc="traefik", host_port=80)
    pending = pod("svclb-web-y", "a", ready=False)
    served = pod("svclb-web-z", "c")
    reasons = explain(SVC, ds, [other, pending, served], nodes)
    assert reasons["a"] == "port 80/TCP is held by pod kube-system/svclb-traefik-x"
    assert "node is not Ready" in reasons["b"]
    assert "c" not in reasons
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"svccontroller.k3s.cattle.io/enablelb": "true"}
    assert "lacks label svccontroller.k3s.cattle.io/enablelb=true" in explain(SVC, ds, [], nodes)["c"]


def test_only_starting_separates_start_up_from_real_blockers() -> None:
    from pyk3s.controllers.servicelb.status import only_starting

    assert only_starting({"a": "no svclb pod on this node yet", "b": "svclb pod x is not Ready yet"})
    assert not only_starting({"a": "no svclb pod on this node yet", "b": "port 80/TCP is held by pod kube-system/y"})
    assert not only_starting({})


def test_pending_reasons_read_back_every_node_of_the_message() -> None:
    reasons = {"pk1-0": "port 80/TCP is held by pod kube-system/svclb-traefik-1; node is not Ready",
               "pk1-1": "node has taint a:NoSchedule that svclb pods do not tolerate",
               "node.example.com": "no svclb pod on this node yet"}
    message = pending_message(reasons)
    assert message.startswith("no node can serve this load balancer: node pk1-0: port 80/TCP")
    assert pending_reasons(message) == reasons
    assert pending_reasons(pending_message({})) == {}
    assert pending_reasons("served by nodes 10.0.0.1") == {}
