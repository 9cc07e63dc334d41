"""What the kubernetesCRD provider's objects share: their API groups, the ingress class and namespace
filter (spec 3.11), and how a reference to a middleware or TLS option resolves (Traefik
resolveReference, makeMiddlewareKeys; spec 3.9)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..config.static import ProviderOptions
from .common import KubeObject, ServiceLookupError, normalize

__all__ = ["CRD_GROUPS", "PROVIDER", "ours", "resolve_reference", "middleware_keys"]

CRD_GROUPS = ("traefik.io", "traefik.containo.us")
PROVIDER = "kubernetescrd"


def ours(obj: KubeObject, opts: ProviderOptions) -> bool:
    """An object of a watched namespace and of this provider's ingress class (3.11)."""
    if str(obj.get("apiVersion", "")).split("/")[0] not in CRD_GROUPS:
        return False
    md = obj.get("metadata") or {}
    if opts.namespaces and md.get("namespace") not in opts.namespaces:
        return False
    spec_class = (obj.get("spec") or {}).get("ingressClassName")
    cls = spec_class if spec_class is not None else (md.get("annotations") or {}).get("kubernetes.io/ingress.class", "")
    return opts.ingress_class == cls or (not opts.ingress_class and cls == "traefik")


def resolve_reference(parent_ns: str, ns: str, name: str, opts: ProviderOptions) -> str:
    """Traefik resolveReference: a middleware or TLS option name as the configuration knows it."""
    if "@" in name:
        if not opts.allow_cross_namespace and name.endswith("@" + PROVIDER):
            raise ServiceLookupError("when allowCrossNamespace is disabled, @kubernetescrd references are disallowed")
        if opts.cross_provider_namespaces is not None and parent_ns not in opts.cross_provider_namespaces:
            raise ServiceLookupError(f"namespace {parent_ns!r} is not in crossProviderNamespaces")
        return name
    ns = ns or parent_ns
    if not opts.allow_cross_namespace and ns != parent_ns:
        raise ServiceLookupError("allowCrossNamespace is disabled, cross-namespace are disallowed")
    return normalize(f"{ns}-{name}")


def middleware_keys(parent_ns: str, refs: Iterable[Mapping[str, Any]], opts: ProviderOptions) -> tuple[str, ...]:
    out = []
    for ref in refs or ():
        name = str(ref.get("name", ""))
        try:
            out.append(resolve_reference(parent_ns, str(ref.get("namespace") or ""), name, opts))
        except ServiceLookupError as err:
            raise ServiceLookupError(f"invalid reference to middleware {name}: {err}") from None
    return tuple(out)
