"""networking.k8s.io/v1 NetworkPolicy: kube-apiserver's defaulting (``SetDefaults_NetworkPolicy*``) and
validation (``pkg/apis/networking/validation``, v1.32), with its messages.

* Defaults: ``spec.podSelector`` ``{}``; ``policyTypes`` ``[Ingress]`` plus ``Egress`` when ``egress`` has
  rules; every port's ``protocol`` TCP.
* Selectors: ``matchLabels`` keys and values, ``matchExpressions`` operators (In/NotIn need values,
  Exists/DoesNotExist take none), keys and values.
* Ports: protocol TCP, UDP or SCTP; a number 1-65535 or a port name; ``endPort`` only with a number and
  not below it.
* Peers: at least one of podSelector, namespaceSelector, ipBlock, and ipBlock alone; ``cidr`` a CIDR,
  each ``except`` a strict subset of it.
* ``policyTypes``: at most two, each Ingress or Egress.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .causes import Cause, GoValue, forbidden, invalid, not_supported, required
from .meta import validate_labels
from .names import PORT_RANGE, label_value, port_name, qualified_name, valid_port

__all__ = ["default_network_policy", "validate_network_policy"]

_PROTOCOLS = ["TCP", "UDP", "SCTP"]
_TYPES = ["Ingress", "Egress"]


def default_network_policy(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    if not isinstance(spec.get("podSelector"), dict):
        spec["podSelector"] = {}
    for key in ("ingress", "egress"):
        for rule in spec.get(key) or []:
            for port in (rule or {}).get("ports") or [] if isinstance(rule, dict) else []:
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def _selector(sel: Any, path: str) -> list[Cause]:
    if not isinstance(sel, dict):
        return []
    causes = validate_labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        expr = expr if isinstance(expr, dict) else {}
        op, values = expr.get("operator", ""), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                causes.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or "
                                                       "'DoesNotExist'"))
        else:
            causes.append(invalid(f"{p}.operator", op, "not a valid selector operator"))
        key = str(expr.get("key", ""))
        causes += [invalid(f"{p}.key", key, m) for m in qualified_name(key)]
        for j, v in enumerate(values):
            causes += [invalid(f"{p}.values[{j}]", v, m) for m in label_value(str(v))]
    return causes


def _port(port: Any, path: str) -> list[Cause]:
    port = port if isinstance(port, dict) else {}
    causes: list[Cause] = []
    proto = port.get("protocol")
    if proto is not None and proto not in _PROTOCOLS:
        causes.append(not_supported(f"{path}.protocol", proto, _PROTOCOLS))
    number, end = port.get("port"), port.get("endPort")
    if number is not None:
        if isinstance(number, int) and not isinstance(number, bool):
            if not valid_port(number):
                causes.append(invalid(f"{path}.port", number, PORT_RANGE))
            if end is not None:
                if isinstance(end, int) and end < number:
                    causes.append(invalid(f"{path}.endPort", end, "must be greater than or equal to `port`"))
                if not valid_port(end):
                    causes.append(invalid(f"{path}.endPort", end, PORT_RANGE))
        else:
            if end is not None:
                causes.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
            causes += [invalid(f"{path}.port", number, m) for m in port_name(str(number))]
    elif end is not None:
        causes.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    return causes


def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """netutils.ParseCIDRSloppy: IPv4 octets may carry leading zeros."""
    addr, sep, plen = text.partition("/")
    if not sep or not plen.isdigit():
        return None
    if "." in addr and ":" not in addr:
        octets = addr.split(".")
        if len(octets) != 4 or not all(o.isdigit() and len(o) <= 3 for o in octets):
            return None
        addr = ".".join(str(int(o)) for o in octets)
    try:
        return ipaddress.ip_network(f"{addr}/{plen}", strict=False)
    except ValueError:
        return None


def _ip_block(block: Any, path: str) -> list[Cause]:
    block = block if isinstance(block, dict) else {}
    text = block.get("cidr") or ""
    if not text:
        return [required(f"{path}.cidr")]
    net = _cidr(str(text))
    if net is None:
        return [invalid(f"{path}.cidr", text, "not a valid CIDR")]
    causes: list[Cause] = []
    for i, e in enumerate(block.get("except") or []):
        sub = _cidr(str(e))
        if sub is None:
            causes.append(invalid(f"{path}.except[{i}]", e, "not a valid CIDR"))
            return causes
        if sub.version != net.version or sub.network_address not in net or net.prefixlen >= sub.prefixlen:
            causes.append(invalid(f"{path}.except[{i}]", e, "must be a strict subset of `cidr`"))
    return causes


def _peer(peer: Any, path: str) -> list[Cause]:
    peer = peer if isinstance(peer, dict) else {}
    causes: list[Cause] = []
    count = 0
    if peer.get("podSelector") is not None:
        count += 1
        causes += _selector(peer["podSelector"], f"{path}.podSelector")
    if peer.get("namespaceSelector") is not None:
        count += 1
        causes += _selector(peer["namespaceSelector"], f"{path}.namespaceSelector")
    if peer.get("ipBlock") is not None:
        count += 1
        causes += _ip_block(peer["ipBlock"], f"{path}.ipBlock")
    if count == 0:
        causes.append(required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        causes.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return causes


def validate_network_policy(kind: str, obj: dict, old: dict | None) -> list[Cause]:
    del kind, old  # updates are validated like creates (no immutable fields)
    spec = obj.get("spec") or {}
    causes = _selector(spec.get("podSelector"), "spec.podSelector")
    for key, peer_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(key) or []):
            rule = rule if isinstance(rule, dict) else {}
            rp = f"spec.{key}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                causes += _port(port, f"{rp}.ports[{j}]")
            for j, peer in enumerate(rule.get(peer_key) or []):
                causes += _peer(peer, f"{rp}.{peer_key}[{j}]")
    types = spec.get("policyTypes") or []
    if len(types) > len(_TYPES):
        shown = "[]networking.PolicyType{" + ", ".join(f'"{t}"' for t in types) + "}"
        causes.append(invalid("spec.policyTypes", GoValue(shown), "may not specify more than two policyTypes"))
        return causes
    for i, t in enumerate(types):
        if t not in _TYPES:
            causes.append(not_supported(f"spec.policyTypes[{i}]", t, _TYPES))
    return causes
