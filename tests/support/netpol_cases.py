"""The upstream NetworkPolicy e2e model (test/e2e/network/netpol): namespaces x, y, z with pods a, b, c,
each serving TCP and UDP on ports 80 and 81 (container ports ``serve-<port>-<tcp|udp>``), and for each
case the policies to apply and the full 9x9 expected reachability per port and protocol.

Shared by the unit tests (evaluator and allow index against the expected tables) and the end-to-end
tests (real packets from every pod to every pod). A pod always reaches itself (loopback), as the
data path has it; upstream ignores the diagonal.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CASES", "NAMESPACES", "PODS", "Case", "Check", "Reachability", "Step", "model_namespaces",
           "model_pods", "pod_manifest"]

NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
PODS = tuple(f"{ns}/{p}" for ns in NAMESPACES for p in POD_NAMES)
PORTS = (80, 81)
NS_KEY = "kubernetes.io/metadata.name"


class Reachability:
    """Expected (or observed) connectivity between every pair of model pods."""

    def __init__(self, default: bool = True) -> None:
        self.table: dict[tuple[str, str], bool] = {(s, d): default for s in PODS for d in PODS}

    def expect(self, src: str, dst: str, value: bool) -> Reachability:
        self.table[(src, dst)] = value
        return self

    def peer(self, value: bool, src_ns: str = "", src_pod: str = "", dst_ns: str = "", dst_pod: str = "") -> Reachability:
        for s in PODS:
            for d in PODS:
                sns, sp = s.split("/")
                dns, dp = d.split("/")
                if (src_ns in ("", sns) and src_pod in ("", sp) and dst_ns in ("", dns) and dst_pod in ("", dp)):
                    self.table[(s, d)] = value
        return self

    def all_ingress(self, pod: str, value: bool) -> Reachability:
        for s in PODS:
            self.table[(s, pod)] = value
        return self

    def all_egress(self, pod: str, value: bool) -> Reachability:
        for d in PODS:
            self.table[(pod, d)] = value
        return self

    def with_loopback(self) -> dict[tuple[str, str], bool]:
        return {k: (True if k[0] == k[1] else v) for k, v in self.table.items()}

    @staticmethod
    def render(table: Mapping[tuple[str, str], bool], other: Mapping[tuple[str, str], bool] | None = None) -> str:
        """Rows are sources, columns destinations; ``.`` allowed, ``X`` denied, ``!`` where ``other`` differs."""
        lines = ["     " + " ".join(f"{d:>3}" for d in PODS)]
        for s in PODS:
            cells = []
            for d in PODS:
                c = "." if table[(s, d)] else "X"
                if other is not None and other[(s, d)] != table[(s, d)]:
                    c += "!"
                cells.append(f"{c:>3}")
            lines.append(f"{s:>4} " + " ".join(cells))
        return "\n".join(lines)


@dataclass
class Check:
    port: int
    protocol: str  # TCP | UDP | ICMP (port ignored)
    expected: Reachability
    via_service: bool = False  # probe the destination's ClusterIP Service instead of its pod address


PoliciesFn = Callable[[Mapping[str, str]], list[dict[str, Any]]]


@dataclass
class Step:
    policies: list[dict[str, Any]] | PoliciesFn = field(default_factory=list)
    delete: tuple[tuple[str, str], ...] = ()  # (namespace, name)
    pod_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # pod -> labels added
    ns_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()

    def policy_objects(self, ips: Mapping[str, str]) -> list[dict[str, Any]]:
        return self.policies(ips) if callable(self.policies) else self.policies


@dataclass
class Case:
    name: str
    steps: tuple[Step, ...]
    multinode: bool = False  # also part of the 3-node run


# -- the model's objects ----------------------------------------------------------------------------------

def model_namespaces() -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"ns": ns}}}
            for ns in NAMESPACES]


def pod_manifest(ns: str, name: str, node: str = "") -> dict[str, Any]:
    containers = []
    for port in PORTS:
        containers.append({
            "name": f"cont-{port}", "image": "pyk3s/whoami", "args": ["--port", str(port)],
            "ports": [{"containerPort": port, "name": f"serve-{port}-tcp", "protocol": "TCP"},
                      {"containerPort": port, "name": f"serve-{port}-udp", "protocol": "UDP"}],
        })
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 0, "containers": containers}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": {"pod": name}},
            "spec": spec}


def model_pods(ips: Mapping[str, str], nodes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The model's pods as the API serves them once running (for the unit tests)."""
    out = []
    for key in PODS:
        ns, name = key.split("/")
        pod = pod_manifest(ns, name, (nodes or {}).get(key, "node-0"))
        for c in pod["spec"]["containers"]:
            for p in c["ports"]:
                p.setdefault("protocol", "TCP")
        pod["status"] = {"phase": "Running", "podIP": ips[key], "podIPs": [{"ip": ips[key]}]}
        pod["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
        out.append(pod)
    return out


def policy(ns: str, name: str, pod_selector: Mapping[str, Any] | None = None, *, ingress: list[Any] | None = None,
           egress: list[Any] | None = None, types: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": dict(pod_selector or {})}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types is not None:
        spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": name}, "spec": spec}


def _labels(**kv: str) -> dict[str, Any]:
    return {"matchLabels": dict(kv)}


def _ns(name: str) -> dict[str, Any]:
    return {"matchLabels": {NS_KEY: name}}


def R() -> Reachability:  # noqa: N802 - reads like upstream's NewReachability
    return Reachability()


def _host(ip: str) -> str:
    return f"{ip}/{128 if ':' in ip else 32}"


def _ip_block_case(ips: Mapping[str, str]) -> list[dict[str, Any]]:
    # x/a may send only to the /16 holding the model's pods, except y/b's address; y/c is allowed
    # again through a second peer whose cidr is exactly its address (an address in one peer's except
    # and another peer's cidr is allowed)
    net = str(ipaddress.ip_network(f"{ips['x/a']}/16", strict=False))
    return [policy("x", "egress-cidr-except", _labels(pod="a"), egress=[
        {"to": [{"ipBlock": {"cidr": net, "except": [_host(ips['y/b']), _host(ips['y/c'])]}},
                {"ipBlock": {"cidr": _host(ips['y/c'])}}]}], types=["Egress"])]


def _ip_block_ingress(ips: Mapping[str, str]) -> list[dict[str, Any]]:
    # z/* accept only from x/a's and x/b's addresses (ipBlocks judge pod addresses too)
    return [policy("z", "from-xa-xb", {}, ingress=[{"from": [{"ipBlock": {"cidr": _host(ips['x/a'])}},
                                                             {"ipBlock": {"cidr": _host(ips['x/b'])}}]}])]


CASES: tuple[Case, ...] = (
    Case("default-deny-ingress", (Step(
        [policy("x", "deny-ingress", {}, ingress=[])],
        checks=(Check(80, "TCP", R().peer(False, dst_ns="x")), Check(81, "UDP", R().peer(False, dst_ns="x")),
                Check(0, "ICMP", R().peer(False, dst_ns="x")))),), multinode=True),
    Case("default-deny-all", (Step(
        [policy("x", "deny-all", {}, ingress=[], egress=[], types=["Ingress", "Egress"])],
        checks=(Check(80, "TCP", R().peer(False, dst_ns="x").peer(False, src_ns="x")),
                Check(80, "UDP", R().peer(False, dst_ns="x").peer(False, src_ns="x")))),), multinode=True),
    Case("allow-from-pods-in-namespace-by-pod-selector", (Step(
        [policy("x", "x-a-allows-x-b", _labels(pod="a"), ingress=[{"from": [{"podSelector": _labels(pod="b")}]}])],
        checks=(Check(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True)),)),)),
    Case("allow-ingress-to-target-over-deny-all", (Step(
        [policy("x", "deny-all", {}, ingress=[]),
         policy("x", "allow-all-to-a", _labels(pod="a"),
                ingress=[{"from": [{"podSelector": {}, "namespaceSelector": {}}]}])],
        checks=(Check(80, "TCP", R().all_ingress("x/b", False).all_ingress("x/c", False)),)),)),
    Case("allow-from-namespace-by-label", (Step(
        [policy("x", "allow-client-a-via-ns-selector", _labels(pod="a"),
                ingress=[{"from": [{"namespaceSelector": _ns("y")}]}])],
        checks=(Check(80, "TCP", R().peer(False, src_ns="x", dst_ns="x", dst_pod="a")
                      .peer(False, src_ns="z", dst_ns="x", dst_pod="a")),)),), multinode=True),
    Case("match-expressions-on-pods-and-namespaces", (Step(
        [policy("x", "pods-in", _labels(pod="a"), ingress=[{"from": [{"podSelector": {"matchExpressions": [
            {"key": "pod", "operator": "In", "values": ["b"]}]}}]}]),
         policy("y", "ns-notin", _labels(pod="a"), ingress=[{"from": [{"namespaceSelector": {"matchExpressions": [
             {"key": NS_KEY, "operator": "NotIn", "values": ["x", "y"]}]}}]}])],
        checks=(Check(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True)
                      .all_ingress("y/a", False).peer(True, src_ns="z", dst_ns="y", dst_pod="a")),)),)),
    Case("pod-selector-or-namespace-selector-two-peers", (Step(
        [policy("x", "two-peers", _labels(pod="a"), ingress=[{"from": [
            {"namespaceSelector": {"matchExpressions": [{"key": NS_KEY, "operator": "NotIn", "values": ["x"]}]}},
            {"podSelector": _labels(pod="b")}]}])],
        checks=(Check(80, "TCP", R().expect("x/c", "x/a", False)),)),)),
    Case("pod-selector-and-namespace-selector-one-peer", (Step(
        [policy("x", "one-peer", _labels(pod="a"), ingress=[{"from": [
            {"namespaceSelector": {"matchExpressions": [{"key": NS_KEY, "operator": "NotIn", "values": ["x"]}]},
             "podSelector": _labels(pod="b")}]}])],
        checks=(Check(80, "TCP", R().all_ingress("x/a", False).expect("y/b", "x/a", True).expect("z/b", "x/a", True)),
                )),), multinode=True),
    Case("ports-and-stacked-policies", (
        Step([policy("x", "allow-81-from-y", _labels(pod="a"), ingress=[{"from": [{"namespaceSelector": _ns("y")}],
                                                                        "ports": [{"port": 81, "protocol": "TCP"}]}])],
             checks=(Check(81, "TCP", R().peer(False, src_ns="x", dst_ns="x", dst_pod="a")
                           .peer(False, src_ns="z", dst_ns="x", dst_pod="a")),
                     Check(80, "TCP", R().all_ingress("x/a", False)))),
        Step([policy("x", "allow-80-from-y", _labels(pod="a"), ingress=[{"from": [{"namespaceSelector": _ns("y")}],
                                                                        "ports": [{"port": 80, "protocol": "TCP"}]}])],
             checks=(Check(80, "TCP", R().peer(False, src_ns="x", dst_ns="x", dst_pod="a")
                           .peer(False, src_ns="z", dst_ns="x", dst_pod="a")),
                     Check(80, "UDP", R().all_ingress("x/a", False)))),
    )),
    Case("named-ports", (
        Step([policy("x", "ingress-named-81", {}, ingress=[{"ports": [{"port": "serve-81-tcp"}]}]),
              policy("y", "egress-named-80", {}, egress=[{"ports": [{"port": "serve-80-tcp"},
                                                                    {"port": "serve-80-udp", "protocol": "UDP"}]}],
                     types=["Egress"])],
             checks=(Check(81, "TCP", R().peer(False, src_ns="y")),
                     Check(80, "TCP", R().peer(False, dst_ns="x")),
                     Check(80, "UDP", R().peer(False, dst_ns="x")),
                     Check(81, "UDP", R().peer(False, dst_ns="x").peer(False, src_ns="y")))),
        # a named port with the wrong protocol names nothing
        Step([policy("x", "ingress-named-81", {}, ingress=[{"ports": [{"port": "serve-81-tcp", "protocol": "UDP"}]}])],
             delete=(("y", "egress-named-80"),),
             checks=(Check(81, "TCP", R().peer(False, dst_ns="x")), Check(81, "UDP", R().peer(False, dst_ns="x")))),
    ), multinode=True),
    Case("end-port-ranges", (Step(
        [policy("x", "egress-range", _labels(pod="a"), egress=[{"ports": [
            {"port": 79, "endPort": 80, "protocol": "TCP"}, {"port": 81, "endPort": 90, "protocol": "UDP"}]}],
            types=["Egress"])],
        checks=(Check(80, "TCP", R()), Check(81, "TCP", R().all_egress("x/a", False)),
                Check(81, "UDP", R()), Check(80, "UDP", R().all_egress("x/a", False)))),)),
    Case("protocol-only-and-sctp-is-not-tcp", (Step(
        [policy("x", "tcp-any-port", _labels(pod="a"), ingress=[{"ports": [{"protocol": "TCP"}]}]),
         policy("x", "sctp-80", _labels(pod="b"), ingress=[{"ports": [{"port": 80, "protocol": "SCTP"}]}])],
        checks=(Check(81, "TCP", R().all_ingress("x/b", False)), Check(80, "UDP", R().all_ingress("x/a", False)
                                                                       .all_ingress("x/b", False)),
                Check(0, "ICMP", R().all_ingress("x/a", False).all_ingress("x/b", False)))),)),
    Case("ip-block-with-except", (
        Step(_ip_block_case,
             checks=(Check(80, "TCP", R().all_egress("x/a", False).peer(True, src_ns="x", src_pod="a", dst_ns="x")
                           .peer(True, src_ns="x", src_pod="a", dst_ns="z").expect("x/a", "y/a", True)
                           .expect("x/a", "y/c", True)),)),
        Step(_ip_block_ingress, delete=(("x", "egress-cidr-except"),),
             checks=(Check(80, "UDP", R().peer(False, dst_ns="z").peer(True, src_ns="x", src_pod="a", dst_ns="z")
                           .peer(True, src_ns="x", src_pod="b", dst_ns="z")),)),
    ), multinode=True),
    Case("egress-to-a-service", (Step(
        [policy("x", "egress-to-y-a", _labels(pod="a"),
                egress=[{"to": [{"namespaceSelector": _ns("y"), "podSelector": _labels(pod="a")}]}], types=["Egress"])],
        checks=(Check(80, "TCP", R().all_egress("x/a", False).expect("x/a", "y/a", True), via_service=True),
                Check(80, "TCP", R().all_egress("x/a", False).expect("x/a", "y/a", True)))),), multinode=True),
    Case("updates-and-label-changes", (
        Step([policy("x", "allow-all-mutate-to-deny-all", {}, ingress=[{}])], checks=(Check(81, "TCP", R()),)),
        Step([policy("x", "allow-all-mutate-to-deny-all", {}, ingress=[])],
             checks=(Check(81, "TCP", R().peer(False, dst_ns="x")),)),
        Step([policy("x", "allow-all-mutate-to-deny-all", {}, ingress=[
            {"from": [{"podSelector": _labels(pod2="updated")}, {"namespaceSelector": _labels(ns2="updated")}]}])],
            checks=(Check(81, "TCP", R().peer(False, dst_ns="x")),)),
        Step(pod_labels={"x/b": {"pod2": "updated"}},
             checks=(Check(81, "TCP", R().peer(False, dst_ns="x").peer(True, src_ns="x", src_pod="b", dst_ns="x")),)),
        Step(ns_labels={"y": {"ns2": "updated"}},
             checks=(Check(81, "TCP", R().peer(False, dst_ns="x").peer(True, src_ns="x", src_pod="b", dst_ns="x")
                           .peer(True, src_ns="y", dst_ns="x")),)),
        Step(delete=(("x", "allow-all-mutate-to-deny-all"),), checks=(Check(81, "TCP", R()),)),
    ), multinode=True),
)
