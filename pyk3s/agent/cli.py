"""``pyk3s agent``: run a node agent against an API server given by ``--kubeconfig`` (joining with
``--server``/``--token`` comes later)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from pyk3s.agent.cni.ipcmd import CniError
from pyk3s.agent.node import NodeError
from pyk3s.agent.run import AgentCerts, AgentSettings, run_agent

__all__ = ["main", "parser", "settings_from_args"]


def _env(*names: str, default: str = "") -> str:
    for n in names:
        if os.environ.get(n):
            return os.environ[n]
    return default


def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyk3s agent", description="Run a pyk3s node agent")
    p.add_argument("--kubeconfig", default=_env("KUBECONFIG"))
    p.add_argument("--data-dir", "-d", default=_env("K3S_DATA_DIR", "PYK3S_DATA_DIR", default="/var/lib/rancher/pyk3s"))
    p.add_argument("--node-name", default=_env("K3S_NODE_NAME", "PYK3S_NODE_NAME") or None)
    p.add_argument("--with-node-id", action="store_true")
    p.add_argument("--node-ip", "-i", action="append", default=[])
    p.add_argument("--node-external-ip", action="append", default=[])
    p.add_argument("--node-label", action="append", default=[])
    p.add_argument("--node-taint", action="append", default=[])
    p.add_argument("--cluster-cidr", action="append", default=[])
    p.add_argument("--service-cidr", action="append", default=[])
    p.add_argument("--cluster-dns", action="append", default=[])
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--resolv-conf", default=_env("K3S_RESOLV_CONF", "PYK3S_RESOLV_CONF"))
    p.add_argument("--bridge-name", default="pyk3s0")
    p.add_argument("--kubelet-port", type=int, default=10250)
    p.add_argument("--kubelet-cert", default="")
    p.add_argument("--kubelet-key", default="")
    p.add_argument("--client-ca", default="")
    p.add_argument("--flannel-backend", default="vxlan")
    p.add_argument("--disable-network-policy", action="store_true")
    p.add_argument("--debug", action="store_true")
    return p


def settings_from_args(a: argparse.Namespace) -> AgentSettings:
    return AgentSettings(
        data_dir=Path(a.data_dir), node_name=a.node_name, with_node_id=a.with_node_id,
        node_ips=_split(a.node_ip), node_external_ips=_split(a.node_external_ip),
        cluster_cidrs=_split(a.cluster_cidr) or ("10.42.0.0/16",),
        service_cidrs=_split(a.service_cidr) or ("10.43.0.0/16",),
        cluster_dns=_split(a.cluster_dns) or ("10.43.0.10",), cluster_domain=a.cluster_domain,
        resolv_conf=a.resolv_conf, bridge_name=a.bridge_name, kubelet_port=a.kubelet_port,
        node_labels=_split(a.node_label), node_taints=_split(a.node_taint), flannel_backend=a.flannel_backend,
        disable_network_policy=a.disable_network_policy)


def main(argv: list[str]) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pyk3s.client import Client

    async def go() -> None:
        client = Client.from_env(a.kubeconfig or None)
        try:
            await run_agent(settings_from_args(a), client,
                            AgentCerts(a.kubelet_cert, a.kubelet_key, a.client_ca, a.client_ca))
        finally:
            await client.close()

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        return 0
    except (NodeError, CniError) as exc:
        print(exc)
        return 1
    return 0
