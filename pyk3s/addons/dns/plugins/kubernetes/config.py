"""`kubernetes [ZONES...] { ... }` stanza to frozen KubeOptions (spec dns.md P1, P36-P42).

    kubernetes [ZONES...] {
        pods disabled|insecure|verified      # default disabled
        endpoint_pod_names
        ttl SECONDS                          # 0-3600, default 5
        fallthrough [ZONES...]
        namespaces NAMESPACE...
        noendpoints
        ignore empty_service
        kubeconfig FILE [CONTEXT]
        endpoint URL                         # accepted; kubeconfig wins
        labels SELECTOR / namespace_labels SELECTOR   # accepted (selector passed to the watch)
        startup_timeout DURATION
    }
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...corefile import Directive
from ...options import Fallthrough, int_arg, one_of, parse_duration
from ...plugin import BlockContext

__all__ = ["KubeOptions", "parse_options"]

NAME = "kubernetes"


@dataclass(frozen=True, slots=True)
class KubeOptions:
    zones: tuple[str, ...] = ("cluster.local.",)
    pods: str = "disabled"
    endpoint_pod_names: bool = False
    ttl: int = 5
    fall: Fallthrough = Fallthrough()
    namespaces: frozenset[str] = frozenset()
    noendpoints: bool = False
    ignore_empty_service: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    endpoint: str | None = None
    labels: str | None = None
    namespace_labels: str | None = None
    startup_timeout: float = 5.0

    @property
    def primary_zone(self) -> str:
        return next(z for z in self.zones if not z.endswith(".arpa."))


def _norm(z: str) -> str:
    z = z.lower()
    return z if z.endswith(".") else z + "."


def parse_options(d: Directive, ctx: BlockContext) -> KubeOptions:
    zones = tuple(_norm(z) for z in d.args) or ctx.zones
    if not any(not z.endswith(".arpa.") for z in zones):
        raise d.error("at least one non-reverse zone is required", NAME)
    opts = KubeOptions(zones=zones)
    for sub in d.block:
        match sub.name:
            case "pods":
                opts = replace(opts, pods=one_of(sub, NAME, "disabled", "insecure", "verified"))
            case "endpoint_pod_names":
                opts = replace(opts, endpoint_pod_names=True)
            case "ttl":
                opts = replace(opts, ttl=int_arg(sub, NAME, 0, 3600))
            case "fallthrough":
                opts = replace(opts, fall=Fallthrough.parse(sub.args))
            case "namespaces":
                if not sub.args:
                    raise sub.error("namespaces needs at least one namespace", NAME)
                opts = replace(opts, namespaces=frozenset(a.lower() for a in sub.args))
            case "noendpoints":
                opts = replace(opts, noendpoints=True)
            case "ignore":
                if sub.args != ("empty_service",):
                    raise sub.error("ignore only supports empty_service", NAME)
                opts = replace(opts, ignore_empty_service=True)
            case "kubeconfig":
                if len(sub.args) not in (1, 2):
                    raise sub.error("kubeconfig needs FILE [CONTEXT]", NAME)
                opts = replace(opts, kubeconfig=sub.args[0],
                               context=sub.args[1] if len(sub.args) == 2 else None)
            case "endpoint":
                if len(sub.args) != 1:
                    raise sub.error("endpoint needs one URL", NAME)
                opts = replace(opts, endpoint=sub.args[0])
            case "labels" | "namespace_labels":
                if not sub.args:
                    raise sub.error(f"{sub.name} needs a selector", NAME)
                selector = " ".join(sub.args)
                opts = replace(opts, labels=selector) if sub.name == "labels" else \
                    replace(opts, namespace_labels=selector)
            case "startup_timeout":
                if len(sub.args) != 1:
                    raise sub.error("startup_timeout needs a duration", NAME)
                opts = replace(opts, startup_timeout=parse_duration(sub.args[0], sub, NAME))
            case "tls" | "apiserver_qps" | "apiserver_burst" | "apiserver_max_inflight":
                pass
            case _:
                raise sub.error(f"unknown property '{sub.name}'", NAME)
    if opts.namespaces and opts.namespace_labels:
        raise d.error("namespaces and namespace_labels cannot both be set", NAME)
    return opts
