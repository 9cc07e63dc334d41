"""The cluster network every node must agree on, with K3s's defaults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_CLUSTER_CIDR", "DEFAULT_CLUSTER_DNS", "DEFAULT_CLUSTER_DOMAIN", "DEFAULT_SERVICE_CIDR",
           "ClusterNetwork"]

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_CLUSTER_DNS = "10.43.0.10"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True, slots=True)
class ClusterNetwork:
    """Pod and Service ranges (one, or an IPv4,IPv6 pair each), the cluster DNS addresses and domain."""

    cluster_cidrs: tuple[str, ...] = (DEFAULT_CLUSTER_CIDR,)
    service_cidrs: tuple[str, ...] = (DEFAULT_SERVICE_CIDR,)
    cluster_dns: tuple[str, ...] = (DEFAULT_CLUSTER_DNS,)
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN

    @classmethod
    def given(cls, cluster_cidrs: object = (), service_cidrs: object = (), cluster_dns: object = (),
              cluster_domain: object = "") -> ClusterNetwork:
        """The values given (a list or tuple of strings, a string), K3s's default for each one left empty."""
        return cls(cluster_cidrs=_strings(cluster_cidrs) or (DEFAULT_CLUSTER_CIDR,),
                   service_cidrs=_strings(service_cidrs) or (DEFAULT_SERVICE_CIDR,),
                   cluster_dns=_strings(cluster_dns) or (DEFAULT_CLUSTER_DNS,),
                   cluster_domain=str(cluster_domain or "") or DEFAULT_CLUSTER_DOMAIN)


def _strings(values: object) -> tuple[str, ...]:
    if not values:
        return ()
    if isinstance(values, str):
        return (values,)
    if isinstance(values, list | tuple):
        return tuple(str(v) for v in values)
    raise ValueError(f"expected a list of strings, got {values!r}")
