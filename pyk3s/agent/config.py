"""What a node is told by its flags, shared by `pyk3s agent` and the agent a server embeds, and the one
place that turns it (plus the cluster network) into :class:`~pyk3s.agent.run.AgentSettings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyk3s.agent.cri.settings import RuntimeSettings, runtime_settings
from pyk3s.k3s.network import ClusterNetwork

from .overlay.config import OverlaySettings
from .run import AgentSettings

__all__ = ["NodeConfig"]


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data_dir: Path
    name: str = ""                      # --node-name; "" = K3S_NODE_NAME or the hostname, resolved at start
    with_node_id: bool = False
    ips: tuple[str, ...] = ()           # --node-ip; () = the default route's source address
    external_ips: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()        # key=value
    taints: tuple[str, ...] = ()        # key=value:Effect
    resolv_conf: str = ""
    bridge_name: str = "pyk3s0"
    kubelet_port: int = 10250
    flannel_iface: str = ""             # --flannel-iface; "" = the interface of --node-ip
    runtime: RuntimeSettings = RuntimeSettings()   # containerd beside the process runtime
    disable_network_policy: bool = False

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any], data_dir: Path) -> NodeConfig:
        """From parsed flag values (keys are flag names with ``_``: ``node_ip``, ``bridge_name``...);
        ValueError names a flag whose value is out of range."""
        return cls(
            data_dir=data_dir,
            name=flags.get("node_name") or "",
            with_node_id=bool(flags.get("with_node_id")),
            ips=tuple(flags.get("node_ip") or ()),
            external_ips=tuple(flags.get("node_external_ip") or ()),
            labels=tuple(flags.get("node_label") or ()),
            taints=tuple(flags.get("node_taint") or ()),
            resolv_conf=flags.get("resolv_conf") or "",
            bridge_name=flags["bridge_name"],
            kubelet_port=int(flags["kubelet_port"]),
            flannel_iface=flags.get("flannel_iface") or "",
            runtime=runtime_settings(flags),
            disable_network_policy=bool(flags.get("disable_network_policy")),
        )

    @property
    def agent_dir(self) -> Path:
        return self.data_dir / "agent"

    def agent_settings(self, network: ClusterNetwork, *, is_server: bool) -> AgentSettings:
        return AgentSettings(
            data_dir=self.data_dir,
            node_name=self.name or None,
            with_node_id=self.with_node_id,
            node_ips=self.ips,
            node_external_ips=self.external_ips,
            cluster_cidrs=network.cluster_cidrs,
            service_cidrs=network.service_cidrs,
            cluster_dns=network.cluster_dns,
            cluster_domain=network.cluster_domain,
            resolv_conf=self.resolv_conf,
            bridge_name=self.bridge_name,
            is_server=is_server,
            kubelet_port=self.kubelet_port,
            node_labels=self.labels,
            node_taints=self.taints,
            overlay=OverlaySettings(backend=network.flannel_backend, iface=self.flannel_iface,
                                    external_ip=network.flannel_external_ip, ipv6_masq=network.flannel_ipv6_masq),
            runtime=self.runtime,
            disable_network_policy=self.disable_network_policy,
        )
