"""Validated settings of `pyk3s server`, built from parsed flags. Errors name the flag to fix."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .flags import Parsed, default_data_dir, default_kubeconfig_path

__all__ = ["ConfigError", "ServerConfig", "cluster_dns_default", "parse_cidrs"]


class ConfigError(Exception):
    """A flag value that cannot work; the message names the flag."""


def parse_cidrs(value: str, flag: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in value.split(","):
        part = part.strip()
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(f"invalid {flag} {part}") from None
    if not out or len(out) > 2:
        raise ConfigError(f"invalid {flag} {value}: give one CIDR, or an IPv4,IPv6 pair for dual-stack")
    if len(out) == 2 and ipaddress.ip_network(out[0]).version == ipaddress.ip_network(out[1]).version:
        raise ConfigError(f"invalid {flag} {value}: a dual-stack pair needs one IPv4 and one IPv6 CIDR")
    return tuple(out)


def cluster_dns_default(service_cidrs: tuple[str, ...]) -> tuple[str, ...]:
    """The 10th address of each service CIDR, as K3s picks it."""
    return tuple(str(ipaddress.ip_network(c)[10]) for c in service_cidrs)


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
    cluster_cidrs: tuple[str, ...]
    service_cidrs: tuple[str, ...]
    node_port_range: tuple[int, int]
    cluster_dns: tuple[str, ...]
    cluster_domain: str
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
    # agent side
    server_url: str
    node_name: str
    with_node_id: bool
    node_ips: tuple[str, ...]
    node_external_ips: tuple[str, ...]
    node_labels: tuple[str, ...]
    node_taints: tuple[str, ...]
    resolv_conf: str
    bridge_name: str
    kubelet_port: int
    disable_network_policy: bool = False

    @property
    def server_dir(self) -> Path:
        return self.data_dir / "server"

    @property
    def manifests_dir(self) -> Path:
        return self.data_dir / "server" / "manifests"

    @property
    def servicelb_enabled(self) -> bool:
        return "servicelb" not in self.disable and not self.disable_cloud_controller

    @classmethod
    def from_flags(cls, f: Parsed) -> ServerConfig:
        data_dir = Path(f.data_dir or default_data_dir()).expanduser().absolute()
        cluster_cidrs = parse_cidrs(f.cluster_cidr, "cluster-cidr")
        service_cidrs = parse_cidrs(f.service_cidr, "service-cidr")
        for c in cluster_cidrs:
            for s in service_cidrs:
                a, b = ipaddress.ip_network(c), ipaddress.ip_network(s)
                if a.version == b.version and a.overlaps(b):
                    raise ConfigError(f"--cluster-cidr {c} overlaps --service-cidr {s}; pick disjoint ranges")
        try:
            lo_s, hi_s = f.service_node_port_range.split("-")
            port_range = (int(lo_s), int(hi_s))
            if not 0 < port_range[0] <= port_range[1] < 65536:
                raise ValueError
        except ValueError:
            raise ConfigError(f"invalid port range {f.service_node_port_range}") from None
        if f.cluster_dns:
            try:
                dns = tuple(str(ipaddress.ip_address(x.strip())) for x in f.cluster_dns.split(","))
            except ValueError:
                raise ConfigError(f"invalid cluster-dns {f.cluster_dns}") from None
            if not any(ipaddress.ip_address(dns[0]) in ipaddress.ip_network(s) for s in service_cidrs):
                raise ConfigError(f"--cluster-dns {dns[0]} is not inside --service-cidr {','.join(service_cidrs)}")
        else:
            dns = cluster_dns_default(service_cidrs)
        mode_s = f.write_kubeconfig_mode or "0600"
        try:
            mode = int(str(mode_s), 8)
        except ValueError:
            raise ConfigError(f"invalid --write-kubeconfig-mode {mode_s!r}: give an octal mode like 0644") from None
        token = f.token or ""
        if f.token_file:
            try:
                token = Path(f.token_file).read_text().strip()
            except OSError as err:
                raise ConfigError(f"--token-file {f.token_file}: {err.strerror}") from None
        disable = frozenset(x.strip() for x in (f.disable or []) if x.strip())
        node_ips = tuple(f.node_ip or ())
        external = tuple(f.node_external_ip or ())
        advertise = f.advertise_address or (external[0] if external else node_ips[0] if node_ips else "")
        https_port = int(f.https_listen_port)
        return cls(
            data_dir=data_dir,
            bind_address=f.bind_address,
            https_port=https_port,
            advertise_address=advertise,
            advertise_port=int(f.advertise_port or https_port),
            tls_sans=tuple(f.tls_san or ()),
            token=token,
            agent_token=f.agent_token or "",
            write_kubeconfig=f.write_kubeconfig or default_kubeconfig_path(),
            write_kubeconfig_mode=mode,
            cluster_cidrs=cluster_cidrs,
            service_cidrs=service_cidrs,
            node_port_range=port_range,
            cluster_dns=dns,
            cluster_domain=f.cluster_domain.strip(".") or "cluster.local",
            disable=disable,
            disable_agent=f.disable_agent,
            disable_scheduler=f.disable_scheduler,
            disable_kube_proxy=f.disable_kube_proxy,
            disable_cloud_controller=f.disable_cloud_controller,
            servicelb_namespace=f.servicelb_namespace,
            system_default_registry=f.system_default_registry or "",
            datastore_endpoint=f.datastore_endpoint or "",
            datastore_cafile=f.datastore_cafile or "",
            datastore_certfile=f.datastore_certfile or "",
            datastore_keyfile=f.datastore_keyfile or "",
            manifests_rescan_interval=int(f.manifests_rescan_interval),
            node_monitor_grace_period=int(f.node_monitor_grace_period),
            pod_eviction_timeout=int(f.pod_eviction_timeout),
            debug=f.debug,
            server_url=f.server or "",
            node_name=f.node_name or "",
            with_node_id=f.with_node_id,
            node_ips=node_ips,
            node_external_ips=external,
            node_labels=tuple(f.node_label or ()),
            node_taints=tuple(f.node_taint or ()),
            resolv_conf=f.resolv_conf or "",
            bridge_name=f.bridge_name,
            kubelet_port=int(f.kubelet_port),
            disable_network_policy=bool(f.disable_network_policy),
        )


def generate_password() -> str:
    return secrets.token_hex(16)


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
