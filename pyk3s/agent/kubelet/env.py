"""A container's environment (pure): env, envFrom, downward API fields, service links.

ConfigMaps and Secrets are passed in already fetched (``{name: object}``); a missing non-optional
reference raises :class:`EnvError` naming the container and the reference, which the pod worker turns
into the waiting reason ``CreateContainerConfigError`` like the kubelet.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence

__all__ = ["EnvError", "build_env", "field_value", "service_link_env"]

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


class EnvError(ValueError):
    pass


def field_value(pod: Mapping, path: str, pod_ip: str, host_ip: str, pod_ips: Sequence[str] = (),
                host_ips: Sequence[str] = ()) -> str:
    """A ``fieldRef`` value as the kubelet gives it: ``status.podIPs``/``status.hostIPs`` are every
    address, primary first, joined by commas (``10.42.0.5,fd00:42::5`` on a dual-stack node)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    grace = spec.get("terminationGracePeriodSeconds")
    simple = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "spec.terminationGracePeriodSeconds": str(30 if grace is None else int(grace)),
        "status.podIP": pod_ip, "status.podIPs": ",".join(pod_ips or ([pod_ip] if pod_ip else [])),
        "status.hostIP": host_ip, "status.hostIPs": ",".join(host_ips or ([host_ip] if host_ip else [])),
    }
    if path in simple:
        return simple[path]
    for field in ("labels", "annotations"):
        items = meta.get(field) or {}
        if path == f"metadata.{field}":
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
        m = re.fullmatch(rf"metadata\.{field}\['(.+)'\]", path)
        if m:
            return items.get(m.group(1), "")
    raise EnvError(f"unsupported fieldRef fieldPath {path!r}")


_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "Ki": 1024, "Mi": 1024**2,
          "Gi": 1024**3, "Ti": 1024**4, "m": 0.001}


def _quantity(q: str) -> float:
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(q))
    if not m or m.group(2) not in _UNITS:
        raise EnvError(f"cannot parse quantity {q!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _resource_value(container: Mapping, ref: Mapping, node_alloc: Mapping[str, str]) -> str:
    res = ref["resource"]
    kind, _, name = res.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name) or node_alloc.get(name, "0")
    divisor = _quantity(ref.get("divisor") or "1")
    import math

    return str(max(1, math.ceil(_quantity(value) / divisor)) if name == "cpu" else int(_quantity(value) / divisor))


def service_link_env(services: Sequence[Mapping], namespace: str, enable_links: bool) -> dict[str, str]:
    """Docker-link style variables; the default/kubernetes Service's are always set."""
    env: dict[str, str] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = meta.get("namespace"), meta.get("name", "")
        is_master = ns == "default" and name == "kubernetes"
        if not (is_master or (enable_links and ns == namespace)):
            continue
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        prefix = name.upper().replace("-", "_")
        ports = spec.get("ports") or []
        if not ports:
            continue
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                env[f"{prefix}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
        first = ports[0]
        env[f"{prefix}_PORT"] = f"{(first.get('protocol') or 'TCP').lower()}://{ip}:{first['port']}"
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{ip}:{p['port']}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(p["port"])
            env[f"{base}_ADDR"] = ip
    return env


def _expand(value: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR.sub(sub, value)


def _data(obj: Mapping, secret: bool) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()} if secret \
        else dict(obj.get("data") or {})
    if secret:
        out.update(obj.get("stringData") or {})
    return out


def build_env(pod: Mapping, container: Mapping, *, config_maps: Mapping[str, Mapping],
              secrets: Mapping[str, Mapping], services: Sequence[Mapping], pod_ip: str, host_ip: str,
              node_allocatable: Mapping[str, str] | None = None, pod_ips: Sequence[str] = (),
              host_ips: Sequence[str] = ()) -> dict[str, str]:
    """``pod_ips``/``host_ips``: every address, primary first (default: the one of ``pod_ip``/``host_ip``)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    env: dict[str, str] = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "HOSTNAME": spec.get("hostname") or meta.get("name", "")}
    env.update(service_link_env(services, meta.get("namespace", "default"), spec.get("enableServiceLinks", True)))
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        for kind, table, secret in (("configMapRef", config_maps, False), ("secretRef", secrets, True)):
            ref = src.get(kind)
            if not ref:
                continue
            obj = table.get(ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{"secret" if secret else "configmap"} "{ref.get("name")}" not found')
            for k, v in _data(obj, secret).items():
                env[prefix + k] = v
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = _expand(item.get("value") or "", env)
            continue
        vf = item["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_value(pod, vf["fieldRef"]["fieldPath"], pod_ip, host_ip, pod_ips, host_ips)
        elif "resourceFieldRef" in vf:
            env[name] = _resource_value(container, vf["resourceFieldRef"], node_allocatable or {})
        else:
            for kind, table, secret in (("configMapKeyRef", config_maps, False), ("secretKeyRef", secrets, True)):
                ref = vf.get(kind)
                if not ref:
                    continue
                obj = table.get(ref.get("name", ""))
                data = _data(obj, secret) if obj is not None else None
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        break
                    # the kubelet's wording, which is what users search for
                    if data is None:
                        raise EnvError(f'{"secret" if secret else "configmap"} "{ref.get("name")}" not found')
                    raise EnvError(f'couldn\'t find key {ref["key"]} in {"Secret" if secret else "ConfigMap"} '
                                   f'{meta.get("namespace", "default")}/{ref.get("name")}')
                env[name] = data[ref["key"]]
    return env
