"""The charts pyk3s ships and renders itself, and how a HelmChart names one.

K3s serves its packaged chart archives from the API server as ``/static/charts/<name>-<version>.tgz``
and its ``traefik.yaml`` points there (``https://%{KUBERNETES_API}%/static/charts/...``). A HelmChart
whose ``spec.chart`` is such a URL for a chart in :data:`CHARTS` is rendered natively; any other chart
(a repository chart, ``chartContent``) is not installed, and the HelmChart says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from . import traefik, traefik_crd
from .chart import PackagedChart

__all__ = ["CHARTS", "chart_url", "describe_charts", "identify"]

CHARTS: tuple[PackagedChart, ...] = (traefik_crd.CHART, traefik.CHART)

STATIC_PREFIX = "/static/charts/"


def chart_url(chart: PackagedChart) -> str:
    return f"https://%{{KUBERNETES_API}}%{STATIC_PREFIX}{chart.archive}"


def identify(spec: Mapping[str, Any]) -> PackagedChart | None:
    if spec.get("chartContent"):
        return None
    ref = str(spec.get("chart") or "").replace("%{KUBERNETES_API}%", "kubernetes.default")
    path = urlparse(ref).path if "://" in ref else ref
    if not path.startswith(STATIC_PREFIX) and STATIC_PREFIX not in path:
        return None
    archive = path.rsplit("/", 1)[-1]
    return next((c for c in CHARTS if c.archive == archive), None)


def describe_charts() -> str:
    return ", ".join(f"{c.name} {c.version} (chart {chart_url(c)})" for c in CHARTS)
