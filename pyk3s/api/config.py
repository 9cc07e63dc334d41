"""Settings of the API core (:class:`pyk3s.api.app.ApiServer`).

The defaults are the K3s cluster facts: services in 10.43.0.0/16 (the ``kubernetes`` Service takes
the first address), pods in 10.42.0.0/16, NodePorts 30000-32767, domain ``cluster.local``. ``/version``
must report minor "32" so that the kubectl dispatcher runs kubectl 1.32 (spec 0.2).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

__all__ = ["ApiConfig", "VersionInfo"]


@dataclass(frozen=True, slots=True)
class VersionInfo:
    major: str = "1"
    minor: str = "32"
    git_version: str = "v1.32.4+pyk3s1"
    git_commit: str = "0000000000000000000000000000000000000000"
    git_tree_state: str = "clean"
    build_date: str = "2025-04-22T00:00:00Z"
    go_version: str = "go1.23.6"
    compiler: str = "gc"
    platform: str = "linux/amd64"

    def as_dict(self) -> dict[str, str]:
        return {
            "major": self.major,
            "minor": self.minor,
            "gitVersion": self.git_version,
            "gitCommit": self.git_commit,
            "gitTreeState": self.git_tree_state,
            "buildDate": self.build_date,
            "goVersion": self.go_version,
            "compiler": self.compiler,
            "platform": self.platform,
        }


@dataclass(frozen=True, slots=True)
class ApiConfig:
    service_cidrs: tuple[str, ...] = ("10.43.0.0/16",)
    cluster_cidrs: tuple[str, ...] = ("10.42.0.0/16",)
    node_port_range: tuple[int, int] = (30000, 32767)
    cluster_domain: str = "cluster.local"
    # Where clients reach this API server; published in the `kubernetes` Endpoints/EndpointSlice.
    advertise_address: str = "127.0.0.1"
    advertise_port: int = 6443
    version: VersionInfo = field(default_factory=VersionInfo)
    # Watch timing: bookmarks every N seconds (when asked for); a watch without timeoutSeconds ends
    # after a random time in [min, 2*min) like kube-apiserver's --min-request-timeout.
    bookmark_interval: float = 60.0
    min_request_timeout: float = 1800.0
    # A watcher that falls this many events behind is closed (the client re-watches).
    watch_queue_limit: int = 20000
    # Events kept per watched resource so new watchers can resume from a recent resourceVersion without
    # reading the store: those of the last watch_history_seconds, at most watch_history of them.
    watch_history: int = 5000
    watch_history_seconds: float = 120.0
    # Names of namespaces that exist from the start and may not be deleted (spec 6.8).
    system_namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease")
    # Bootstrap the `kubernetes` Service/Endpoints and system namespaces on start.
    bootstrap: bool = True

    def __post_init__(self) -> None:
        if not self.service_cidrs or len(self.service_cidrs) > 2:
            raise ValueError("api/config: service_cidrs needs one or two CIDRs")
        nets = [ipaddress.ip_network(c, strict=False) for c in self.service_cidrs]
        if len(nets) == 2 and nets[0].version == nets[1].version:
            raise ValueError("api/config: two service CIDRs must be one IPv4 and one IPv6")
        lo, hi = self.node_port_range
        if not 0 < lo <= hi < 65536:
            raise ValueError(f"api/config: node_port_range {lo}-{hi} is not a port range")

    @property
    def service_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.service_cidrs)
