"""Joining a node to a cluster, as K3s's agent does (`pyk3s agent --server https://<addr>:6443 --token <token>`).

1. ``GET <server>/cacerts`` without trusting anything yet; a ``K10<sha256>::…`` token must hash to
   that CA (a bare password skips the check, like K3s).
2. ``POST <server>/v1-pyk3s/node-credentials`` with the token as bearer, now verifying the server
   against that CA: a ``system:node:<name>`` client certificate, a kubelet serving certificate and
   the cluster settings (:mod:`pyk3s.api.join`). A wrong token or a taken node name stops here.
3. Files under ``<data-dir>/agent/``: ``tls/`` (certificates, both CAs) and ``kubelet.kubeconfig``,
   which points at the agent's load balancer on ``127.0.0.1:<--lb-server-port>``.
4. The load balancer (:mod:`pyk3s.agent.loadbalancer`): a local TCP proxy that sends each connection to the server in use,
   moving to the next one it knows when that server stops answering. It knows the ``--server`` list
   (comma-separated) plus every address of the ``kubernetes`` Endpoints, polled every 10 s.
5. ``run_agent``: node registration (same naming rules and node-password guard as the embedded
   agent), pods, service proxy, pod routes to the other nodes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from pyk3s.api.certs import write_kubeconfig, write_private
from pyk3s.client import Client
from pyk3s.k3s.network import ClusterNetwork
from pyk3s.k3s.paths import ensure_private_dir
from pyk3s.k3s.token import JoinToken, parse_token

from .config import NodeConfig
from .loadbalancer import ServerLoadBalancer
from .node import detect_node_ip, ensure_node_password, resolve_node_name
from .overlay.underlay import iface_addresses
from .run import AgentCerts, run_agent

__all__ = ["Credentials", "JoinError", "fetch_ca", "join", "parse_servers", "run_joined_agent"]

log = logging.getLogger("pyk3s.agent.join")
RETRY_SECONDS = 2.0
ENDPOINTS_POLL_SECONDS = 10.0


class JoinError(Exception):
    """Joining cannot succeed as configured; the message names the flag to fix."""


def parse_servers(value: str) -> list[tuple[str, int]]:
    """``https://a:6443,https://b:6443`` -> [(a, 6443), (b, 6443)]."""
    out: list[tuple[str, int]] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        u = urlsplit(part if "://" in part else f"https://{part}")
        if u.scheme != "https" or not u.hostname:
            raise JoinError(f"--server {part!r}: expected https://<address>:<port>")
        try:
            port = u.port or 6443
        except ValueError:
            raise JoinError(f"--server {part!r}: invalid port") from None
        out.append((u.hostname, port))
    if not out:
        raise JoinError("--server is required")
    return out


def _url(server: tuple[str, int], path: str) -> str:
    host, port = server
    return f"https://[{host}]:{port}{path}" if ":" in host else f"https://{host}:{port}{path}"


async def fetch_ca(session: aiohttp.ClientSession, server: tuple[str, int], token: JoinToken) -> bytes:
    """The server CA, checked against the token's hash (unverified TLS: the hash is the trust anchor)."""
    async with session.get(_url(server, "/cacerts"), ssl=False) as resp:
        if resp.status != 200:
            raise JoinError(f"server {_url(server, '')}: GET /cacerts answered HTTP {resp.status}; is --server a "
                            "pyk3s server?")
        ca = await resp.read()
    if not token.ca_matches(ca):
        raise JoinError(f"the CA served by {_url(server, '')} does not match the hash in --token: wrong server, "
                        "or a token from another cluster")
    return ca


@dataclass(frozen=True, slots=True)
class Credentials:
    ca_pem: bytes
    body: dict[str, Any]


async def request_credentials(server: tuple[str, int], token: str, name: str, password: str,
                              addresses: list[str]) -> Credentials:
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ca = await fetch_ca(session, server, parse_token(token))
        ctx = ssl.create_default_context(cadata=ca.decode())
        body = {"nodeName": name, "nodePassword": password, "addresses": addresses}
        async with session.post(_url(server, "/v1-pyk3s/node-credentials"), json=body, ssl=ctx,
                                headers={"Authorization": f"Bearer {token}"}) as resp:
            data = await resp.read()
    try:
        doc = json.loads(data)
    except ValueError:
        doc = {"message": data[:300].decode(errors="replace")}
    if resp.status != 200:
        raise JoinError(doc.get("message") or f"node-credentials: HTTP {resp.status}")
    return Credentials(ca, doc)


async def join(servers: list[tuple[str, int]], token: str, name: str, password: str,
               addresses: list[str]) -> tuple[tuple[str, int], Credentials]:
    """Credentials from the first server that answers; connection failures are retried forever."""
    attempt = 0
    while True:
        for server in servers:
            try:
                return server, await request_credentials(server, token, name, password, addresses)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if attempt % 5 == 0:
                    log.warning("agent: server %s not reachable yet (%s); retrying", _url(server, ""), exc)
        attempt += 1
        await asyncio.sleep(RETRY_SECONDS)


def write_credentials(agent_dir: Path, creds: Credentials, lb_url: str) -> dict[str, Path]:
    tls = ensure_private_dir(agent_dir / "tls")
    b = creds.body
    paths = {"client_cert": tls / "client-kubelet.crt", "client_key": tls / "client-kubelet.key",
             "serving_cert": tls / "kubelet.crt", "serving_key": tls / "kubelet.key",
             "server_ca": tls / "server-ca.crt", "client_ca": tls / "client-ca.crt",
             "kubeconfig": agent_dir / "kubelet.kubeconfig"}
    for key, field in (("client_cert", "clientCert"), ("client_key", "clientKey"), ("serving_cert", "servingCert"),
                       ("serving_key", "servingKey"), ("server_ca", "serverCA"), ("client_ca", "clientCA")):
        write_private(paths[key], b[field].encode())
    write_kubeconfig(paths["kubeconfig"], lb_url, creds.ca_pem, b["clientCert"].encode(), b["clientKey"].encode())
    return paths


async def learn_servers(client: Client, lb: ServerLoadBalancer) -> None:
    """Every API server address in the ``kubernetes`` Endpoints (each HA server adds its own)."""
    res = client.resource("v1", "endpoints")
    while True:
        try:
            ep = await res.get("kubernetes", "default")
            learned = [(a["ip"], int(p["port"])) for s in ep.get("subsets") or []
                       for a in s.get("addresses") or [] for p in s.get("ports") or [] if p.get("name") == "https"]
            lb.set_learned(learned)
        except Exception as exc:  # noqa: BLE001 - the next poll retries; the LB keeps what it knows
            log.debug("agent lb: reading the kubernetes endpoints failed: %s", exc)
        await asyncio.sleep(ENDPOINTS_POLL_SECONDS)


async def run_joined_agent(node: NodeConfig, servers: list[tuple[str, int]], token: str, lb_port: int) -> None:
    """Join through the first server that answers, then run the agent behind the local load balancer."""
    agent_dir = ensure_private_dir(node.agent_dir)
    ident = resolve_node_name(node.name or None, node.with_node_id, agent_dir)
    node_ips = list(node.ips) or await iface_addresses(node.flannel_iface) or [detect_node_ip()]
    password = ensure_node_password(agent_dir)
    server, creds = await join(servers, token, ident.name, password, [*node_ips, *node.external_ips])
    log.info("agent: joined through %s as node %s", _url(server, ""), ident.name)
    # an IPv6-only node reaches its load balancer on ::1, as K3s's agent does
    lb_host = "::1" if all(":" in ip for ip in node_ips) else "127.0.0.1"
    lb = ServerLoadBalancer([server, *(s for s in servers if s != server)], host=lb_host, port=lb_port)
    await lb.start()
    paths = write_credentials(agent_dir, creds, lb.url)
    cfg = creds.body.get("config") or {}
    network = ClusterNetwork.given(cfg.get("clusterCIDRs"), cfg.get("serviceCIDRs"), cfg.get("clusterDNS"),
                                   cfg.get("clusterDomain"), agent_config=cfg)
    # as in K3s, the server's --disable-network-policy applies to the agents that join it
    settings = replace(node, name=ident.name, with_node_id=False, ips=tuple(node_ips),
                       disable_network_policy=node.disable_network_policy or bool(cfg.get("disableNetworkPolicy"))
                       ).agent_settings(network, is_server=False)
    certs = AgentCerts(serving_cert=str(paths["serving_cert"]), serving_key=str(paths["serving_key"]),
                       client_ca=str(paths["client_ca"]), cluster_ca=str(paths["server_ca"]))
    client = Client.from_kubeconfig(paths["kubeconfig"])
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(lb.health(), name="lb health")
            tg.create_task(learn_servers(client, lb), name="lb servers")
            tg.create_task(run_agent(settings, client, certs), name="agent")
    finally:
        await client.close()
        await lb.stop()
