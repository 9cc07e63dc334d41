"""Settings of the control-plane loops: one frozen :class:`ControllerSettings` handed to every factory of
``CONTROLLERS``, holding the deploy controller's and ServiceLB's own settings too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["KLIPPER_LB_IMAGE", "ControllerSettings", "DeploySettings", "ServiceLBSettings"]

KLIPPER_LB_IMAGE = "rancher/klipper-lb:v0.4.13"


@dataclass(frozen=True, slots=True)
class DeploySettings:
    """The deploy controller's manifests directory (K3s's Addon controller, specs/k3s.md 3.2)."""

    manifests_dir: Path
    server_dir: Path
    disable: frozenset[str] = frozenset()
    rescan_interval: float = 15.0
    namespace: str = "kube-system"


@dataclass(frozen=True, slots=True)
class ServiceLBSettings:
    """Where ServiceLB's svclb DaemonSets live and which klipper-lb image they run."""

    namespace: str = "kube-system"
    image: str = KLIPPER_LB_IMAGE  # prefixed with --system-default-registry
    default_priority_class: str = "system-node-critical"


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    # Concurrent reconciles per controller (keys are never processed twice at once).
    workers: int = 1
    # A node whose Lease was not renewed for this long is NotReady/Unknown (kube-controller-manager's
    # --node-monitor-grace-period).
    node_monitor_grace_period: float = 40.0
    # Upper bound applied to NoExecute tolerationSeconds before eviction; None keeps the pod's value
    # (300 s from the DefaultTolerationSeconds admission). Tests shorten it.
    toleration_seconds_cap: float | None = None
    # How long a controller waits for its own creations/deletions to show up in the cache before
    # it stops trusting its expectations (upstream: 5 minutes).
    expectations_ttl: float = 300.0
    # Pods whose spec.schedulerName equals this are bound by pyk3s's scheduler.
    scheduler_name: str = "default-scheduler"
    # Supervisor: restart a crashed controller after min..max seconds, doubling.
    restart_backoff_min: float = 1.0
    restart_backoff_max: float = 60.0
    # How often the garbage collector and namespace controller refresh discovery (new CRDs).
    discovery_interval: float = 30.0
    # How soon a Terminating namespace is looked at again while content remains.
    namespace_recheck: float = 2.0
    # Where CoreDNS's NodeHosts live (k3s.md 4.4).
    coredns_namespace: str = "kube-system"
    coredns_configmap: str = "coredns"
    # Pod ranges handed to nodes, a /24 (IPv4) or /64 (IPv6) each (K3s's --cluster-cidr).
    cluster_cidrs: tuple[str, ...] = ("10.42.0.0/16",)
    # The manifests directory the deploy controller applies; None: the deploy controller cannot run.
    deploy: DeploySettings | None = None
    servicelb: ServiceLBSettings = ServiceLBSettings()

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("controllers/settings: workers must be at least 1")
        if self.node_monitor_grace_period <= 0:
            raise ValueError("controllers/settings: node_monitor_grace_period must be positive")
