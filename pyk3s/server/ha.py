"""What several servers on one shared datastore (``--datastore-endpoint``) must agree on.

* **Bootstrap data** (K3s keeps the same in its datastore): the cluster CAs and the service-account
  signing key, stored once by the first server under the raw key ``/bootstrap/pyk3s``, encrypted with
  a key derived from the join token's password (AES-GCM). A later server writes them into its own
  ``<data-dir>/server/tls`` before its certificates are made, so every server, agent and kubeconfig
  trusts the same CAs. A token that cannot decrypt them is refused naming ``--token``.
* **Critical configuration** (k3s.md 6.2.4): the first server records the values that must match
  on every server (cluster and service ranges, cluster DNS and domain, ServiceLB, the cloud controller,
  the flannel backend with its external-IP and IPv6-masquerade settings) in ConfigMap
  ``kube-system/pyk3s-critical-config``; a server started with a different value is refused with
  "critical configuration value mismatch", naming the flag.
* **API server endpoints**: each server holds Lease ``kube-system/pyk3s-apiserver-<id>`` and keeps
  its address in the ``kubernetes`` Endpoints while the others' Leases are fresh, so agents learn
  every server (their load balancer fails over between them).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pyk3s.api.certs import write_private
from pyk3s.api.store.base import KeyExists, Store
from pyk3s.client import AlreadyExists, ApiError, Client, Conflict, NotFound, TransportError
from pyk3s.client.leader import micro_time

from .config import ServerConfig, ServerConfigError

__all__ = ["BOOTSTRAP_KEY", "apiserver_lease_name", "check_critical_config", "critical_values", "lease_identity",
           "other_live_servers", "run_apiserver_endpoints",
           "server_identity", "shared_datastore", "sync_bootstrap_data"]

log = logging.getLogger("pyk3s.server.ha")
BOOTSTRAP_KEY = "/bootstrap/pyk3s"
BOOTSTRAP_FILES = ("server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key", "service.key")
CRITICAL_CONFIGMAP = "pyk3s-critical-config"
ENDPOINT_LEASE_SECONDS = 15
APISERVER_LABEL = "pyk3s.io/apiserver"  # on each server's apiserver Lease
ENDPOINT_RENEW_SECONDS = 5.0


def shared_datastore(endpoint: str) -> bool:
    return endpoint.split("://", 1)[0].lower() in ("postgres", "postgresql", "http", "https")


def server_identity(server_dir: Path) -> str:
    """A stable id of this server (kept in ``<server-dir>/server-id``): a restarted leader recognises its Lease."""
    path = server_dir / "server-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        ident = secrets.token_hex(4)
        path.write_text(ident + "\n")
        return ident


# -- bootstrap data --------------------------------------------------------------------------------------

def _key(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


def seal(files: dict[str, bytes], password: str) -> bytes:
    salt, nonce = os.urandom(16), os.urandom(12)
    plain = json.dumps({k: base64.b64encode(v).decode() for k, v in files.items()}).encode()
    sealed = AESGCM(_key(password, salt)).encrypt(nonce, plain, b"pyk3s-bootstrap")
    return json.dumps({"v": 1, "salt": base64.b64encode(salt).decode(), "nonce": base64.b64encode(nonce).decode(),
                       "data": base64.b64encode(sealed).decode()}).encode()


def unseal(blob: bytes, password: str) -> dict[str, bytes]:
    doc = json.loads(blob)
    try:
        plain = AESGCM(_key(password, base64.b64decode(doc["salt"]))).decrypt(
            base64.b64decode(doc["nonce"]), base64.b64decode(doc["data"]), b"pyk3s-bootstrap")
    except InvalidTag:
        raise ServerConfigError("--token does not match the token of the cluster in --datastore-endpoint (its bootstrap "
                          "data cannot be decrypted): start this server with the first server's token") from None
    return {k: base64.b64decode(v) for k, v in json.loads(plain).items()}


def _write_files(tls_dir: Path, files: dict[str, bytes]) -> None:
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, data in files.items():
        path = tls_dir / name
        if not path.exists() or path.read_bytes() != data:
            write_private(path, data)


async def sync_bootstrap_data(store: Store, tls_dir: Path, password: str) -> bool:
    """Write the cluster's CAs into ``tls_dir`` when the datastore has them; True if it had them."""
    _, kv = await store.get(BOOTSTRAP_KEY)
    if kv is None:
        return False
    _write_files(tls_dir, unseal(kv.value, password))
    log.info("bootstrap: using the cluster CAs from the datastore")
    return True


async def store_bootstrap_data(store: Store, tls_dir: Path, password: str) -> None:
    files = {n: (tls_dir / n).read_bytes() for n in BOOTSTRAP_FILES if (tls_dir / n).exists()}
    try:
        await store.create(BOOTSTRAP_KEY, seal(files, password))
        log.info("bootstrap: stored the cluster CAs in the datastore")
    except KeyExists:
        raise ServerConfigError("--datastore-endpoint: another server initialised this cluster at the same moment; "
                          "start this server again to join it") from None


# -- critical configuration ------------------------------------------------------------------------------

def critical_values(cfg: ServerConfig) -> dict[str, str]:
    """flag name -> value that must be the same on every server."""
    return {
        "cluster-cidr": ",".join(cfg.network.cluster_cidrs),
        "service-cidr": ",".join(cfg.network.service_cidrs),
        "cluster-dns": ",".join(cfg.network.cluster_dns),
        "cluster-domain": cfg.network.cluster_domain,
        # K3s's CriticalControlArgs hold only DisableServiceLB: the other --disable values (coredns,
        # traefik, ...) change per restart, which is how the guide uninstalls or customises them.
        "disable-servicelb": str("servicelb" in cfg.disable).lower(),
        "disable-cloud-controller": str(cfg.disable_cloud_controller).lower(),
        "disable-network-policy": str(cfg.node.disable_network_policy).lower(),
        "servicelb-namespace": cfg.servicelb_namespace,
        # pod traffic between nodes: every node gets these from the server it joins, so two servers
        # that disagree would build two incompatible overlays in one cluster (K3s lists them too)
        "flannel-backend": cfg.network.flannel_backend,
        "flannel-external-ip": str(cfg.network.flannel_external_ip).lower(),
        "flannel-ipv6-masq": str(cfg.network.flannel_ipv6_masq).lower(),
    }


async def check_critical_config(client: Client, cfg: ServerConfig) -> None:
    """Record this cluster's critical values; refuse a server that differs from the servers running.

    With a shared datastore the whole ``--disable`` set must match too, as long as another server is
    live (its apiserver Lease is fresh): a server joining a running cluster may not bring other
    components. When no other server is up, this one defines the values (so a whole cluster can be
    restarted with new flags). A datastore of its own means a single server: it just records them.
    """
    cms = client.resource("v1", "configmaps")
    mine = critical_values(cfg)
    try:
        cm = await cms.get(CRITICAL_CONFIGMAP, "kube-system")
    except NotFound:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": CRITICAL_CONFIGMAP, "namespace": "kube-system"},
                "data": {**mine, "disable": ",".join(sorted(cfg.disable))}}
        try:
            await cms.create(body, "kube-system")
            return
        except AlreadyExists:
            cm = await cms.get(CRITICAL_CONFIGMAP, "kube-system")
    theirs = cm.get("data") or {}
    if shared_datastore(cfg.datastore_endpoint):
        mine["disable"] = ",".join(sorted(cfg.disable))
        if await other_live_servers(client, cfg):
            for flag, value in mine.items():
                if flag in theirs and theirs[flag] != value:
                    shown = "disable (servicelb)" if flag == "disable-servicelb" else flag
                    raise ServerConfigError(
                        f"critical configuration value mismatch: --{shown} is {value!r} on this server but "
                        f"{theirs[flag]!r} on the servers running (ConfigMap kube-system/{CRITICAL_CONFIGMAP}); "
                        f"start every server with the same --{shown}")
    if any(theirs.get(k) != v for k, v in mine.items()):
        await cms.patch(CRITICAL_CONFIGMAP, {"data": mine}, "kube-system")


def lease_identity(cfg: ServerConfig) -> str:
    """This server's identity in Leases: node name (or hostname) and its stable server id."""
    return f"{cfg.node.name or socket.gethostname()}_{server_identity(cfg.server_dir)}"


def apiserver_lease_name(identity: str) -> str:
    return "pyk3s-apiserver-" + re.sub(r"[^a-z0-9.-]", "-", identity.lower()).strip("-.")[:200]


async def other_live_servers(client: Client, cfg: ServerConfig) -> list[str]:
    """Names of the fresh apiserver Leases of servers other than this one."""
    leases = client.resource("coordination.k8s.io/v1", "leases")
    own = apiserver_lease_name(lease_identity(cfg))
    items = (await leases.list("kube-system", label_selector=f"{APISERVER_LABEL}=true")).get("items") or []
    now = time.time()
    return [item["metadata"]["name"] for item in items if item["metadata"]["name"] != own and _fresh(item, now)]


# -- the kubernetes Endpoints across servers -------------------------------------------------------------

def _fresh(lease: dict[str, Any], now: float) -> bool:
    spec = lease.get("spec") or {}
    try:
        renewed = datetime.strptime(spec.get("renewTime", ""), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    # wall clocks of servers on one machine (or NTP-synced) agree well within a lease duration
    return now - renewed.timestamp() < float(spec.get("leaseDurationSeconds") or ENDPOINT_LEASE_SECONDS)


async def _sync_slice(client: Client, subset: dict[str, Any]) -> None:
    slices = client.resource("discovery.k8s.io/v1", "endpointslices")
    sl = await slices.get("kubernetes", "default")
    want = [{"addresses": [a["ip"]], "conditions": {"ready": True}} for a in subset["addresses"]]
    if sl.get("endpoints") != want or sl.get("ports") != subset["ports"]:
        sl["endpoints"], sl["ports"] = want, subset["ports"]
        await slices.update(sl)


async def run_apiserver_endpoints(client: Client, identity: str, address: str, port: int) -> None:
    """Keep this server's Lease fresh and the ``kubernetes`` Endpoints = the servers with fresh Leases."""
    leases = client.resource("coordination.k8s.io/v1", "leases")
    eps = client.resource("v1", "endpoints")
    name = apiserver_lease_name(identity)
    labels = {"k8s.io/component": "kube-apiserver", APISERVER_LABEL: "true"}
    while True:
        try:
            spec = {"holderIdentity": f"{address}:{port}", "leaseDurationSeconds": ENDPOINT_LEASE_SECONDS,
                    "renewTime": micro_time()}
            try:
                lease = await leases.get(name, "kube-system")
                lease["spec"] = {**(lease.get("spec") or {}), **spec}
                await leases.update(lease)
            except NotFound:
                await leases.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                     "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                                     "spec": spec}, "kube-system")
            live = (await leases.list("kube-system", label_selector=f"{APISERVER_LABEL}=true"))["items"]
            now = time.time()
            members = sorted({(lease["spec"]["holderIdentity"]) for lease in live if _fresh(lease, now)
                              and ":" in (lease.get("spec") or {}).get("holderIdentity", "")})
            by_port: dict[int, list[str]] = {}
            for m in members:
                host, _, p = m.rpartition(":")
                by_port.setdefault(int(p), []).append(host)
            subsets = [{"addresses": [{"ip": h} for h in sorted(hosts)],
                        "ports": [{"name": "https", "port": p, "protocol": "TCP"}]}
                       for p, hosts in sorted(by_port.items())]
            ep = await eps.get("kubernetes", "default")
            if subsets and ep.get("subsets") != subsets:
                ep["subsets"] = subsets
                await eps.update(ep)
            if len(by_port) == 1:
                await _sync_slice(client, subsets[0])
        except (ApiError, TransportError, Conflict, KeyError, ValueError) as exc:
            log.warning("apiserver endpoints: %s", exc)
        await asyncio.sleep(ENDPOINT_RENEW_SECONDS)
