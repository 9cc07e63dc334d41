from pyk3s.agent.cni.bridge import overlapping_routes

CIDRS = ("10.42.0.0/16", "10.43.0.0/16")


def test_foreign_routes_overlapping_the_cluster_ranges_are_reported() -> None:
    routes = [{"dst": "10.42.7.0/24", "dev": "eth1", "protocol": "kernel"}, {"dst": "192.0.2.0/24", "dev": "eth0"}]
    assert overlapping_routes(routes, CIDRS, {"pyk3s0"}) == ["10.42.7.0/24 dev eth1 overlaps 10.42.0.0/16"]


def test_our_bridge_and_our_host_gw_routes_are_not_foreign() -> None:
    routes = [
        {"dst": "10.42.0.0/24", "dev": "pyk3s0", "protocol": "kernel"},
        {"dst": "10.43.0.0/16", "dev": "pyk3s0"},
        # another node's pods, routed by this node's agent before it was killed
        {"dst": "10.42.1.0/24", "gateway": "172.31.5.2", "dev": "eth0", "protocol": "201"},
        {"dst": "default", "dev": "eth0"},
    ]
    assert overlapping_routes(routes, CIDRS, {"pyk3s0"}) == []


def test_routes_to_this_nodes_pods_on_their_veths_are_not_foreign() -> None:
    routes = [{"dst": "10.42.0.5", "dev": "pkv0123456789a", "protocol": "202", "prefsrc": "10.42.0.1"}]
    assert overlapping_routes(routes, CIDRS, {"pyk3s0"}) == []
