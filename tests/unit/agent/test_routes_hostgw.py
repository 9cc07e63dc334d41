"""host-gw pod routes: which routes a node wants (pure)."""

from pyk3s.agent.routes import desired_routes


def node(name: str, cidr: str | None, ip: str | None) -> dict:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}] if ip else []}}


def test_every_other_node_routed_via_its_internal_ip() -> None:
    nodes = [node("a", "10.42.0.0/24", "172.31.1.1"), node("b", "10.42.1.0/24", "172.31.1.2"),
             node("c", "10.42.2.0/24", "172.31.1.3")]
    routes, warnings = desired_routes(nodes, "a", ["10.42.0.0/16"])
    assert routes == {"10.42.1.0/24": "172.31.1.2", "10.42.2.0/24": "172.31.1.3"}
    assert warnings == []


def test_unsafe_or_incomplete_nodes_are_skipped_with_a_reason() -> None:
    nodes = [node("a", "10.42.0.0/24", "172.31.1.1"), node("evil", "192.0.2.0/24", "172.31.1.9"),
             node("young", None, "172.31.1.4"), node("noip", "10.42.5.0/24", None),
             node("bad", "not-a-cidr", "172.31.1.5")]
    routes, warnings = desired_routes(nodes, "a", ["10.42.0.0/16"])
    assert routes == {}
    text = "\n".join(warnings)
    assert "evil: podCIDR 192.0.2.0/24 is outside the cluster CIDR" in text
    assert "noip: no IPv4 InternalIP" in text and "bad: invalid podCIDR" in text


def test_a_pod_cidr_claimed_twice_is_not_routed() -> None:
    nodes = [node("a", "10.42.0.0/24", "172.31.1.1"), node("b", "10.42.1.0/24", "172.31.1.2"),
             node("c", "10.42.1.0/24", "172.31.1.3")]
    routes, warnings = desired_routes(nodes, "a", ["10.42.0.0/16"])
    assert routes == {}
    assert warnings == ["podCIDR 10.42.1.0/24 is claimed by both node b and node c; not routed"]
