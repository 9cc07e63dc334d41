"""Values of the Traefik chart pyk3s renders but does not act on, each with the reason (pure).

Three kinds, all reported in the HelmChart's status and a Warning event, never dropped silently:

- values whose objects pyk3s does not serve (HorizontalPodAutoscaler, PodDisruptionBudget,
  PersistentVolumeClaim, Prometheus Operator objects, Traefik Hub): not rendered;
- an image that is not a built-in one: the Deployment keeps the built-in Traefik-compatible image;
- container arguments the ingress does not honour (:mod:`pyk3s.images.traefik_flags`): rendered as the
  chart renders them, and reported by the ingress at start as well. The Gateway API values
  (``providers.kubernetesGateway.*``, ``experimental.kubernetesGateway``) are of this kind: their
  GatewayClass, Gateway and RBAC are rendered, and each argument the ingress's flag table does not
  list as honoured is reported against the value that produced it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pyk3s.images import resolve_image
from pyk3s.images.traefik_flags import unhonoured

from ..chart import Ignored
from .args import Arg
from .context import Ctx, truthy

__all__ = ["BUILTIN_IMAGE", "NOT_SERVED", "ignored_args", "ignored_values", "image_is_builtin"]

BUILTIN_IMAGE = "rancher/mirrored-library-traefik"

# (value key, is it set?, why pyk3s does not act on it)
NOT_SERVED: tuple[tuple[str, Callable[[Ctx], bool], str], ...] = (
    ("experimental.plugins", lambda c: truthy(c.v("experimental", "plugins")),
     "pyk3s's ingress cannot load Traefik plugins"),
    ("experimental.localPlugins", lambda c: truthy(c.v("experimental", "localPlugins")),
     "pyk3s's ingress cannot load Traefik plugins"),
    ("persistence.enabled", lambda c: bool(c.v("persistence", "enabled")),
     "no PersistentVolumeClaim is rendered: the data volume stays an emptyDir (pyk3s has no volume provisioner)"),
    ("autoscaling.enabled", lambda c: bool(c.v("autoscaling", "enabled")),
     "pyk3s serves no HorizontalPodAutoscaler; the Deployment keeps deployment.replicas"),
    ("podDisruptionBudget.enabled", lambda c: bool(c.v("podDisruptionBudget", "enabled")),
     "pyk3s serves no PodDisruptionBudget; none is rendered"),
    ("podSecurityPolicy.enabled", lambda c: bool(c.v("podSecurityPolicy", "enabled")),
     "PodSecurityPolicy no longer exists in Kubernetes; none is rendered"),
    ("metrics.prometheus.service.enabled", lambda c: bool(c.v("metrics", "prometheus", "service", "enabled")),
     "the dedicated metrics Service is not rendered (scrape the pods through their prometheus.io annotations)"),
    ("metrics.prometheus.serviceMonitor.enabled",
     lambda c: bool(c.v("metrics", "prometheus", "serviceMonitor", "enabled")),
     "pyk3s serves no Prometheus Operator ServiceMonitor; none is rendered"),
    ("metrics.prometheus.prometheusRule.enabled",
     lambda c: bool(c.v("metrics", "prometheus", "prometheusRule", "enabled")),
     "pyk3s serves no Prometheus Operator PrometheusRule; none is rendered"),
    ("providers.file.enabled", lambda c: bool(c.v("providers", "file", "enabled")),
     "pyk3s's ingress has no file provider; the ConfigMap is not rendered"),
    ("hub.token", lambda c: truthy(c.v("hub", "token")), "Traefik Hub is not part of pyk3s's ingress"),
    ("oci_meta.enabled", lambda c: bool(c.v("oci_meta", "enabled")),
     "marketplace images are not run; the built-in image is used"),
    ("global.azure.enabled", lambda c: bool(c.v("global", "azure", "enabled")),
     "marketplace images are not run; the built-in image is used"),
)


# keys earlier chart versions read; chart 37 renders nothing for them
REMOVED: tuple[tuple[str, Callable[[Ctx], bool], str], ...] = (
    ("globalArguments", lambda c: truthy(c.v("globalArguments")),
     "removed in chart 28: use global.checkNewVersion and global.sendAnonymousUsage"),
    ("image.name", lambda c: truthy(c.v("image", "name")), "removed in chart 10: use image.repository"),
    ("podAnnotations", lambda c: truthy(c.v("podAnnotations")), "removed in chart 10: use deployment.podAnnotations"),
)


def image_is_builtin(image: str) -> bool:
    return resolve_image(image) is not None


def ignored_values(ctx: Ctx, image: str) -> list[Ignored]:
    out = [Ignored(key, reason) for key, is_set, reason in (*NOT_SERVED, *REMOVED) if is_set(ctx)]
    if not image_is_builtin(image):
        out.append(Ignored("image.repository", f"image {image} is not one pyk3s can run (no container images); "
                                               f"the built-in {BUILTIN_IMAGE} is used"))
    return out


def ignored_args(args: Iterable[Arg], already: Iterable[Ignored] = ()) -> list[Ignored]:
    """Arguments the ingress does not honour, against the value key that produced each."""
    by_text = {a.text: a for a in args}
    seen = {i.key for i in already}
    out: list[Ignored] = []
    for item in unhonoured(list(by_text)):
        arg = by_text.get(item.flag)
        key = (arg.key if arg is not None else "") or "args"
        if any(key == k or key.startswith(k + ".") for k in seen):
            continue
        out.append(Ignored(key, f"{item.flag}: {item.reason}"))
    return out


def fix_image(obj: dict[str, Any], image: str) -> None:
    """Put the built-in image, keeping the requested tag, into the Traefik container of ``obj``."""
    containers = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    if containers:
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
        containers[0]["image"] = f"{BUILTIN_IMAGE}:{tag}"
