"""The cluster network every node must agree on, with K3s's defaults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_CLUSTER_CIDR", "DEFAULT_CLUSTER_DNS", "DEFAULT_CLUSTER_DOMAIN", "DEFAULT_FLANNEL_BACKEND",
           "DEFAULT_SERVICE_CIDR", "FLANNEL_BACKENDS", "ClusterNetwork"]

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_CLUSTER_DNS = "10.43.0.10"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_FLANNEL_BACKEND = "vxlan"
FLANNEL_BACKENDS = ("vxlan", "host-gw", "none")


@dataclass(frozen=True, slots=True)
class ClusterNetwork:
    """Pod and Service ranges (one, or an IPv4,IPv6 pair each), the cluster DNS addresses and domain."""

    cluster_cidrs: tuple[str, ...] = (DEFAULT_CLUSTER_CIDR,)
    service_cidrs: tuple[str, ...] = (DEFAULT_SERVICE_CIDR,)
    cluster_dns: tuple[str, ...] = (DEFAULT_CLUSTER_DNS,)
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    # pod traffic between nodes (K3s's server-side flannel flags, handed to every joining node)
    flannel_backend: str = DEFAULT_FLANNEL_BACKEND
    flannel_external_ip: bool = False
    flannel_ipv6_masq: bool = False

    def agent_config(self) -> dict[str, object]:
        """The flannel settings as the join response carries them (beside the CIDRs)."""
        return {"flannelBackend": self.flannel_backend, "flannelExternalIP": self.flannel_external_ip,
                "flannelIPv6Masq": self.flannel_ipv6_masq}

    @classmethod
    def given(cls, cluster_cidrs: object = (), service_cidrs: object = (), cluster_dns: object = (),
              cluster_domain: object = "", agent_config: dict[str, object] | None = None) -> ClusterNetwork:
        """The values given (a list or tuple of strings, a string), K3s's default for each one left empty;
        ``agent_config``: the flannel settings of a join response."""
        extra = agent_config or {}
        return cls(cluster_cidrs=_strings(cluster_cidrs) or (DEFAULT_CLUSTER_CIDR,),
                   service_cidrs=_strings(service_cidrs) or (DEFAULT_SERVICE_CIDR,),
                   cluster_dns=_strings(cluster_dns) or (DEFAULT_CLUSTER_DNS,),
                   cluster_domain=str(cluster_domain or "") or DEFAULT_CLUSTER_DOMAIN,
                   flannel_backend=str(extra.get("flannelBackend") or DEFAULT_FLANNEL_BACKEND),
                   flannel_external_ip=bool(extra.get("flannelExternalIP")),
                   flannel_ipv6_masq=bool(extra.get("flannelIPv6Masq")))


def _strings(values: object) -> tuple[str, ...]:
    if not values:
        return ()
    if isinstance(values, str):
        return (values,)
    if isinstance(values, list | tuple):
        return tuple(str(v) for v in values)
    raise ValueError(f"expected a list of strings, got {values!r}")
