"""Configuration providers: Kubernetes objects in, :class:`~..dynamic.DynamicConfig` out.

PROVIDERS maps Traefik's provider name (the ``@suffix`` of qualified names) to its pure build function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .crd import build_crd_config
from .ingress import build_ingress_config

__all__ = ["PROVIDERS", "build_crd_config", "build_ingress_config"]

PROVIDERS: dict[str, Callable[..., Any]] = {
    "kubernetescrd": build_crd_config,
    "kubernetes": build_ingress_config,
}
