"""NetworkPolicies, Pods and Namespaces reduced to what policy evaluation needs (pure, no I/O).

Rules (networking.k8s.io/v1, as kube-apiserver defaults and the upstream e2e model expects them):

* ``spec.podSelector`` selects pods of the policy's own namespace; an empty selector selects all of
  them. hostNetwork pods are never selected and never match a peer: their traffic carries the node's
  address.
* ``policyTypes`` defaults to ``[Ingress]`` plus ``Egress`` when ``egress`` has rules; a port's
  ``protocol`` defaults to TCP.
* A rule with no ``from``/``to`` matches every peer; a rule with no ``ports`` every protocol and port.
* A peer with ``podSelector`` only matches pods of the policy's namespace; with ``namespaceSelector``
  only, every pod of the matching namespaces; with both, the pods matching both (AND). ``ipBlock``
  matches addresses in ``cidr`` and in no ``except``, pods included.

A stored object the parser cannot read (it would not pass validation) raises :class:`PolicyError`
naming the field; :func:`fail_closed_policy` turns it into a policy that isolates its namespace's
selected pods (every pod, when the selector is unreadable) and allows nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INGRESS", "EGRESS", "PROTOCOLS", "IpBlock", "NamespaceInfo", "PolicyPeer", "PodInfo", "Policy", "PolicyError",
    "PortSpec", "TrafficRule", "Selector", "Requirement", "fail_closed_policy", "namespace_info", "parse_ip",
    "parse_policy", "pod_info",
]

INGRESS, EGRESS = "Ingress", "Egress"
PROTOCOLS: dict[str, int] = {"TCP": 6, "UDP": 17, "SCTP": 132}


class PolicyError(ValueError):
    """A policy field pyk3s cannot evaluate; ``field`` is its path (``spec.ingress[0].from[1]``)."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.message = message


# -- label selectors ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # In | NotIn | Exists | DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "In":
            return labels.get(self.key) in self.values if self.key in labels else False
        if self.op == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.op == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class Selector:
    """metav1.LabelSelector: every requirement must hold; no requirement selects everything."""
    requirements: tuple[Requirement, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        for r in self.requirements:
            if not r.matches(labels):
                return False
        return True

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op == "In" and len(r.values) == 1:
                parts.append(f"{r.key}={next(iter(r.values))}")
            elif r.op in ("In", "NotIn"):
                parts.append(f"{r.key} {r.op.lower()} ({','.join(sorted(r.values))})")
            else:
                parts.append(r.key if r.op == "Exists" else f"!{r.key}")
        return ",".join(parts) or "<all>"


def _selector(raw: Any, path: str) -> Selector:
    if raw is None:
        return Selector()
    if not isinstance(raw, dict):
        raise PolicyError(path, "must be a label selector")
    reqs: list[Requirement] = []
    labels = raw.get("matchLabels") or {}
    if not isinstance(labels, dict):
        raise PolicyError(f"{path}.matchLabels", "must be a map of strings")
    for k, v in sorted(labels.items()):
        reqs.append(Requirement(str(k), "In", frozenset({str(v)})))
    for i, e in enumerate(raw.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        if not isinstance(e, dict):
            raise PolicyError(p, "must be a selector requirement")
        op, key, values = e.get("operator"), e.get("key"), e.get("values") or []
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PolicyError(f"{p}.operator", f"{op!r} is not a valid selector operator")
        if not isinstance(key, str) or not key:
            raise PolicyError(f"{p}.key", "is required")
        if op in ("In", "NotIn") and not values:
            raise PolicyError(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        reqs.append(Requirement(key, op, frozenset(str(v) for v in values)))
    return Selector(tuple(reqs))


# -- addresses ------------------------------------------------------------------------------------------

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _sloppy_network(text: str) -> IpNetwork:
    """netutils.ParseCIDRSloppy: IPv4 octets may carry leading zeros (read as decimal)."""
    addr, sep, plen = text.partition("/")
    if not sep:
        raise ValueError(text)
    if "." in addr and ":" not in addr:
        octets = addr.split(".")
        if len(octets) != 4 or not all(o.isdigit() for o in octets):
            raise ValueError(text)
        addr = ".".join(str(int(o)) for o in octets)
    return ipaddress.ip_network(f"{addr}/{plen}", strict=False)


@dataclass(frozen=True, slots=True)
class IpBlock:
    cidr: IpNetwork
    excepts: tuple[IpNetwork, ...] = ()

    def contains(self, ip: IpAddress) -> bool:
        if ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip in e for e in self.excepts)

    def __str__(self) -> str:
        return f"{self.cidr}" + (f" except {', '.join(map(str, self.excepts))}" if self.excepts else "")


# -- ports ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortSpec:
    protocol: str  # TCP | UDP | SCTP
    port: int | str | None = None  # None: every port of the protocol; str: a named container port
    end_port: int | None = None

    def __str__(self) -> str:
        if self.port is None:
            return f"any/{self.protocol}"
        if self.end_port is not None and self.end_port != self.port:
            return f"{self.port}-{self.end_port}/{self.protocol}"
        return f"{self.port}/{self.protocol}"


def _port(raw: Any, path: str) -> PortSpec:
    if not isinstance(raw, dict):
        raise PolicyError(path, "must be a port")
    proto = raw.get("protocol") or "TCP"
    if proto not in PROTOCOLS:
        raise PolicyError(f"{path}.protocol", f"unsupported protocol {proto!r}")
    port = raw.get("port")
    end = raw.get("endPort")
    if port is None:
        if end is not None:
            raise PolicyError(f"{path}.endPort", "may not be specified when `port` is not specified")
        return PortSpec(proto)
    if isinstance(port, bool) or not isinstance(port, int | str):
        raise PolicyError(f"{path}.port", "must be a number or a port name")
    if isinstance(port, str) and port.isdigit():
        port = int(port)  # an IntOrString that arrived as a string of digits
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            raise PolicyError(f"{path}.port", "must be between 1 and 65535, inclusive")
        if end is not None and (not isinstance(end, int) or isinstance(end, bool) or not port <= end <= 65535):
            raise PolicyError(f"{path}.endPort", "must be between `port` and 65535")
        return PortSpec(proto, port, end)
    if end is not None:
        raise PolicyError(f"{path}.endPort", "may not be specified when `port` is non-numeric")
    return PortSpec(proto, port)


# -- peers, rules, policies -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyPeer:
    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IpBlock | None = None

    def __str__(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaces {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"pods {self.pod_selector}")
        return " and ".join(parts)


def _peer(raw: Any, path: str) -> PolicyPeer:
    if not isinstance(raw, dict):
        raise PolicyError(path, "must be a peer")
    pods, nss, block = raw.get("podSelector"), raw.get("namespaceSelector"), raw.get("ipBlock")
    if block is not None:
        if pods is not None or nss is not None:
            raise PolicyError(path, "may not specify both ipBlock and another peer")
        if not isinstance(block, dict) or not block.get("cidr"):
            raise PolicyError(f"{path}.ipBlock.cidr", "is required")
        try:
            cidr = _sloppy_network(str(block["cidr"]))
        except ValueError:
            raise PolicyError(f"{path}.ipBlock.cidr", "not a valid CIDR") from None
        excepts = []
        for i, e in enumerate(block.get("except") or []):
            try:
                net = _sloppy_network(str(e))
            except ValueError:
                raise PolicyError(f"{path}.ipBlock.except[{i}]", "not a valid CIDR") from None
            if net.version != cidr.version or not net.subnet_of(cidr) or net.prefixlen <= cidr.prefixlen:  # type: ignore[arg-type]
                raise PolicyError(f"{path}.ipBlock.except[{i}]", "must be a strict subset of `cidr`")
            excepts.append(net)
        return PolicyPeer(ip_block=IpBlock(cidr, tuple(excepts)))
    if pods is None and nss is None:
        raise PolicyError(path, "must specify a peer")
    return PolicyPeer(None if pods is None else _selector(pods, f"{path}.podSelector"),
                None if nss is None else _selector(nss, f"{path}.namespaceSelector"))


@dataclass(frozen=True, slots=True)
class TrafficRule:
    """One ingress or egress rule: ``peers`` empty means every peer, ``ports`` empty every port."""
    peers: tuple[PolicyPeer, ...] = ()
    ports: tuple[PortSpec, ...] = ()

    @property
    def any_peer(self) -> bool:
        return not self.peers

    @property
    def named_ports(self) -> bool:
        return any(isinstance(p.port, str) for p in self.ports)


@dataclass(frozen=True, slots=True)
class Policy:
    namespace: str
    name: str
    pod_selector: Selector = field(default_factory=Selector)
    ingress: tuple[TrafficRule, ...] = ()
    egress: tuple[TrafficRule, ...] = ()
    types: frozenset[str] = frozenset({INGRESS})
    # set when the stored object could not be read: the policy isolates and allows nothing
    error: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> tuple[TrafficRule, ...]:
        return self.ingress if direction == INGRESS else self.egress

    def isolates(self, direction: str) -> bool:
        return direction in self.types


def _rules(raw: Any, path: str, peer_key: str) -> tuple[TrafficRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError(path, "must be a list of rules")
    out = []
    for i, r in enumerate(raw):
        rp = f"{path}[{i}]"
        if r is None:
            r = {}
        if not isinstance(r, dict):
            raise PolicyError(rp, "must be a rule")
        peers = tuple(_peer(p, f"{rp}.{peer_key}[{j}]") for j, p in enumerate(r.get(peer_key) or []))
        ports = tuple(_port(p, f"{rp}.ports[{j}]") for j, p in enumerate(r.get("ports") or []))
        out.append(TrafficRule(peers, ports))
    return tuple(out)


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def parse_policy(obj: Mapping[str, Any]) -> Policy:
    """A stored NetworkPolicy as a :class:`Policy`; :class:`PolicyError` if it cannot be read."""
    ns, name = _meta(obj)
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise PolicyError("spec", "must be an object")
    selector = _selector(spec.get("podSelector") or {}, "spec.podSelector")
    ingress = _rules(spec.get("ingress"), "spec.ingress", "from")
    egress = _rules(spec.get("egress"), "spec.egress", "to")
    types_raw = spec.get("policyTypes") or []
    if not isinstance(types_raw, list) or any(t not in (INGRESS, EGRESS) for t in types_raw):
        raise PolicyError("spec.policyTypes", "supported values: \"Ingress\", \"Egress\"")
    types = frozenset(types_raw) if types_raw else frozenset({INGRESS, *((EGRESS,) if egress else ())})
    return Policy(ns, name, selector, ingress, egress, types)


def fail_closed_policy(obj: Mapping[str, Any], err: PolicyError) -> Policy:
    """The stand-in for a policy that cannot be read: the pods it selects (all of its namespace when
    the selector itself is unreadable) are isolated in its directions and nothing is allowed."""
    ns, name = _meta(obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    try:
        selector = _selector((spec or {}).get("podSelector") or {}, "spec.podSelector")
    except PolicyError:
        selector = Selector()
    raw_types = (spec or {}).get("policyTypes")
    types = frozenset(t for t in raw_types if t in (INGRESS, EGRESS)) if isinstance(raw_types, list) else frozenset()
    if not types:
        types = frozenset({INGRESS, EGRESS}) if (spec or {}).get("egress") else frozenset({INGRESS})
    return Policy(ns, name, selector, (), (), types, error=str(err))


# -- pods and namespaces --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ips: tuple[str, ...]
    node: str = ""
    host_network: bool = False
    # (name, protocol, port) of every named container port
    named_ports: tuple[tuple[str, str, int], ...] = ()
    creation: str = ""
    terminating: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def port_numbers(self, name: str, protocol: str) -> list[int]:
        return [p for n, proto, p in self.named_ports if n == name and proto == protocol]


def pod_info(obj: Mapping[str, Any]) -> PodInfo | None:
    """A Pod as policy evaluation sees it; None for pods that take no part (finished, no address yet)."""
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    ips = [p.get("ip", "") for p in status.get("podIPs") or [] if isinstance(p, dict)]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    ips = [str(ipaddress.ip_address(ip)) for ip in ips if parse_ip(ip) is not None]
    if not ips:
        return None
    named: list[tuple[str, str, int]] = []
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for p in c.get("ports") or []:
            if p.get("name") and isinstance(p.get("containerPort"), int):
                named.append((str(p["name"]), str(p.get("protocol") or "TCP"), int(p["containerPort"])))
    labels = meta.get("labels") or {}
    return PodInfo(str(meta.get("namespace") or "default"), str(meta.get("name") or ""),
                   {str(k): str(v) for k, v in labels.items()}, tuple(dict.fromkeys(ips)),
                   str(spec.get("nodeName") or ""), bool(spec.get("hostNetwork")), tuple(named),
                   str(meta.get("creationTimestamp") or ""), bool(meta.get("deletionTimestamp")))


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    name: str
    labels: Mapping[str, str]


def namespace_info(obj: Mapping[str, Any]) -> NamespaceInfo:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    # kube-apiserver always sets this label; objects read from elsewhere may lack it
    labels.setdefault("kubernetes.io/metadata.name", name)
    return NamespaceInfo(name, labels)


def by_key(items: Iterable[PodInfo]) -> dict[str, PodInfo]:
    return {p.key: p for p in items}
