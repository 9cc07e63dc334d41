"""The agent a server runs for itself (unless `--disable-agent`): same code as `pyk3s agent`, but it
talks to the API in-process and takes its kubelet certificate straight from the cluster CA."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from pyk3s.client import Client

from .server_config import ConfigError, ServerConfig, ensure_private_dir

__all__ = ["agent_settings", "check_agent_config", "run_embedded_agent", "write_kubelet_certs"]


def check_agent_config(cfg: ServerConfig) -> None:
    """Refuse start-up before anything listens when the embedded agent could not register this node."""
    from pyk3s.agent.node import NodeError, resolve_node_name

    try:
        resolve_node_name(cfg.node_name or None, False, cfg.data_dir / "agent")
    except NodeError as exc:
        raise ConfigError(str(exc)) from None


def write_kubelet_certs(certs: Any, tls_dir: Path, sans: list[str]) -> dict[str, str]:
    """Kubelet serving cert (server CA), the client CA that may call the kubelet, the CA pods trust."""
    from pyk3s.api.certs import write_private

    ensure_private_dir(tls_dir)
    crt, key = certs.issue_serving_cert(sans)
    paths = {
        "serving_cert": tls_dir / "kubelet.crt",
        "serving_key": tls_dir / "kubelet.key",
        "client_ca": tls_dir / "client-ca.crt",
        "cluster_ca": tls_dir / "server-ca.crt",
    }
    write_private(paths["serving_cert"], crt)
    write_private(paths["serving_key"], key)
    write_private(paths["client_ca"], certs.client_ca_pem)
    write_private(paths["cluster_ca"], certs.server_ca_pem)
    return {k: str(v) for k, v in paths.items()}


def agent_settings(cfg: ServerConfig, *, is_server: bool = True) -> Any:
    from pyk3s.agent.run import AgentSettings

    return AgentSettings(
        data_dir=cfg.data_dir,
        node_name=cfg.node_name or None,
        with_node_id=cfg.with_node_id,
        node_ips=cfg.node_ips,
        node_external_ips=cfg.node_external_ips,
        cluster_cidrs=cfg.cluster_cidrs,
        service_cidrs=cfg.service_cidrs,
        cluster_dns=cfg.cluster_dns,
        cluster_domain=cfg.cluster_domain,
        resolv_conf=cfg.resolv_conf,
        bridge_name=cfg.bridge_name,
        is_server=is_server,
        kubelet_port=cfg.kubelet_port,
        node_labels=cfg.node_labels,
        node_taints=cfg.node_taints,
        disable_network_policy=cfg.disable_network_policy,
    )


async def run_embedded_agent(cfg: ServerConfig, client: Client, running: Any) -> None:
    from pyk3s.agent.run import AgentCerts, run_agent

    sans = ["127.0.0.1", "localhost", socket.gethostname(), *cfg.node_ips, *cfg.node_external_ips]
    if cfg.node_name:
        sans.append(cfg.node_name)
    paths = write_kubelet_certs(running.certs, cfg.data_dir / "agent" / "tls", sans)
    await run_agent(agent_settings(cfg), client, AgentCerts(**paths))
