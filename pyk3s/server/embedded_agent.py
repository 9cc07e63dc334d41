"""The agent a server runs for itself (unless `--disable-agent`): same code as `pyk3s agent`, but it
talks to the API in-process and takes its kubelet certificate straight from the cluster CA."""

from __future__ import annotations

import socket
from pathlib import Path

from pyk3s.agent.node import NodeError, resolve_node_name
from pyk3s.agent.run import AgentCerts, run_agent
from pyk3s.api.certs import ClusterCerts, write_private
from pyk3s.api.server import RunningApi
from pyk3s.client import Client
from pyk3s.k3s.paths import ensure_private_dir

from .config import ServerConfig, ServerConfigError

__all__ = ["check_agent_config", "run_embedded_agent", "write_kubelet_certs"]


def check_agent_config(cfg: ServerConfig) -> None:
    """Refuse start-up before anything listens when the embedded agent could not register this node."""
    try:
        resolve_node_name(cfg.node.name or None, False, cfg.node.agent_dir)
    except NodeError as exc:
        raise ServerConfigError(str(exc)) from None


def write_kubelet_certs(certs: ClusterCerts, tls_dir: Path, sans: list[str]) -> AgentCerts:
    """Kubelet serving cert (server CA), the client CA that may call the kubelet, the CA pods trust."""
    ensure_private_dir(tls_dir)
    crt, key = certs.issue_serving_cert(sans)
    out = AgentCerts(serving_cert=str(tls_dir / "kubelet.crt"), serving_key=str(tls_dir / "kubelet.key"),
                     client_ca=str(tls_dir / "client-ca.crt"), cluster_ca=str(tls_dir / "server-ca.crt"))
    write_private(Path(out.serving_cert), crt)
    write_private(Path(out.serving_key), key)
    write_private(Path(out.client_ca), certs.client_ca_pem)
    write_private(Path(out.cluster_ca), certs.server_ca_pem)
    return out


async def run_embedded_agent(cfg: ServerConfig, client: Client, running: RunningApi) -> None:
    node = cfg.node
    sans = ["127.0.0.1", "localhost", socket.gethostname(), *node.ips, *node.external_ips]
    if node.name:
        sans.append(node.name)
    certs = write_kubelet_certs(running.certs, node.agent_dir / "tls", sans)
    await run_agent(cfg.agent_settings(), client, certs)
