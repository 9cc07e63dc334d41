"""The Traefik pod template (the chart's ``traefik.podTemplate``), pure.

Keys whose value is empty are left out, as ``with`` blocks leave them out of the chart's YAML. Pod
annotations are the user's ``deployment.podAnnotations`` with the Prometheus scrape annotations laid
over them (the chart writes both; the later key wins when the manifest is parsed).
"""

from __future__ import annotations

import math
from typing import Any

from ..chart import RenderError
from .args import Arg, container_args
from .context import Ctx, go_string, port_name, truthy

__all__ = ["gomemlimit", "image_name", "pod_template"]


def image_name(ctx: Ctx) -> str:
    """``[global.systemDefaultRegistry/][image.registry/]image.repository:tag`` (K3s's packaging of the chart)."""
    registry = go_string(ctx.v("global", "systemDefaultRegistry")).rstrip("/")
    repo = go_string(ctx.v("image", "repository"))
    if truthy(ctx.v("image", "registry")):
        repo = f"{go_string(ctx.v('image', 'registry')).rstrip('/')}/{repo}"
    tag = go_string(ctx.v("image", "tag")) or ctx.app_version
    return f"{registry + '/' if registry else ''}{repo}:{tag}"


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _mem_bytes(memory: str) -> float:
    """The chart's ``traefik.convertMemToBytes``, suffix checks in its order."""
    mem = memory.lower()
    steps: list[tuple[str, str, float]] = [
        ("e", "e", 1e18), ("ei", "e", 2.0 ** 60), ("p", "p", 1e15), ("pi", "pi", 2.0 ** 50),
        ("t", "t", 1e12), ("ti", "ti", 2.0 ** 40), ("g", "g", 1e9), ("gi", "gi", 2.0 ** 30),
    ]
    for suffix, trim, factor in steps:
        if mem.endswith(suffix):
            return _float(mem.removesuffix(trim)) * factor
    if memory.endswith("m"):
        return _float(mem.removesuffix("m")) / 1e3
    if memory.endswith("M"):
        return _float(mem.removesuffix("m")) * 1e6
    for suffix, factor in (("mi", 2.0 ** 20), ("k", 1e3), ("ki", 2.0 ** 10)):
        if mem.endswith(suffix):
            return _float(mem.removesuffix(suffix)) * factor
    return _float(mem)


def gomemlimit(memory: Any, percentage: Any) -> str:
    limit = _mem_bytes(go_string(memory)) * float(percentage if percentage is not None else 0)
    return f"{math.floor(limit / 2.0 ** 20)}MiB"


def _probe(ctx: Ctx, kind: str) -> dict[str, Any]:
    port = ctx.v("deployment", "healthchecksPort") or ctx.v("ports", "traefik", "port")
    host = ctx.v("deployment", "healthchecksHost") or ctx.v("ports", "traefik", "hostIP")
    scheme = ctx.v("deployment", "healthchecksScheme") or "HTTP"
    path = ctx.v("deployment", f"{kind}Path") or "/ping"
    get: dict[str, Any] = {}
    if truthy(host):
        get["host"] = host
    get.update({"path": path, "port": port, "scheme": scheme})
    probe: dict[str, Any] = {"httpGet": get}
    probe.update(ctx.v(f"{kind}Probe") or {})
    return probe


def _container_ports(ctx: Ctx) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    host_network = bool(ctx.v("hostNetwork"))
    for name, cfg in sorted((ctx.v("ports") or {}).items()):
        if not truthy(cfg):
            continue
        if host_network and truthy(cfg.get("hostPort")) and truthy(cfg.get("port")) and \
                int(cfg["hostPort"]) != int(cfg["port"]):
            raise RenderError(f"ports.{name}.hostPort", "ERROR: All hostPort must match their respective containerPort "
                                                        "when `hostNetwork` is enabled")
        port: dict[str, Any] = {"name": port_name(name),
                                "containerPort": cfg.get("containerPort") or cfg.get("port")}
        if truthy(cfg.get("hostPort")):
            port["hostPort"] = cfg["hostPort"]
        if truthy(cfg.get("hostIP")):
            port["hostIP"] = cfg["hostIP"]
        port["protocol"] = cfg.get("protocol") or "TCP"
        out.append(port)
        http3 = cfg.get("http3")
        if truthy(http3) and http3.get("enabled"):
            udp: dict[str, Any] = {"name": port_name(f"{name}-http3"), "containerPort": cfg.get("port")}
            if truthy(cfg.get("hostPort")):
                udp["hostPort"] = http3.get("advertisedPort") or cfg["hostPort"]
            udp["protocol"] = "UDP"
            out.append(udp)
    return out


def _has_plugins_volume(volumes: list[Any]) -> bool:
    return any(isinstance(v, dict) and v.get("name") == "plugins" for v in volumes)


def _mounts_and_volumes(ctx: Ctx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    persistence = ctx.v("persistence") or {}
    mounts: list[dict[str, Any]] = []
    data_mount: dict[str, Any] = {"name": persistence.get("name"), "mountPath": persistence.get("path")}
    if truthy(persistence.get("subPath")):
        data_mount["subPath"] = persistence["subPath"]
    mounts += [data_mount, {"name": "tmp", "mountPath": "/tmp"}]
    for i, vol in enumerate(ctx.v("volumes") or []):
        name = go_string(ctx.tpl(vol.get("name"), f"volumes[{i}].name")).replace(".", "-")
        mounts.append({"name": name, "mountPath": vol.get("mountPath"), "readOnly": True})
    plugins = ctx.v("experimental", "plugins") or {}
    extra_volumes = list(ctx.v("deployment", "additionalVolumes") or [])
    if plugins and not _has_plugins_volume(extra_volumes):
        mounts.append({"name": "plugins", "mountPath": "/plugins-storage"})
    if ctx.v("providers", "file", "enabled"):
        mounts.append({"name": "traefik-extra-config", "mountPath": "/etc/traefik/dynamic"})
    mounts += ctx.tpl(list(ctx.v("additionalVolumeMounts") or []), "additionalVolumeMounts")
    local = ctx.v("experimental", "localPlugins") or {}
    for name, plugin in sorted(local.items()):
        mounts.append({"name": name.replace(".", "-"), "mountPath": (plugin or {}).get("mountPath")})

    # The chart mounts a PersistentVolumeClaim when persistence.enabled; pyk3s has no volume provisioner,
    # so the data volume stays an emptyDir and support.NOT_SERVED reports the value.
    volumes: list[dict[str, Any]] = [{"name": persistence.get("name"), "emptyDir": {}},
                                     {"name": "tmp", "emptyDir": {}}]
    for i, vol in enumerate(ctx.v("volumes") or []):
        raw = go_string(ctx.tpl(vol.get("name"), f"volumes[{i}].name"))
        entry: dict[str, Any] = {"name": raw.replace(".", "-")}
        if vol.get("type") == "secret":
            entry["secret"] = {"secretName": raw}
        elif vol.get("type") == "configMap":
            entry["configMap"] = {"name": raw}
        volumes.append(entry)
    volumes += extra_volumes
    for name, plugin in sorted(local.items()):
        volumes.append({"name": name.replace(".", "-"), "hostPath": {"path": (plugin or {}).get("hostPath")}})
    if plugins and not _has_plugins_volume(extra_volumes):
        volumes.append({"name": "plugins", "emptyDir": {}})
    if ctx.v("providers", "file", "enabled"):
        volumes.append({"name": "traefik-extra-config", "configMap": {"name": f"{ctx.fullname}-file-provider"}})
    return mounts, volumes


def _env(ctx: Ctx) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    limits = ctx.v("resources", "limits") or {}
    if truthy(limits.get("cpu")):
        env.append({"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu",
                                                                             "divisor": "1"}}})
    if truthy(limits.get("memory")):
        env.append({"name": "GOMEMLIMIT",
                    "value": gomemlimit(limits["memory"], ctx.v("deployment", "goMemLimitPercentage"))})
    if truthy(ctx.v("logs", "access", "timezone")):
        env.append({"name": "TZ", "value": ctx.v("logs", "access", "timezone")})
    env += list(ctx.v("env") or [])
    return env


def _annotations(ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = dict(ctx.tpl(ctx.v("deployment", "podAnnotations") or {}, "deployment.podAnnotations"))
    metrics = ctx.v("metrics")
    prom = (metrics or {}).get("prometheus") if truthy(metrics) else None
    if truthy(prom) and not (prom.get("serviceMonitor") or {}).get("enabled"):
        entry = prom.get("entryPoint")
        port = (ctx.v("ports") or {}).get(entry)
        if not isinstance(port, dict):
            raise RenderError("metrics.prometheus.entryPoint",
                              f"entry point {go_string(entry)!r} is not one of ports (the chart cannot read its port)")
        out.update({"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics",
                    "prometheus.io/port": go_string(port.get("port"))})
    return out


def pod_template(ctx: Ctx) -> tuple[dict[str, Any], list[Arg]]:
    """The pod template and the container arguments (with their value keys)."""
    dep = ctx.v("deployment") or {}
    args = container_args(ctx)
    mounts, volumes = _mounts_and_volumes(ctx)
    container: dict[str, Any] = {
        "image": image_name(ctx),
        "imagePullPolicy": ctx.v("image", "pullPolicy"),
        "name": ctx.fullname,
    }
    if truthy(ctx.v("resources")):
        container["resources"] = ctx.v("resources")
    if not truthy(ctx.v("ports", "traefik")) and not truthy(dep.get("healthchecksPort")):
        raise RenderError("ports.traefik", "ERROR: When disabling traefik port, you need to specify "
                                           "`deployment.healthchecksPort`")
    container["readinessProbe"] = _probe(ctx, "readiness")
    container["livenessProbe"] = _probe(ctx, "liveness")
    if truthy(ctx.v("startupProbe")):
        container["startupProbe"] = ctx.v("startupProbe")
    if truthy(dep.get("lifecycle")):
        container["lifecycle"] = dep["lifecycle"]
    container["ports"] = _container_ports(ctx)
    if truthy(ctx.v("securityContext")):
        container["securityContext"] = ctx.v("securityContext")
    container["volumeMounts"] = mounts
    container["args"] = [a.text for a in args]
    container["env"] = _env(ctx)
    if truthy(ctx.v("envFrom")):
        container["envFrom"] = ctx.v("envFrom")

    spec: dict[str, Any] = {}
    if truthy(dep.get("imagePullSecrets")):
        spec["imagePullSecrets"] = dep["imagePullSecrets"]
    spec["serviceAccountName"] = ctx.service_account_name
    spec["automountServiceAccountToken"] = True
    spec["terminationGracePeriodSeconds"] = dep.get("terminationGracePeriodSeconds") or 60
    spec["hostNetwork"] = bool(ctx.v("hostNetwork"))
    if truthy(dep.get("dnsPolicy")):
        spec["dnsPolicy"] = dep["dnsPolicy"]
    dns = dep.get("dnsConfig")
    if truthy(dns):
        spec["dnsConfig"] = {k: dns[k] for k in ("searches", "nameservers", "options") if truthy(dns.get(k))}
    if truthy(dep.get("hostAliases")):
        spec["hostAliases"] = dep["hostAliases"]
    if truthy(dep.get("initContainers")):
        spec["initContainers"] = dep["initContainers"]
    if dep.get("shareProcessNamespace"):
        spec["shareProcessNamespace"] = True
    if truthy(dep.get("runtimeClassName")):
        spec["runtimeClassName"] = dep["runtimeClassName"]
    spec["containers"] = [container, *(dep.get("additionalContainers") or [])]
    spec["volumes"] = volumes
    if truthy(ctx.v("affinity")):
        spec["affinity"] = ctx.tpl(ctx.v("affinity"), "affinity")
    if truthy(ctx.v("tolerations")):
        spec["tolerations"] = ctx.v("tolerations")
    if truthy(ctx.v("nodeSelector")):
        spec["nodeSelector"] = ctx.v("nodeSelector")
    if truthy(ctx.v("priorityClassName")):
        spec["priorityClassName"] = ctx.v("priorityClassName")
    if truthy(ctx.v("podSecurityContext")):
        spec["securityContext"] = ctx.v("podSecurityContext")
    if truthy(ctx.v("topologySpreadConstraints")):
        spec["topologySpreadConstraints"] = ctx.tpl(ctx.v("topologySpreadConstraints"), "topologySpreadConstraints")

    metadata: dict[str, Any] = {}
    annotations = _annotations(ctx)
    if annotations:
        metadata["annotations"] = annotations
    metadata["labels"] = ctx.labels(ctx.v("deployment", "podLabels"))
    return {"metadata": metadata, "spec": spec}, args
