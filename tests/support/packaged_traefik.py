"""K3s's packaged Traefik as the cluster gets it: the HelmCharts of pyk3s/manifests/traefik.yaml rendered
by the helm controller's own chart code (Traefik's CRDs, then the chart's Deployment, Service, ...)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from pyk3s.controllers.helm import traefik_crd
from pyk3s.controllers.helm.chart import Release
from pyk3s.controllers.helm.traefik import render

__all__ = ["packaged_traefik"]


def packaged_traefik(*kinds: str) -> list[dict[str, Any]]:
    """The objects of the given kinds (all when none are given), CRDs first."""
    docs = [d for d in yaml.safe_load_all((resources.files("pyk3s.manifests") / "traefik.yaml").read_text()) if d]
    chart = next(d for d in docs if d["metadata"]["name"] == "traefik")
    values = yaml.safe_load(chart["spec"].get("valuesContent") or "{}") or {}
    objs = [m.obj for m in traefik_crd.render({}, Release("traefik-crd", "kube-system")).objects]
    objs += [m.obj for m in render(values, Release("traefik", "kube-system")).objects]
    return [dict(o) for o in objs if not kinds or o["kind"] in kinds]
