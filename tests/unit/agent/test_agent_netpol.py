"""The policy table's text (whole and deltas) and the controller's handling of objects it cannot read."""

from __future__ import annotations

import asyncio

from pyk3s.agent.cni.bridge import pod_link_group
from pyk3s.agent.netpol.controller import NetpolController, netpol_table_for
from pyk3s.agent.netpol.render import NetpolTable, delta_script, full_script
from pyk3s.netpol import AllowIndex, parse_policy, pod_info

TABLE = NetpolTable("pyk3s-netpol-t", "pkbt")


def pod(name: str, ip: str, labels: dict, node: str = "n1") -> dict:
    return {"metadata": {"namespace": "x", "name": name, "labels": labels, "uid": f"uid-{name}"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def policy(name: str, spec: dict) -> dict:
    return {"metadata": {"namespace": "x", "name": name, "uid": f"uid-{name}", "generation": 1}, "spec": spec}


def index_with(*pods: dict, policies: tuple[dict, ...] = ()) -> AllowIndex:
    index = AllowIndex("n1")
    for p in pods:
        index.set_pod(pod_info(p))  # type: ignore[arg-type]
    for q in policies:
        index.set_policy(parse_policy(q))
    return index


GROUP = f"{pod_link_group('pkbt'):#x}"  # the pod links (routed veths) of the node whose bridge is pkbt


def test_table_names_follow_the_bridge() -> None:
    assert netpol_table_for("pyk3s0") == "pyk3s-netpol"
    assert netpol_table_for("pkb1a2b3c") == "pyk3s-netpol-pkb1a2b3c"


def test_full_table_shape() -> None:
    index = index_with(pod("a", "10.42.0.2", {"app": "a"}), pod("b", "10.42.0.3", {"app": "b"}),
                       policies=(policy("in", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [
                           {"from": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": "http"}]},
                           {"from": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}]}]}),
                                 policy("out", {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Egress"],
                                                "egress": [{}]})))
    text = full_script(TABLE, index.state())
    assert text.startswith("table inet pyk3s-netpol-t\ndelete table inet pyk3s-netpol-t\n")
    assert "10.42.0.3 . tcp . 80" in text  # b may reach a's named port http
    assert "192.0.2.0/25 . 0-255 . 0-65535" in text  # the ipBlock minus its except, every protocol
    assert "0.0.0.0/0 . 0-255 . 0-65535" in text  # b's egress rule without peers or ports
    forward = text[text.index("chain forward"):]
    assert forward.index("ct state established,related accept") < forward.index("nd-neighbor-solicit") \
        < forward.index(f"iifgroup {GROUP} jump egress") < forward.index(f"oifgroup {GROUP} jump ingress")
    assert f"iifgroup {GROUP} jump egress" in text[text.index("chain input"):]
    ingress_group = next(g for g in index.state().groups.values() if g.direction == "Ingress")
    egress_group = next(g for g in index.state().groups.values() if g.direction == "Egress")
    assert f"@{ingress_group.gid}-p4 accept" in text and f"@{egress_group.gid}-a4 return" in text
    assert f"10.42.0.2 : jump {ingress_group.gid}" in text and f"10.42.0.3 : jump {egress_group.gid}" in text
    deny = full_script(TABLE, index.state(), deny_only=True)
    assert f"chain {ingress_group.gid} {{\n    goto deny\n  }}" in deny and "192.0.2.0/25" not in deny


def test_delta_order_within_one_transaction() -> None:
    a, b = pod("a", "10.42.0.2", {"app": "a"}), pod("b", "10.42.0.3", {"app": "b"})
    index = index_with(a, b, policies=(policy("in", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}),))
    index.mark_applied()
    b["metadata"]["labels"] = {"app": "b", "role": "client"}
    index.set_pod(pod_info(b))  # type: ignore[arg-type]
    text = delta_script(TABLE, index.take_delta())
    assert text.strip().splitlines() == [f"add element inet pyk3s-netpol-t {next(iter(index.groups))}-a4 "
                                         "{ 10.42.0.3 }"]
    # a leaves its group: the map entry goes before the chain and sets it named
    a["metadata"]["labels"] = {"app": "z"}
    index.set_pod(pod_info(a))  # type: ignore[arg-type]
    lines = delta_script(TABLE, index.take_delta()).splitlines()
    first_chain_delete = next(i for i, ln in enumerate(lines) if ln.startswith("delete chain"))
    map_delete = next(i for i, ln in enumerate(lines) if ln.startswith("delete element inet pyk3s-netpol-t in4"))
    assert map_delete < first_chain_delete
    assert delta_script(TABLE, index.take_delta()) == ""


def test_unreadable_policy_isolates_and_is_reported() -> None:
    events: list[tuple[str, str, str]] = []

    async def record(obj: dict, type_: str, reason: str, message: str) -> None:
        events.append((obj["metadata"]["name"], reason, message))

    async def go() -> None:
        ctl = NetpolController(None, "n1", TABLE, informers=(None, None, None), record=record, sctp=False)
        ctl.on_pod("ADDED", None, pod("a", "10.42.0.2", {"app": "a"}))
        ctl.on_policy("ADDED", None, policy("bad", {"podSelector": {}, "ingress": [{"from": [{}]}]}))
        ctl.on_policy("ADDED", None, policy("sctp", {"podSelector": {"matchLabels": {"app": "none"}},
                                                     "ingress": [{"ports": [{"port": 80, "protocol": "SCTP"}]}]}))
        await asyncio.sleep(0)
        state = ctl.index.state()
        assert state.dispatch["Ingress"]["10.42.0.2"], "the pods of an unreadable policy are isolated"
        assert not any(g.pods or g.ranges for g in state.groups.values()), "and it allows nothing"
        # the same object again reports nothing new
        ctl.on_policy("MODIFIED", None, policy("bad", {"podSelector": {}, "ingress": [{"from": [{}]}]}))
        await asyncio.sleep(0)

    asyncio.run(go())
    assert [(n, r) for n, r, _ in events] == [("bad", "NetworkPolicyInvalid"), ("sctp", "ProtocolNotSupported")]
    assert "spec.ingress[0].from[0]: must specify a peer" in events[0][2]


def test_admitted_pod_keeps_its_address_until_its_status_has_one() -> None:
    ctl = NetpolController(None, "n1", TABLE, informers=(None, None, None), sctp=True)
    p = pod("a", "", {"app": "a"})
    p["status"] = {"phase": "Pending"}
    ctl._admitted["x/a"] = ("uid-a", ("10.42.0.9",))
    ctl.on_pod("MODIFIED", None, p)  # a label change arriving before the kubelet wrote the address
    assert ctl.index.pods["x/a"].ips == ("10.42.0.9",)
    p["status"] = {"phase": "Running", "podIP": "10.42.0.9"}
    ctl.on_pod("MODIFIED", None, p)
    assert "x/a" not in ctl._admitted


def test_a_peer_moves_between_hash_and_interval_sets() -> None:
    a, b = pod("a", "10.42.0.2", {"app": "a"}), pod("b", "10.42.0.3", {"app": "b"})

    def allow(ports: list) -> dict:
        return policy("in", {"podSelector": {"matchLabels": {"app": "a"}},
                             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": ports}]})
    index = index_with(a, b, policies=(allow([{"port": 80}]),))
    gid = next(iter(index.groups))
    assert f"set {gid}-p4 {{ type ipv4_addr . inet_proto . inet_service; elements = {{ 10.42.0.3 . tcp . 80 }}; }}" \
        in full_script(TABLE, index.state())
    index.mark_applied()
    index.set_policy(parse_policy(allow([{"port": 80, "endPort": 90}, {"port": 53, "protocol": "UDP"}])))
    assert delta_script(TABLE, index.take_delta()).splitlines() == [
        f"delete element inet pyk3s-netpol-t {gid}-p4 {{ 10.42.0.3 . tcp . 80 }}",
        f"add element inet pyk3s-netpol-t {gid}-p4 {{ 10.42.0.3 . udp . 53 }}",
        f"add element inet pyk3s-netpol-t {gid}-r4 {{ 10.42.0.3 . tcp . 80-90 }}"]
    index.set_policy(parse_policy(allow([])))
    assert delta_script(TABLE, index.take_delta()).splitlines() == [
        f"delete element inet pyk3s-netpol-t {gid}-p4 {{ 10.42.0.3 . udp . 53 }}",
        f"delete element inet pyk3s-netpol-t {gid}-r4 {{ 10.42.0.3 . tcp . 80-90 }}",
        f"add element inet pyk3s-netpol-t {gid}-a4 {{ 10.42.0.3 }}"]
