"""ClusterIP and NodePort allocation for Services.

Every address and port in use is a key in the store, reserved with ``store.create`` (which fails
for an existing key), so several API servers sharing one store never hand out the same value::

    /registry/pyk3s/allocations/clusterip/<ip>
    /registry/pyk3s/allocations/nodeport/<protocol>/<port>

Dynamic ClusterIPs are drawn at random from the upper part of the range first, like kube-apiserver,
so that fixed addresses in the low band (10.43.0.10 for cluster DNS) stay free for whoever asks for
them by value. The first address of the primary range belongs to the ``kubernetes`` Service.

Dual-stack follows kube-apiserver: ``ipFamilyPolicy`` defaults to SingleStack; PreferDualStack and
RequireDualStack get both families when two service CIDRs are configured (RequireDualStack fails
otherwise); ``ipFamilies`` defaults to the primary family; headless Services get families but no
addresses; ExternalName Services get neither.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from pyk3s.api.codec import dumps
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.base import KeyExists, KeyNotFound, Store

__all__ = ["Allocation", "ServiceAllocator", "AllocationError"]

_PREFIX = "/registry/pyk3s/allocations/"
_FAMILY = {4: "IPv4", 6: "IPv6"}


class AllocationError(Exception):
    """A refused request; ``field`` and ``value`` name what was asked (422 Invalid)."""

    def __init__(self, field: str, value: Any, message: str, reason: str = "FieldValueInvalid") -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.message = message
        self.reason = reason


@dataclass(slots=True)
class Allocation:
    """Keys reserved for one Service write; released if the write does not happen."""

    keys: list[str] = field(default_factory=list)


def _ip_key(ip: str) -> str:
    return f"{_PREFIX}clusterip/{ip}"


def _port_key(proto: str, port: int) -> str:
    return f"{_PREFIX}nodeport/{proto}/{port}"


def service_allocation_keys(svc: dict[str, Any]) -> set[str]:
    spec = svc.get("spec") or {}
    keys = {_ip_key(ip) for ip in spec.get("clusterIPs") or [] if ip and ip != "None"}
    for p in spec.get("ports") or []:
        if p.get("nodePort"):
            keys.add(_port_key(p.get("protocol", "TCP"), int(p["nodePort"])))
    if spec.get("healthCheckNodePort"):
        keys.add(_port_key("TCP", int(spec["healthCheckNodePort"])))
    return keys


class ServiceAllocator:
    def __init__(self, store: Store, config: ApiConfig) -> None:
        self.store = store
        self.config = config
        self.networks = config.service_networks
        self.rng = random.SystemRandom()

    @property
    def kubernetes_ip(self) -> str:
        return str(self.networks[0].network_address + 1)

    # --- public API -------------------------------------------------------------------------------

    async def allocate(self, svc: dict[str, Any], old: dict[str, Any] | None, owner: str) -> Allocation:
        """Fill in spec.clusterIP(s)/ipFamilies/ipFamilyPolicy/nodePorts of ``svc`` (mutated) and
        reserve what is new compared with ``old``. On error nothing stays reserved."""
        alloc = Allocation()
        try:
            await self._families_and_ips(svc, old, owner, alloc)
            await self._node_ports(svc, old, owner, alloc)
        except BaseException:
            await self.release_keys(alloc.keys)
            raise
        return alloc

    async def release_keys(self, keys: list[str] | set[str]) -> None:
        for k in keys:
            try:
                await self.store.delete(k)
            except KeyNotFound:
                pass

    async def release_unused(self, old: dict[str, Any], new: dict[str, Any] | None) -> None:
        keep = service_allocation_keys(new) if new is not None else set()
        await self.release_keys(service_allocation_keys(old) - keep)

    # --- cluster IPs ------------------------------------------------------------------------------

    async def _families_and_ips(self, svc: dict[str, Any], old: dict[str, Any] | None, owner: str,
                                alloc: Allocation) -> None:
        spec = svc.setdefault("spec", {})
        stype = spec.get("type") or "ClusterIP"
        if stype == "ExternalName":
            for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(f, None)
            return
        old_spec = (old or {}).get("spec") or {}
        if old is not None and old_spec.get("clusterIPs") and not spec.get("clusterIP") and not spec.get("clusterIPs"):
            # An update that leaves the addresses out keeps the allocated ones (PUT of a stale copy).
            spec["clusterIP"] = old_spec.get("clusterIP")
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
            spec.setdefault("ipFamilies", old_spec.get("ipFamilies"))
            spec.setdefault("ipFamilyPolicy", old_spec.get("ipFamilyPolicy"))
        requested: list[str] = list(spec.get("clusterIPs") or [])
        if spec.get("clusterIP") and not requested:
            requested = [spec["clusterIP"]]
        if spec.get("clusterIP") and requested and requested[0] != spec["clusterIP"]:
            raise AllocationError("spec.clusterIPs[0]", requested[0],
                                  "must be same as clusterIP")
        headless = requested[:1] == ["None"]
        policy = spec.get("ipFamilyPolicy") or "SingleStack"
        families = self._families(spec, policy, requested if not headless else [])
        spec["ipFamilyPolicy"] = policy
        spec["ipFamilies"] = families
        if headless:
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            return
        old_ips = [ip for ip in old_spec.get("clusterIPs") or [] if ip and ip != "None"]
        ips: list[str] = []
        for i, fam in enumerate(families):
            want = requested[i] if i < len(requested) and requested[i] else ""
            if want and want in old_ips:
                ips.append(want)
                continue
            if want:
                await self._reserve_ip(want, fam, owner, alloc, f"spec.clusterIPs[{i}]" if i else "spec.clusterIP")
                ips.append(want)
            else:
                ips.append(await self._allocate_ip(fam, owner, alloc))
        spec["clusterIP"] = ips[0]
        spec["clusterIPs"] = ips

    def _families(self, spec: dict[str, Any], policy: str, requested: list[str]) -> list[str]:
        configured = [_FAMILY[n.version] for n in self.networks]
        if policy not in ("SingleStack", "PreferDualStack", "RequireDualStack"):
            raise AllocationError("spec.ipFamilyPolicy", policy,
                                  f'Unsupported value: "{policy}": supported values: "PreferDualStack", '
                                  '"RequireDualStack", "SingleStack"', "FieldValueNotSupported")
        fams: list[str] = list(spec.get("ipFamilies") or [])
        for ip in requested:
            if ip and ip != "None":
                try:
                    fam = _FAMILY[ipaddress.ip_address(ip).version]
                except ValueError:
                    raise AllocationError("spec.clusterIPs", ip, "must be a valid IP address") from None
                if fam not in fams:
                    fams.append(fam)
        for f in fams:
            if f not in configured:
                raise AllocationError("spec.ipFamilies", f, f"{f} is not configured on this cluster")
        if not fams:
            fams = [configured[0]]
        if policy == "SingleStack":
            if len(fams) > 1:
                raise AllocationError("spec.ipFamilies", fams, "when spec.ipFamilyPolicy is SingleStack, "
                                      "only one ipFamily may be specified")
            return fams
        if policy == "RequireDualStack" and len(configured) < 2:
            raise AllocationError("spec.ipFamilyPolicy", policy,
                                  "this cluster is not configured for dual-stack services")
        for f in configured:
            if f not in fams:
                fams.append(f)
        return fams[:2]

    def _network(self, family: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        for n in self.networks:
            if _FAMILY[n.version] == family:
                return n
        raise AllocationError("spec.ipFamilies", family, f"{family} is not configured on this cluster")

    async def _reserve_ip(self, ip: str, family: str, owner: str, alloc: Allocation, fld: str) -> None:
        net = self._network(family)
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise AllocationError(fld, ip, "must be a valid IP address") from None
        if addr not in net or addr == net.network_address or (net.version == 4 and addr == net.broadcast_address):
            raise AllocationError(fld, ip, f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the "
                                  f"valid range. The range of valid IPs is {net}")
        try:
            await self.store.create(_ip_key(str(addr)), dumps({"owner": owner}))
        except KeyExists:
            raise AllocationError(fld, ip, f"failed to allocate IP {ip}: provided IP is already allocated") from None
        alloc.keys.append(_ip_key(str(addr)))

    async def _allocate_ip(self, family: str, owner: str, alloc: Allocation) -> str:
        net = self._network(family)
        size = net.num_addresses
        first, last = 1, size - (2 if net.version == 4 else 1)  # skip network and broadcast
        if last < first:
            raise AllocationError("spec.clusterIPs", "", f"service CIDR {net} is too small")
        # kube-apiserver keeps the lowest min(max(16, size/16), 256) addresses for static requests.
        band = min(max(16, size // 16), 256) + 1
        ranges = [(band, last), (first + 1, band - 1)] if band <= last else [(first + 1, last)]
        base = int(net.network_address)
        for lo, hi in ranges:
            if hi < lo:
                continue
            for _ in range(32):
                off = self.rng.randint(lo, hi)
                if await self._try_ip(str(ipaddress.ip_address(base + off)), owner, alloc):
                    return alloc.keys[-1].rsplit("/", 1)[1]
            _, taken_kvs = await self.store.list(f"{_PREFIX}clusterip/")
            taken = {kv.key.rsplit("/", 1)[1] for kv in taken_kvs}
            span = hi - lo + 1
            start = self.rng.randint(0, span - 1)
            for k in range(span):
                ip = str(ipaddress.ip_address(base + lo + (start + k) % span))
                if ip not in taken and await self._try_ip(ip, owner, alloc):
                    return ip
        raise AllocationError("spec.clusterIPs", "", f"failed to allocate a serviceIP: range {net} is full")

    async def _try_ip(self, ip: str, owner: str, alloc: Allocation) -> bool:
        try:
            await self.store.create(_ip_key(ip), dumps({"owner": owner}))
        except KeyExists:
            return False
        alloc.keys.append(_ip_key(ip))
        return True

    # --- node ports -------------------------------------------------------------------------------

    async def _node_ports(self, svc: dict[str, Any], old: dict[str, Any] | None, owner: str,
                          alloc: Allocation) -> None:
        spec = svc.setdefault("spec", {})
        stype = spec.get("type") or "ClusterIP"
        wants_ports = stype == "NodePort" or (stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True))
        old_keys = service_allocation_keys(old) if old is not None else set()
        ports = spec.get("ports") or []
        if stype not in ("NodePort", "LoadBalancer"):
            for p in ports:
                p.pop("nodePort", None)
        lo, hi = self.config.node_port_range
        for i, p in enumerate(ports):
            proto = p.get("protocol") or "TCP"
            want = p.get("nodePort")
            if not want and not wants_ports:
                continue
            if want:
                await self._reserve_port(int(want), proto, owner, alloc, old_keys, f"spec.ports[{i}].nodePort")
            else:
                p["nodePort"] = await self._allocate_port(proto, owner, alloc, old_keys, old, p)
        if stype == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
            want = spec.get("healthCheckNodePort")
            if want:
                await self._reserve_port(int(want), "TCP", owner, alloc, old_keys, "spec.healthCheckNodePort")
            else:
                spec["healthCheckNodePort"] = await self._allocate_port("TCP", owner, alloc, old_keys, None, None)
        else:
            spec.pop("healthCheckNodePort", None)

    async def _reserve_port(self, port: int, proto: str, owner: str, alloc: Allocation, old_keys: set[str],
                            fld: str) -> None:
        key = _port_key(proto, port)
        if key in old_keys or key in alloc.keys:
            return
        lo, hi = self.config.node_port_range
        if not lo <= port <= hi:
            raise AllocationError(fld, port, f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}")
        try:
            await self.store.create(key, dumps({"owner": owner}))
        except KeyExists:
            raise AllocationError(fld, port, "provided port is already allocated") from None
        alloc.keys.append(key)

    async def _allocate_port(self, proto: str, owner: str, alloc: Allocation, old_keys: set[str],
                             old: dict[str, Any] | None, port: dict[str, Any] | None) -> int:
        # An update that dropped a nodePort keeps the one the same port had before.
        if old is not None and port is not None:
            for op in ((old.get("spec") or {}).get("ports") or []):
                if op.get("port") == port.get("port") and (op.get("protocol") or "TCP") == proto and op.get("nodePort"):
                    if _port_key(proto, int(op["nodePort"])) in old_keys:
                        return int(op["nodePort"])
        lo, hi = self.config.node_port_range
        for _ in range(64):
            p = self.rng.randint(lo, hi)
            key = _port_key(proto, p)
            if key in old_keys:
                continue
            try:
                await self.store.create(key, dumps({"owner": owner}))
            except KeyExists:
                continue
            alloc.keys.append(key)
            return p
        _, kvs = await self.store.list(f"{_PREFIX}nodeport/{proto}/")
        taken = {int(kv.key.rsplit("/", 1)[1]) for kv in kvs}
        for p in range(lo, hi + 1):
            if p in taken:
                continue
            try:
                await self.store.create(_port_key(proto, p), dumps({"owner": owner}))
            except KeyExists:
                continue
            alloc.keys.append(_port_key(proto, p))
            return p
        raise AllocationError("spec.ports", "", f"failed to allocate a nodePort: range {lo}-{hi} is full")
