"""Random clusters for property tests: namespaces, pods (labels, named ports, a hostNetwork one) and
policies mixing every kind of peer and port (hypothesis strategies)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["clusters", "mutation"]

NS = ("n1", "n2", "n3")
LABELS = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["a", "b"]), max_size=2)
NAMED = [("http", "TCP", 80), ("dns", "UDP", 53), ("http", "TCP", 8080), ("alt", "TCP", 81)]

selector = st.one_of(
    st.just({}),
    LABELS.map(lambda m: {"matchLabels": m}),
    st.builds(lambda k, op, v: {"matchExpressions": [{"key": k, "operator": op,
                                                       **({"values": [v]} if op in ("In", "NotIn") else {})}]},
              st.sampled_from(["app", "tier", "kubernetes.io/metadata.name"]),
              st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]), st.sampled_from(["a", "b", "n1"])),
)
ip_block = st.sampled_from([
    {"cidr": "10.42.0.0/24"}, {"cidr": "10.42.0.0/28", "except": ["10.42.0.4/30"]}, {"cidr": "0.0.0.0/0"},
    {"cidr": "10.42.0.8/29", "except": ["10.42.0.10/32"]}, {"cidr": "fd00::/8"},
])
peer = st.one_of(
    selector.map(lambda s: {"podSelector": s}),
    selector.map(lambda s: {"namespaceSelector": s}),
    st.builds(lambda a, b: {"podSelector": a, "namespaceSelector": b}, selector, selector),
    ip_block.map(lambda b: {"ipBlock": b}),
)
port = st.sampled_from([
    {"port": 80}, {"port": 53, "protocol": "UDP"}, {"port": "http"}, {"port": "dns", "protocol": "UDP"},
    {"port": 79, "endPort": 81}, {"protocol": "UDP"}, {"port": "alt"}, {"port": 80, "protocol": "SCTP"},
])
rule = st.builds(lambda peers, ports: {k: v for k, v in (("peers", peers), ("ports", ports)) if v is not None},
                 st.one_of(st.none(), st.lists(peer, max_size=2)), st.one_of(st.none(), st.lists(port, max_size=2)))


@st.composite
def policies(draw: Any, name: str) -> dict:
    spec: dict[str, Any] = {"podSelector": draw(selector)}
    for key, peer_key in (("ingress", "from"), ("egress", "to")):
        rules = draw(st.one_of(st.none(), st.lists(rule, max_size=2)))
        if rules is not None:
            spec[key] = [{**({peer_key: r["peers"]} if "peers" in r else {}),
                          **({"ports": r["ports"]} if "ports" in r else {})} for r in rules]
    types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if types:
        spec["policyTypes"] = types
    return {"metadata": {"namespace": draw(st.sampled_from(NS)), "name": name}, "spec": spec}


@st.composite
def pods(draw: Any, i: int) -> dict:
    ports = draw(st.lists(st.sampled_from(NAMED), max_size=2, unique=True))
    return {"metadata": {"namespace": draw(st.sampled_from(NS)), "name": f"p{i}", "labels": draw(LABELS),
                         "creationTimestamp": f"2025-01-01T00:00:0{i}Z"},
            "spec": {"nodeName": draw(st.sampled_from(["na", "nb"])), "hostNetwork": draw(st.booleans()) and i == 0,
                     "containers": [{"name": "c", "ports": [{"name": n, "protocol": p, "containerPort": c}
                                                             for n, p, c in ports]}]},
            "status": {"phase": "Running", "podIP": f"10.42.0.{i + 2}"}}


@st.composite
def clusters(draw: Any) -> tuple[list[dict], list[dict], list[dict]]:
    nss = [{"metadata": {"name": n, "labels": draw(LABELS)}} for n in NS]
    return nss, [draw(pods(i)) for i in range(draw(st.integers(2, 6)))], \
        [draw(policies(f"q{i}")) for i in range(draw(st.integers(0, 4)))]


mutation = st.tuples(st.sampled_from(["pod_labels", "pod_delete", "pod_readd", "ns_labels", "policy", "policy_delete",
                                      "pod_ip"]), st.integers(0, 5), LABELS)
