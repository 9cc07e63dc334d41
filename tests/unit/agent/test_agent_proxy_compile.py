import pytest

from pyk3s.agent.cni.bridge import pod_link_group
from pyk3s.agent.proxy.compile import ProxyConfig, compile_ruleset

CFG = ProxyConfig("n1", table="pyk3stest")


def svc(name, **spec):
    status = spec.pop("status", {})
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec, "status": status}


def eps(name, endpoints, ports=None):
    return {"metadata": {"namespace": "default", "name": f"{name}-abc", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": ports or [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints}


def test_clusterip_balances_over_ready_endpoints_only():
    text = compile_ruleset(CFG, [svc("web", clusterIP="10.43.0.5", ports=[{"port": 80}])],
                           [eps("web", [{"addresses": ["10.42.0.5"]}, {"addresses": ["10.42.0.6"]},
                                        {"addresses": ["10.42.0.7"], "conditions": {"ready": False}}])])
    assert "ip daddr 10.43.0.5 tcp dport 80 goto svc-" in text
    assert "numgen random mod 2 vmap" in text
    assert "dnat ip to 10.42.0.5:8080" in text and "dnat ip to 10.42.0.6:8080" in text
    assert "10.42.0.7" not in text
    assert text.startswith("table inet pyk3stest\ndelete table inet pyk3stest\n")


def test_terminating_serving_endpoints_are_a_fallback():
    text = compile_ruleset(CFG, [svc("web", clusterIP="10.43.0.5", ports=[{"port": 80}])],
                           [eps("web", [{"addresses": ["10.42.0.7"],
                                         "conditions": {"ready": False, "serving": True, "terminating": True}}])])
    assert "dnat ip to 10.42.0.7:8080" in text


def test_no_endpoints_rejects():
    text = compile_ruleset(CFG, [svc("web", type="NodePort", clusterIP="10.43.0.5",
                                     ports=[{"port": 80, "nodePort": 30080}])], [])
    assert "elements = { 10.43.0.5 . tcp . 80 }" in text
    assert "elements = { tcp . 30080 }" in text
    assert "goto svc-" not in text


def test_nodeport_cluster_policy_masquerades():
    text = compile_ruleset(CFG, [svc("web", type="NodePort", clusterIP="10.43.0.5",
                                     ports=[{"port": 80, "nodePort": 30080}])],
                           [eps("web", [{"addresses": ["10.42.0.5"], "nodeName": "n2"}])])
    assert "tcp dport 30080 goto ext-" in text
    ext = text.split("chain ext-")[1]
    assert "meta mark set meta mark | 0x4000" in ext.split("}")[0]


@pytest.mark.parametrize("node,expect_drop", [("n1", False), ("n2", True)], ids=["local-endpoint", "remote-only"])
def test_external_traffic_policy_local(node, expect_drop):
    text = compile_ruleset(ProxyConfig(node, table="t"),
                           [svc("web", type="LoadBalancer", clusterIP="10.43.0.5", externalTrafficPolicy="Local",
                                ports=[{"port": 80, "nodePort": 30080}],
                                status={"loadBalancer": {"ingress": [{"ip": "172.31.0.9"}]}})],
                           [eps("web", [{"addresses": ["10.42.0.5"], "nodeName": "n1"}])])
    ext = text.split("chain ext-")[1].split("}")[0]
    assert ("drop" in ext) == expect_drop
    assert "ip daddr 172.31.0.9 tcp dport 80 goto ext-" in text


def test_session_affinity_uses_dynamic_sets():
    text = compile_ruleset(CFG, [svc("dns", clusterIP="10.43.0.10", sessionAffinity="ClientIP",
                                     sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
                                     ports=[{"port": 53, "protocol": "UDP", "name": "dns"}])],
                           [eps("dns", [{"addresses": ["10.42.0.5"]}], [{"name": "dns", "port": 53, "protocol": "UDP"}])])
    assert "flags dynamic,timeout; timeout 60s;" in text
    assert "update @aff-" in text
    assert "ip daddr 10.43.0.10 udp dport 53 goto" in text


def test_hostport_from_pods_on_this_node():
    pod = {"metadata": {"namespace": "default", "name": "p"}, "status": {"podIP": "10.42.0.9"},
           "spec": {"nodeName": "n1", "containers": [{"ports": [{"containerPort": 80, "hostPort": 8081},
                                                                {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]}]}}
    other = {**pod, "spec": {**pod["spec"], "nodeName": "n2"}}
    text = compile_ruleset(CFG, [], [], [pod, other])
    assert "tcp dport 8081 meta mark set meta mark | 0x4000 dnat ip to 10.42.0.9:80" in text
    assert "udp dport 53 meta mark set" in text
    assert text.count("dnat ip to 10.42.0.9") == 2


def test_pod_egress_masquerade_and_service_cidr_reject():
    text = compile_ruleset(ProxyConfig("n1", bridge_name="pkbr0"), [], [])
    group = f"{pod_link_group('pkbr0'):#x}"
    # this node's pods are the links of its pod-link group (routed veths), not ports of its bridge
    assert (f"iifgroup {group} ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 oifgroup != {group} masquerade"
            in text)
    assert "iifname" not in text and "oifname" not in text
    other = compile_ruleset(ProxyConfig("n2", bridge_name="pkbr1"), [], [])
    assert f"iifgroup {pod_link_group('pkbr1'):#x} " in other and group not in other
    assert "ip daddr 10.43.0.0/16 reject" in text


def test_compile_is_deterministic():
    services = [svc(f"s{i}", clusterIP=f"10.43.0.{i + 10}", ports=[{"port": 80}]) for i in range(5)]
    slices = [eps(f"s{i}", [{"addresses": [f"10.42.0.{i + 10}"]}]) for i in range(5)]
    assert compile_ruleset(CFG, services, slices) == compile_ruleset(CFG, list(reversed(services)), slices)


DUAL = ProxyConfig("n1", cluster_cidrs=("10.42.0.0/16", "fd42::/56"), service_cidrs=("10.43.0.0/16", "fd43::/112"),
                   bridge_name="pkbr0", table="pyk3stest")


def test_dual_stack_service_gets_rules_per_family_from_its_slices() -> None:
    svc6 = svc("web", type="NodePort", clusterIP="10.43.0.5", clusterIPs=["10.43.0.5", "fd43::5"],
               ipFamilies=["IPv4", "IPv6"], ports=[{"port": 80, "nodePort": 30080}])
    v4 = eps("web", [{"addresses": ["10.42.0.5"]}])
    v6 = {**eps("web", [{"addresses": ["fd42::5"]}]), "addressType": "IPv6"}
    text = compile_ruleset(DUAL, [svc6], [v4, v6])
    assert "ip daddr 10.43.0.5 tcp dport 80 goto svc-" in text
    assert "ip6 daddr fd43::5 tcp dport 80 goto svc-" in text
    assert "dnat ip to 10.42.0.5:8080" in text and "dnat ip6 to [fd42::5]:8080" in text
    assert "meta nfproto ipv4 tcp dport 30080 goto ext-" in text
    assert "meta nfproto ipv6 tcp dport 30080 goto ext-" in text
    assert "ip6 daddr fd43::/112 reject" in text


def test_single_stack_service_in_a_dual_stack_cluster_stays_in_its_family() -> None:
    text = compile_ruleset(DUAL, [svc("web", clusterIP="10.43.0.5", ports=[{"port": 80}])],
                           [eps("web", [{"addresses": ["10.42.0.5"]}])])
    assert "ip6 daddr fd43" not in text.split("chain services")[1]


def test_ipv6_pod_traffic_is_masqueraded_only_with_ipv6_masq() -> None:
    from dataclasses import replace

    assert "ip6 saddr fd42::/56" not in compile_ruleset(DUAL, [], [])
    assert f"ip6 saddr fd42::/56 ip6 daddr != fd42::/56 oifgroup != {pod_link_group('pkbr0'):#x} masquerade" in \
        compile_ruleset(replace(DUAL, masquerade_ipv6=True), [], [])


def _chain(text: str, name: str) -> list[str]:
    return [ln.strip() for ln in text.split(f"chain {name} {{\n", 1)[1].split("}", 1)[0].splitlines()]


def test_node_addresses_are_published_and_other_nodes_addresses_left_to_them() -> None:
    """Several pyk3s nodes in one network namespace: each table publishes its node's addresses, and the
    NodePort and hostPort rules (and the NodePort reject) of one node skip the addresses of the others."""
    cfg = ProxyConfig("n1", ("10.42.0.0/16", "fd42::/56"), ("10.43.0.0/16", "fd43::/112"), table="t",
                      node_addresses=("172.31.10.1", "fd10::1"))
    services = [svc("web", type="NodePort", clusterIP="10.43.0.5", ports=[{"port": 80, "nodePort": 30080}]),
                svc("none", type="NodePort", clusterIP="10.43.0.6", ports=[{"port": 80, "nodePort": 30081}])]
    slices = [eps("web", [{"addresses": ["10.42.0.5"], "nodeName": "n1"}])]
    pod = {"metadata": {"name": "lb", "namespace": "kube-system"},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}]},
           "status": {"podIP": "10.42.0.9"}}
    alone = compile_ruleset(cfg, services, slices, [pod])
    assert "set node-addresses { type ipv4_addr; elements = { 172.31.10.1 }; }" in alone
    assert "set node-addresses-v6 { type ipv6_addr; elements = { fd10::1 }; }" in alone
    assert "foreign" not in alone  # alone in its namespace: portmap's and kube-proxy's any-local-address rules
    shared = compile_ruleset(cfg, services, slices, [pod], foreign=["172.31.11.1", "fd11::1", "172.31.10.1"])
    assert "set foreign-addresses { type ipv4_addr; elements = { 172.31.11.1 }; }" in shared  # never its own
    assert "set foreign-addresses-v6 { type ipv6_addr; elements = { fd11::1 }; }" in shared
    for chain in ("nodeports", "hostports"):
        rules = _chain(shared, chain)
        assert rules[:2] == ["ip daddr @foreign-addresses return", "ip6 daddr @foreign-addresses-v6 return"], rules
        assert len(rules) > 2
    checks = _chain(shared, "reject-checks")
    assert ("ip daddr != @foreign-addresses fib daddr type local meta l4proto . th dport @no-endpoint-nodeports "
            "reject") in checks
    # only the family that has foreign addresses is scoped
    v4_only = compile_ruleset(cfg, services, slices, [pod], foreign=["172.31.11.1"])
    assert "foreign-addresses-v6" not in v4_only


def test_marked_tcp_masquerade_keeps_source_ports_udp_is_fully_random() -> None:
    # a reused client 4-tuple must reach the endpoint on the same 4-tuple again (its TIME_WAIT accepts
    # the SYN by timestamp); only non-TCP traffic gets random source ports
    text = compile_ruleset(CFG, [], [])
    post = text.split("chain nat-postrouting {")[1].split("}")[0]
    rules = [r.strip() for r in post.splitlines() if "0x4000" in r]
    assert rules == ["meta mark & 0x4000 == 0x4000 meta l4proto tcp masquerade",
                     "meta mark & 0x4000 == 0x4000 masquerade fully-random"]


def test_marked_traffic_into_this_nodes_pods_comes_from_the_gateway() -> None:
    from dataclasses import replace

    text = compile_ruleset(replace(DUAL, pod_gateways=("10.42.0.1", "fd42::1")), [], [])
    group = f"{pod_link_group('pkbr0'):#x}"
    post = text[text.index("chain nat-postrouting"):]
    tcp4 = f"oifgroup {group} meta nfproto ipv4 meta mark & 0x4000 == 0x4000 meta l4proto tcp snat ip to 10.42.0.1"
    assert tcp4 in post
    assert (f"oifgroup {group} meta nfproto ipv6 meta mark & 0x4000 == 0x4000 snat ip6 to fd42::1 fully-random"
            in post)
    # before the masquerade that takes any other marked packet
    assert post.index(tcp4) < post.index("meta mark & 0x4000 == 0x4000 meta l4proto tcp masquerade")
