"""Configuration providers: Kubernetes objects in, :class:`~..config.dynamic.DynamicConfig` out.

PROVIDERS maps Traefik's provider name (the ``@suffix`` of qualified names) to what the runner and
``explain`` need of it: the static options that switch it on, the kinds it reads and its pure build
function. :func:`build_config` runs every provider that is switched on, adds the internal provider
and merges the parts. A new provider is a module here, a row in PROVIDERS and its flags in
``config/static.py`` (a ProviderOptions field of StaticConfig).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..config.dynamic import DynamicConfig, merge
from ..config.static import GatewayOptions, ProviderOptions, StaticConfig
from . import crd, crd_tcp, gateway, ingress
from .common import KubeObject, ObjectIndex, Watched
from .internal import internal_config

__all__ = ["Provider", "PROVIDERS", "build_config", "watched_kinds", "build_kubernetescrd"]


@dataclass(frozen=True, slots=True)
class Provider:
    options: Callable[[StaticConfig], ProviderOptions | GatewayOptions | None]  # None: the provider is off
    watches: tuple[Watched, ...]
    build: Callable[[ObjectIndex, Any], DynamicConfig]  # called with what ``options`` returned


def build_kubernetescrd(index: ObjectIndex, options: ProviderOptions) -> DynamicConfig:
    """The kubernetesCRD provider: HTTP objects (``crd.py``) and TCP/UDP objects (``crd_tcp.py``); the
    certificates of TLS-terminating TCP routes join the default store."""
    cfg = crd.build_crd_config(index, options)
    tcp, certs = crd_tcp.build_crd_tcp(index, options)
    known = {c.source for c in cfg.certificates}
    return replace(cfg, tcp=tcp, certificates=cfg.certificates + tuple(c for c in certs if c.source not in known))


PROVIDERS: dict[str, Provider] = {
    "kubernetescrd": Provider(lambda static: static.crd, crd.WATCHES + crd_tcp.TCP_WATCHES, build_kubernetescrd),
    "kubernetes": Provider(lambda static: static.ingress, ingress.WATCHES, ingress.build_ingress_config),
    "kubernetesgateway": Provider(lambda static: static.gateway, gateway.WATCHES, gateway.build_gateway_config),
}


def watched_kinds(static: StaticConfig) -> tuple[Watched, ...]:
    """The kinds the providers that are switched on read, each once."""
    kinds: dict[Watched, None] = {}
    for provider in PROVIDERS.values():
        if provider.options(static) is not None:
            kinds.update(dict.fromkeys(provider.watches))
    return tuple(kinds)


def build_config(static: StaticConfig, objects: Iterable[KubeObject]) -> DynamicConfig:
    """Every provider that is switched on plus the internal one, merged with qualified names."""
    index = ObjectIndex.build(objects)
    parts: dict[str, DynamicConfig] = {}
    for name, provider in PROVIDERS.items():
        options = provider.options(static)
        if options is not None:
            parts[name] = provider.build(index, options)
    parts["internal"] = internal_config(static)
    return merge(parts)
