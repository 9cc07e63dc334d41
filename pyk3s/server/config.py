"""Validated settings of `pyk3s server`, built from parsed flag values, and the settings of each part a
server starts, made here so that no field is copied by hand anywhere else. Errors name the flag to fix."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyk3s.agent.checkconfig import CheckSettings
from pyk3s.agent.config import NodeConfig
from pyk3s.agent.run import AgentSettings
from pyk3s.api.server import ServerApiSettings
from pyk3s.controllers.common.settings import (
    KLIPPER_LB_IMAGE,
    ControllerSettings,
    DeploySettings,
    ServiceLBSettings,
)
from pyk3s.k3s.network import (
    DEFAULT_CLUSTER_DOMAIN,
    DEFAULT_FLANNEL_BACKEND,
    FLANNEL_BACKENDS,
    ClusterNetwork,
)
from pyk3s.k3s.paths import default_data_dir, default_kubeconfig_path
from pyk3s.k3s.token import read_token_flags
from pyk3s.manifests.stage import StageSettings

__all__ = ["ServerConfig", "ServerConfigError", "cluster_dns_default", "parse_cidrs"]


class ServerConfigError(Exception):
    """A flag value that cannot work, or a cluster this server cannot join as configured; the message
    names the flag."""


def parse_cidrs(value: str, flag: str) -> tuple[str, ...]:
    """One CIDR, or an IPv4,IPv6 pair for dual-stack, as given to ``--<flag>``."""
    out: list[str] = []
    for part in value.split(","):
        part = part.strip()
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ServerConfigError(f"invalid {flag} {part}") from None
    if not out or len(out) > 2:
        raise ServerConfigError(f"invalid {flag} {value}: give one CIDR, or an IPv4,IPv6 pair for dual-stack")
    if len(out) == 2 and ipaddress.ip_network(out[0]).version == ipaddress.ip_network(out[1]).version:
        raise ServerConfigError(f"invalid {flag} {value}: a dual-stack pair needs one IPv4 and one IPv6 CIDR")
    return tuple(out)


def cluster_dns_default(service_cidrs: tuple[str, ...]) -> tuple[str, ...]:
    """The 10th address of each service CIDR, as K3s picks it."""
    return tuple(str(ipaddress.ip_network(c)[10]) for c in service_cidrs)


def _network(flags: Mapping[str, Any]) -> ClusterNetwork:
    cluster_cidrs = parse_cidrs(flags["cluster_cidr"], "cluster-cidr")
    service_cidrs = parse_cidrs(flags["service_cidr"], "service-cidr")
    for c in cluster_cidrs:
        for s in service_cidrs:
            a, b = ipaddress.ip_network(c), ipaddress.ip_network(s)
            if a.version == b.version and a.overlaps(b):
                raise ServerConfigError(f"--cluster-cidr {c} overlaps --service-cidr {s}; pick disjoint ranges")
    given_dns = flags.get("cluster_dns") or ""
    if given_dns:
        try:
            dns = tuple(str(ipaddress.ip_address(x.strip())) for x in given_dns.split(","))
        except ValueError:
            raise ServerConfigError(f"invalid cluster-dns {given_dns}") from None
        if not any(ipaddress.ip_address(dns[0]) in ipaddress.ip_network(s) for s in service_cidrs):
            raise ServerConfigError(
                f"--cluster-dns {dns[0]} is not inside --service-cidr {','.join(service_cidrs)}")
    else:
        dns = cluster_dns_default(service_cidrs)
    backend = flags.get("flannel_backend") or DEFAULT_FLANNEL_BACKEND
    if backend not in FLANNEL_BACKENDS:
        raise ServerConfigError(f"--flannel-backend {backend!r}: supported values: {', '.join(FLANNEL_BACKENDS)} "
                                "(wireguard-native and tailscale are not available in pyk3s)")
    return ClusterNetwork(cluster_cidrs=cluster_cidrs, service_cidrs=service_cidrs, cluster_dns=dns,
                          cluster_domain=flags["cluster_domain"].strip(".") or DEFAULT_CLUSTER_DOMAIN,
                          flannel_backend=backend, flannel_external_ip=bool(flags.get("flannel_external_ip")),
                          flannel_ipv6_masq=bool(flags.get("flannel_ipv6_masq")))


def _port_range(value: str) -> tuple[int, int]:
    try:
        lo_s, hi_s = value.split("-")
        port_range = (int(lo_s), int(hi_s))
    except ValueError:
        raise ServerConfigError(f"invalid port range {value}") from None
    if not 0 < port_range[0] <= port_range[1] < 65536:
        raise ServerConfigError(f"invalid port range {value}")
    return port_range


@dataclass(frozen=True, slots=True)
class ServerConfig:
    data_dir: Path
    bind_address: str
    https_port: int
    advertise_address: str
    advertise_port: int
    tls_sans: tuple[str, ...]
    token: str
    agent_token: str
    write_kubeconfig: str
    write_kubeconfig_mode: int
    network: ClusterNetwork
    node_port_range: tuple[int, int]
    disable: frozenset[str]
    disable_agent: bool
    disable_scheduler: bool
    disable_kube_proxy: bool
    disable_cloud_controller: bool
    servicelb_namespace: str
    system_default_registry: str
    datastore_endpoint: str
    datastore_cafile: str
    datastore_certfile: str
    datastore_keyfile: str
    manifests_rescan_interval: int
    node_monitor_grace_period: int
    pod_eviction_timeout: int
    debug: bool
    server_url: str
    node: NodeConfig  # the embedded agent's node

    @property
    def server_dir(self) -> Path:
        return self.data_dir / "server"

    @property
    def manifests_dir(self) -> Path:
        return self.server_dir / "manifests"

    @property
    def servicelb_enabled(self) -> bool:
        return "servicelb" not in self.disable and not self.disable_cloud_controller

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> ServerConfig:
        """From parsed flag values (keys are flag names with ``_``), defaults and environment applied."""
        data_dir = Path(flags.get("data_dir") or default_data_dir()).expanduser().absolute()
        network = _network(flags)
        mode_s = flags.get("write_kubeconfig_mode") or "0600"
        try:
            mode = int(str(mode_s), 8)
        except ValueError:
            raise ServerConfigError(f"invalid --write-kubeconfig-mode {mode_s!r}: give an octal mode like 0644") from None
        try:
            token = read_token_flags(flags.get("token") or "", flags.get("token_file") or "")
        except ValueError as err:
            raise ServerConfigError(str(err)) from None
        try:
            node = NodeConfig.from_flags(flags, data_dir)
        except ValueError as err:
            raise ServerConfigError(str(err)) from None
        advertise = flags.get("advertise_address") or (node.external_ips[0] if node.external_ips
                                                       else node.ips[0] if node.ips else "")
        https_port = int(flags["https_listen_port"])
        return cls(
            data_dir=data_dir,
            bind_address=flags["bind_address"],
            https_port=https_port,
            advertise_address=advertise,
            advertise_port=int(flags.get("advertise_port") or https_port),
            tls_sans=tuple(flags.get("tls_san") or ()),
            token=token,
            agent_token=flags.get("agent_token") or "",
            write_kubeconfig=flags.get("write_kubeconfig") or default_kubeconfig_path(),
            write_kubeconfig_mode=mode,
            network=network,
            node_port_range=_port_range(flags["service_node_port_range"]),
            disable=frozenset(x.strip() for x in (flags.get("disable") or []) if x.strip()),
            disable_agent=bool(flags.get("disable_agent")),
            disable_scheduler=bool(flags.get("disable_scheduler")),
            disable_kube_proxy=bool(flags.get("disable_kube_proxy")),
            disable_cloud_controller=bool(flags.get("disable_cloud_controller")),
            servicelb_namespace=flags["servicelb_namespace"],
            system_default_registry=flags.get("system_default_registry") or "",
            datastore_endpoint=flags.get("datastore_endpoint") or "",
            datastore_cafile=flags.get("datastore_cafile") or "",
            datastore_certfile=flags.get("datastore_certfile") or "",
            datastore_keyfile=flags.get("datastore_keyfile") or "",
            manifests_rescan_interval=int(flags["manifests_rescan_interval"]),
            node_monitor_grace_period=int(flags["node_monitor_grace_period"]),
            pod_eviction_timeout=int(flags["pod_eviction_timeout"]),
            debug=bool(flags.get("debug")),
            server_url=flags.get("server") or "",
            node=node,
        )

    # -- the settings of each part ---------------------------------------------------------------------

    def api_settings(self) -> ServerApiSettings:
        return ServerApiSettings(
            data_dir=self.data_dir,
            bind_address=self.bind_address,
            https_port=self.https_port,
            advertise_address=self.advertise_address or "127.0.0.1",
            advertise_port=self.advertise_port,
            tls_sans=self.tls_sans,
            token=self.token,
            node_name=self.node.name,
            service_cidrs=self.network.service_cidrs,
            cluster_cidrs=self.network.cluster_cidrs,
            node_port_range=self.node_port_range,
            cluster_domain=self.network.cluster_domain,
            cluster_dns=self.network.cluster_dns[0],
            # what joining agents are told: the flannel settings, and whether policies are enforced (as in K3s)
            agent_config={**self.network.agent_config(), "disableNetworkPolicy": self.node.disable_network_policy},
        )

    def stage_settings(self) -> StageSettings:
        return StageSettings(
            server_dir=self.server_dir,
            cluster_dns=self.network.cluster_dns,
            cluster_domain=self.network.cluster_domain,
            system_default_registry=self.system_default_registry,
            disable=self.disable,
            data_dir=self.data_dir,
            flannel_external_ip=self.network.flannel_external_ip,
        )

    def deploy_settings(self) -> DeploySettings:
        return DeploySettings(
            manifests_dir=self.manifests_dir,
            server_dir=self.server_dir,
            disable=self.disable,
            rescan_interval=float(self.manifests_rescan_interval),
        )

    def servicelb_settings(self) -> ServiceLBSettings:
        registry = self.system_default_registry.rstrip("/")
        return ServiceLBSettings(namespace=self.servicelb_namespace,
                                 image=f"{registry}/{KLIPPER_LB_IMAGE}" if registry else KLIPPER_LB_IMAGE)

    def controller_settings(self) -> ControllerSettings:
        return ControllerSettings(
            node_monitor_grace_period=float(self.node_monitor_grace_period),
            cluster_cidrs=self.network.cluster_cidrs,
            toleration_seconds_cap=float(self.pod_eviction_timeout),
            deploy=self.deploy_settings(),
            servicelb=self.servicelb_settings(),
        )

    def agent_settings(self) -> AgentSettings:
        return self.node.agent_settings(self.network, is_server=True)

    def check_settings(self) -> CheckSettings:
        """What `pyk3s check-config` and the start-up checks look at for this server."""
        return CheckSettings(
            data_dir=self.data_dir,
            server=True,
            agent=not self.disable_agent,
            bind_address=self.bind_address,
            https_port=self.https_port,
            kubelet_port=self.node.kubelet_port,
            ingress="traefik" not in self.disable,
            cluster_cidrs=self.network.cluster_cidrs,
            service_cidrs=self.network.service_cidrs,
            bridge_name=self.node.bridge_name,
            flannel_backend=self.network.flannel_backend,
            container_runtime=self.node.runtime.mode,
            runtime_endpoint=self.node.runtime.endpoint,
        )
