"""Node identity, registration and heartbeats (k3s.md 6.5, 6.6).

- Name: ``--node-name`` / ``K3S_NODE_NAME`` / ``PYK3S_NODE_NAME`` / hostname, lower-cased; ``--with-node-id``
  appends ``-<8 hex>`` kept in ``<data-dir>/agent/node-id``.
- Duplicate-name guard (:mod:`pyk3s.k3s.node`): a random password in ``<data-dir>/agent/node-password``;
  its scrypt hash in Secret ``kube-system/<node>.node-password.pyk3s`` owned by the Node.
- Registration allocates ``spec.podCIDR``: the lowest /24 of the cluster CIDR no other Node uses,
  retried on create/update conflicts.
- Heartbeats: Lease ``kube-node-lease/<node>`` every 10 s; node status every 60 s or on change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import secrets
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyk3s.client import AlreadyExists, Conflict, NotFound
from pyk3s.k3s.names import (
    CONTROL_PLANE_ROLE_LABEL,
    EXTERNAL_IP_ANNOTATION,
    HOSTNAME_ANNOTATION,
    HOSTNAME_LABEL,
    INTERNAL_IP_ANNOTATION,
    MASTER_ROLE_LABEL,
)
from pyk3s.k3s.node import (
    PASSWORD_FILE,
    PASSWORD_SECRET_NAMESPACE,
    is_valid_node_name,
    password_rejected,
    password_secret,
    password_secret_name,
    stored_password_hash,
    verify_password,
)
from pyk3s.k3s.version import PYK3S_VERSION, RELEASE

__all__ = ["KUBELET_VERSION", "NodeError", "NodeIdentity", "build_node", "detect_node_ip",
           "ensure_node_password", "node_labels", "resolve_node_name", "shows_ready", "NodeAgent"]

log = logging.getLogger("pyk3s.agent.node")
KUBELET_VERSION = RELEASE
RUNTIME_VERSION = f"pyk3s://{PYK3S_VERSION}"


class NodeError(RuntimeError):
    pass


class NodeIdentity:
    __slots__ = ("name", "warnings")

    def __init__(self, name: str, warnings: list[str]) -> None:
        self.name, self.warnings = name, warnings


def resolve_node_name(flag: str | None, with_node_id: bool, agent_dir: Path,
                      env: Mapping[str, str] | None = None, hostname: str | None = None) -> NodeIdentity:
    env = os.environ if env is None else env
    name = (flag or env.get("K3S_NODE_NAME") or env.get("PYK3S_NODE_NAME") or hostname or socket.gethostname()).lower()
    warnings = []
    if with_node_id:
        id_file = agent_dir / "node-id"
        try:
            node_id = id_file.read_text().strip()
        except FileNotFoundError:
            node_id = secrets.token_hex(4)
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(node_id + "\n")
        name = f"{name}-{node_id}"
    if not is_valid_node_name(name):
        raise NodeError(f"agent: invalid node name {name!r}: must be a lower-case RFC 1123 subdomain; "
                        "set a valid one with --node-name")
    if name == "localhost":
        warnings.append("agent: node name is 'localhost', which causes problems with DNS resolution and "
                        "collides with other such machines; set a unique name with --node-name")
    return NodeIdentity(name, warnings)


def ensure_node_password(agent_dir: Path) -> str:
    path = agent_dir / PASSWORD_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pw = secrets.token_hex(16)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pw + "\n")
        os.chmod(path, 0o600)
        return pw


def detect_node_ip() -> str:
    """The source address of the default route (no packet is sent)."""
    routes = Path("/proc/net/route").read_text().splitlines()[1:]
    for r in routes:
        f = r.split()
        if len(f) > 2 and f[1] == "00000000":
            dev = f[0]
            import fcntl
            import struct

            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                res = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", dev.encode()[:15]))
                return socket.inet_ntoa(res[20:24])
    return "127.0.0.1"


def node_labels(name: str, is_server: bool, extra: Sequence[str] = ()) -> dict[str, str]:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(platform.machine(), platform.machine())
    labels = {HOSTNAME_LABEL: name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
              "node.kubernetes.io/instance-type": "k3s", "beta.kubernetes.io/instance-type": "k3s"}
    if is_server:
        labels[CONTROL_PLANE_ROLE_LABEL] = "true"
        labels[MASTER_ROLE_LABEL] = "true"
    for item in extra:
        k, _, v = item.partition("=")
        labels[k] = v
    return labels


def _meminfo_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


def node_status(internal: Sequence[str], external: Sequence[str], hostname: str, kubelet_port: int,
                prev: dict | None = None) -> dict:
    now = _now()
    mem = f"{_meminfo_kib()}Ki"
    cpu = str(os.cpu_count() or 1)
    addresses = [{"type": "InternalIP", "address": a} for a in internal]
    addresses += [{"type": "ExternalIP", "address": a} for a in external]
    addresses.append({"type": "Hostname", "address": hostname})
    prev_conds = {c["type"]: c for c in ((prev or {}).get("conditions") or [])}

    def cond(ctype: str, status: str, reason: str, message: str) -> dict:
        old = prev_conds.get(ctype)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now
        return {"type": ctype, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": since}

    uname = os.uname()
    return {
        "capacity": {"cpu": cpu, "memory": mem, "pods": "110", "ephemeral-storage": "10Gi"},
        "allocatable": {"cpu": cpu, "memory": mem, "pods": "110", "ephemeral-storage": "10Gi"},
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": addresses,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {"machineID": _machine_id(), "systemUUID": _machine_id(), "bootID": _boot_id(),
                     "kernelVersion": uname.release, "osImage": _os_image(), "containerRuntimeVersion": RUNTIME_VERSION,
                     "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                     "operatingSystem": "linux", "architecture": node_labels("x", False)["kubernetes.io/arch"]},
    }


def _machine_id() -> str:
    try:
        return Path("/etc/machine-id").read_text().strip()
    except OSError:
        return ""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def build_node(name: str, *, pod_cidr: str | None, internal: Sequence[str], external: Sequence[str], hostname: str,
               labels: dict[str, str], taints: Sequence[dict], kubelet_port: int) -> dict:
    ann = {INTERNAL_IP_ANNOTATION: ",".join(internal), HOSTNAME_ANNOTATION: hostname,
           "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    if external:
        ann[EXTERNAL_IP_ANNOTATION] = ",".join(external)
    spec: dict[str, Any] = {"providerID": f"k3s://{name}"}
    if pod_cidr:
        spec.update(podCIDR=pod_cidr, podCIDRs=[pod_cidr])
    if taints:
        spec["taints"] = list(taints)
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": ann},
            "spec": spec, "status": node_status(internal, external, hostname, kubelet_port)}


def shows_ready(node: dict) -> bool:
    """Whether the API's copy of a Node says Ready=True (what the agent posts while it runs)."""
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


class NodeAgent:
    """Registers the Node and keeps its Lease and status fresh."""

    def __init__(self, client: Any, name: str, *, agent_dir: Path, cluster_cidr: str, internal: Sequence[str],
                 external: Sequence[str], labels: dict[str, str], taints: Sequence[dict], kubelet_port: int) -> None:
        self.client, self.name, self.agent_dir = client, name, agent_dir
        self.cluster_cidr, self.internal, self.external = cluster_cidr, list(internal), list(external)
        self.labels, self.taints, self.kubelet_port = labels, list(taints), kubelet_port
        self.hostname = socket.gethostname().lower()
        self.nodes = client.resource("v1", "nodes")
        self.node: dict | None = None

    async def _check_password(self) -> None:
        password = ensure_node_password(self.agent_dir)
        secrets_res = self.client.resource("v1", "secrets")
        try:
            sec = await secrets_res.get(password_secret_name(self.name), PASSWORD_SECRET_NAMESPACE)
        except NotFound:
            return
        if not verify_password(password, stored_password_hash(sec)):
            raise NodeError(password_rejected(self.agent_dir / PASSWORD_FILE))

    async def _store_password(self, node: dict) -> None:
        password = ensure_node_password(self.agent_dir)
        secret = password_secret(self.name, node["metadata"]["uid"], password)
        try:
            await self.client.resource("v1", "secrets").create(secret, PASSWORD_SECRET_NAMESPACE)
        except AlreadyExists:
            pass

    async def register(self) -> dict:
        """Create or update this Node, then wait for its pod CIDR.

        The range is handed out by the server's nodeipam controller (one allocator, so two agents
        registering at once never share a range); an existing Node keeps the one it has.
        """
        await self._check_password()
        for _ in range(10):
            existing = await self.nodes.get_or_none(self.name)
            want = build_node(self.name, pod_cidr=None, internal=self.internal, external=self.external,
                              hostname=self.hostname, labels=self.labels, taints=self.taints,
                              kubelet_port=self.kubelet_port)
            try:
                if existing is None:
                    node = await self.nodes.create(want)
                else:
                    merged = dict(existing)
                    merged["metadata"] = {**existing["metadata"],
                                          "labels": {**(existing["metadata"].get("labels") or {}), **self.labels},
                                          "annotations": {**(existing["metadata"].get("annotations") or {}),
                                                          **want["metadata"]["annotations"]}}
                    merged["spec"] = {**(existing.get("spec") or {}),
                                      "providerID": (existing.get("spec") or {}).get("providerID") or f"k3s://{self.name}"}
                    node = await self.nodes.update(merged)
            except (Conflict, AlreadyExists):
                await asyncio.sleep(0.2)
                continue
            node = await self._put_status(node)
            await self._store_password(node)
            node = await self._wait_for_pod_cidr(node)
            self.node = node
            log.info("agent: registered node %s with podCIDR %s", self.name, node["spec"]["podCIDR"])
            return node
        raise NodeError(f"agent: could not register node {self.name}: repeated conflicts")

    async def _wait_for_pod_cidr(self, node: dict, timeout: float = 120.0) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        warned = False
        while not (node.get("spec") or {}).get("podCIDR"):
            if asyncio.get_running_loop().time() > deadline:
                raise NodeError(f"agent: node {self.name} got no podCIDR in {timeout:.0f}s; the server's nodeipam "
                                "controller assigns it (is a pyk3s server running its controllers?)")
            if not warned:
                log.info("agent: waiting for the server to assign node %s a podCIDR", self.name)
                warned = True
            await asyncio.sleep(0.25)
            node = await self.nodes.get(self.name)
        return node

    async def _put_status(self, node: dict) -> dict:
        status = node_status(self.internal, self.external, self.hostname, self.kubelet_port, node.get("status"))
        return await self.nodes.patch(self.name, {"status": status}, patch_type="merge", subresource="status")

    async def renew_lease(self) -> None:
        leases = self.client.resource("coordination.k8s.io/v1", "leases")
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": _micro_now()}
        try:
            lease = await leases.get(self.name, "kube-node-lease")
            lease["spec"] = {**(lease.get("spec") or {}), **spec}
            await leases.update(lease)
        except NotFound:
            owner = [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                      "uid": (self.node or {}).get("metadata", {}).get("uid", "")}]
            await leases.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                 "metadata": {"name": self.name, "namespace": "kube-node-lease",
                                              "ownerReferences": owner}, "spec": spec}, "kube-node-lease")

    async def heartbeat(self, lease_every: float = 10.0, status_every: float = 60.0) -> None:
        """Renew the Lease every ``lease_every`` seconds and post the status every ``status_every``, or on
        the next beat when the API shows the node not Ready: the server's node-lifecycle controller marks
        a node Unknown when it missed a heartbeat (a slow renewal, an API outage), and like the kubelet,
        which compares the API's Node with its own view on every status beat, the agent puts Ready back
        at once instead of leaving the node NotReady, tainted and without new pods until the next
        full status."""
        loop = asyncio.get_running_loop()
        next_status = loop.time() + status_every
        while True:
            try:
                await self.renew_lease()
                try:
                    node = await self.nodes.get(self.name)
                except NotFound:
                    await self.register()
                    next_status = loop.time() + status_every
                else:
                    if loop.time() >= next_status or not shows_ready(node):
                        self.node = await self._put_status(node)
                        next_status = loop.time() + status_every
            except (NodeError, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - heartbeats keep going through API hiccups
                log.warning("agent: heartbeat of node %s failed: %s", self.name, exc)
            await asyncio.sleep(lease_every)
