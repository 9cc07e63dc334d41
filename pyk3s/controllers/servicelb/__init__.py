"""ServiceLB (K3s's Klipper service load balancer): controller side."""

from .controller import FINALIZER, ServiceLB, remove_servicelb
from .desired import ServiceError, daemonset_name, desired_daemonset, source_ranges
from .status import CONDITION, explain, lb_ingress, pending_reasons

__all__ = [
    "CONDITION",
    "FINALIZER",
    "ServiceError",
    "ServiceLB",
    "daemonset_name",
    "desired_daemonset",
    "explain",
    "lb_ingress",
    "pending_reasons",
    "remove_servicelb",
    "source_ranges",
]
