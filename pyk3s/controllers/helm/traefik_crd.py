"""The packaged chart traefik-crd 37.1.1+up37.1.0: Traefik's CustomResourceDefinitions.

K3s installs Traefik's CRDs through their own chart so that they outlive upgrades of the ``traefik``
release. The chart has no values. pyk3s renders the CRDs of the kinds its ingress serves, in both API
groups it serves them in (``traefik.io`` and the Traefik v2 group ``traefik.containo.us``), with
schemas that keep the spec open: the ingress validates each object and reports what it refuses. It
also renders the chart's Gateway API CRDs (v1.3.0, standard channel: see :mod:`.gateway_api_crds`).
The chart's Traefik Hub CRDs are not rendered (pyk3s does not serve Traefik Hub).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .chart import Manifest, PackagedChart, Release, Rendered, RenderError
from .gateway_api_crds import gateway_api_crds

__all__ = ["CHART", "KINDS"]

VERSION = "37.1.1+up37.1.0"
GROUPS = ("traefik.io", "traefik.containo.us")
KINDS = ("IngressRoute", "IngressRouteTCP", "IngressRouteUDP", "Middleware", "MiddlewareTCP", "ServersTransport",
         "ServersTransportTCP", "TLSOption", "TLSStore", "TraefikService")


def crd(group: str, kind: str) -> dict[str, Any]:
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
            }],
        },
    }


def render(user: Mapping[str, Any], release: Release) -> Rendered:
    if user:
        key = sorted(user)[0]
        raise RenderError(key, f"unknown value: chart traefik-crd {VERSION} has no values")
    objects = [Manifest(f"traefik-crd/templates/{group}_{kind.lower()}s.yaml", crd(group, kind))
               for group in GROUPS for kind in KINDS]
    objects += [Manifest(f"traefik-crd/templates/gateway-standard-install_{obj['spec']['names']['plural']}.yaml", obj)
                for obj in gateway_api_crds()]
    return Rendered(tuple(objects), (), {})


CHART = PackagedChart(
    name="traefik-crd",
    version=VERSION,
    app_version="v3.5.1",
    description="Traefik's CustomResourceDefinitions",
    defaults={},
    render=render,
)
