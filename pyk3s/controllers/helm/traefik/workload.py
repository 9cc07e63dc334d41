"""The Traefik Deployment or DaemonSet (``deployment.yaml``, ``daemonset.yaml``), pure."""

from __future__ import annotations

from typing import Any

from ..chart import RenderError
from .args import Arg
from .context import Ctx, truthy
from .pod import pod_template

__all__ = ["workload"]


def _checks(ctx: Ctx, kind: str) -> None:
    extra = [str(a) for a in ctx.v("additionalArguments") or []]
    if kind == "Deployment" and int(ctx.v("deployment", "replicas") or 0) > 1 and any(".acme." in a for a in extra):
        raise RenderError("additionalArguments", "You can not enable acme if you set more than one traefik replica")
    if kind == "DaemonSet" and any(".acme." in a for a in extra):
        raise RenderError("additionalArguments",
                          "ACME functionality is not supported when running Traefik as a DaemonSet")
    tag = ctx.v("image", "tag") or ctx.app_version
    if tag == "latest":
        raise RenderError("image.tag", "ERROR: latest tag should not be used")


def _metadata(ctx: Ctx) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": ctx.fullname, "namespace": ctx.namespace,
                            "labels": ctx.labels(ctx.v("deployment", "labels"))}
    annotations = dict(ctx.v("deployment", "annotations") or {})
    if annotations:
        meta["annotations"] = annotations
    return meta


def _strategy(ctx: Ctx) -> dict[str, Any] | None:
    strategy = ctx.v("updateStrategy")
    if not truthy(strategy):
        return None
    out: dict[str, Any] = {"type": strategy.get("type")}
    if strategy.get("type") == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        out["rollingUpdate"] = {"maxUnavailable": rolling.get("maxUnavailable"), "maxSurge": rolling.get("maxSurge")}
    return out


def workload(ctx: Ctx) -> tuple[dict[str, Any] | None, list[Arg]]:
    """The Deployment or DaemonSet (None when ``deployment.enabled`` is false) and the container arguments."""
    dep = ctx.v("deployment") or {}
    kind = dep.get("kind")
    template, args = pod_template(ctx)
    if not dep.get("enabled") or kind not in ("Deployment", "DaemonSet"):
        return None, args
    _checks(ctx, kind)
    spec: dict[str, Any] = {}
    strategy = _strategy(ctx)
    if kind == "Deployment":
        autoscaling = ctx.v("autoscaling") or {}
        target = autoscaling.get("scaleTargetRef") or {}
        if not autoscaling.get("enabled"):
            spec["replicas"] = dep.get("replicas") or 1
        elif truthy(target) and not (target.get("apiVersion") == "apps/v1" and target.get("kind") == "Deployment"):
            spec["replicas"] = dep.get("replicas") or 0
        if dep.get("revisionHistoryLimit") is not None:
            spec["revisionHistoryLimit"] = dep["revisionHistoryLimit"]
        spec["selector"] = {"matchLabels": ctx.selector()}
        if strategy is not None:
            spec["strategy"] = strategy
        spec["minReadySeconds"] = dep.get("minReadySeconds")
    else:
        if strategy is not None and strategy.get("type") == "RollingUpdate":
            max_unavailable = (ctx.v("updateStrategy", "rollingUpdate") or {}).get("maxUnavailable")
            if max_unavailable is not None and "%" not in str(max_unavailable) and ctx.v("hostNetwork") \
                    and float(max_unavailable) < 1.0:
                raise RenderError("updateStrategy.rollingUpdate.maxUnavailable",
                                  "maxUnavailable should be greater than 1 when using hostNetwork.")
        spec["selector"] = {"matchLabels": ctx.selector()}
        if strategy is not None:
            spec["updateStrategy"] = strategy
        spec["minReadySeconds"] = dep.get("minReadySeconds")
        if truthy(dep.get("revisionHistoryLimit")):
            spec["revisionHistoryLimit"] = dep["revisionHistoryLimit"]
    spec["template"] = template
    obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": _metadata(ctx), "spec": spec}
    return obj, args
