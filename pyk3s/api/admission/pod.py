"""Pod and pod template validation (ValidatePodSpec, ValidatePodUpdate in pkg/apis/core/validation)."""

from __future__ import annotations

import copy
import json
from typing import Any

from .causes import Cause, duplicate, forbidden, invalid, not_found, not_supported, required
from .meta import validate_labels
from .names import (
    PORT_RANGE,
    PROTOCOLS,
    dns1123_label,
    dns1123_subdomain,
    env_var_name,
    port_name,
    valid_port,
)

__all__ = ["validate_pod_spec", "validate_pod_update", "validate_template"]

_VOLUME_SOURCES = (
    "emptyDir", "hostPath", "configMap", "secret", "projected", "downwardAPI", "persistentVolumeClaim", "nfs",
    "csi", "ephemeral", "image", "iscsi", "cephfs", "rbd", "fc", "flexVolume", "local", "gitRepo",
)


def _label_causes(field: str, value: str) -> list[Cause]:
    return [invalid(field, value, m) for m in dns1123_label(value)]


def _volumes(volumes: list, path: str) -> tuple[set[str], list[Cause]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, vol in enumerate(volumes):
        p = f"{path}[{i}]"
        errs: list[Cause] = []
        sources = [s for s in _VOLUME_SOURCES if vol.get(s) is not None]
        if not sources:
            errs.append(required(p, "must specify a volume type"))
        for extra in sources[1:]:
            errs.append(forbidden(f"{p}.{extra}", "may not specify more than 1 volume type"))
        if isinstance(vol.get("configMap"), dict) and not vol["configMap"].get("name"):
            errs.append(required(f"{p}.configMap.name"))
        if isinstance(vol.get("secret"), dict) and not vol["secret"].get("secretName"):
            errs.append(required(f"{p}.secret.secretName"))
        if isinstance(vol.get("hostPath"), dict) and not vol["hostPath"].get("path"):
            errs.append(required(f"{p}.hostPath.path"))
        name = vol.get("name") or ""
        errs += [required(f"{p}.name")] if not name else _label_causes(f"{p}.name", name)
        if name in names:
            errs.append(duplicate(f"{p}.name", name))
        if errs:
            causes += errs
        else:
            names.add(name)
    return names, causes


def _ports(ports: list, path: str) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = port_name(name)
            if msgs:
                causes += [invalid(f"{p}.name", name, m) for m in msgs]
            elif name in names:
                causes.append(duplicate(f"{p}.name", name))
            names.add(name)
        cp = port.get("containerPort")
        if not cp:
            causes.append(required(f"{p}.containerPort"))
        elif not valid_port(cp):
            causes.append(invalid(f"{p}.containerPort", cp, PORT_RANGE))
        if port.get("hostPort") and not valid_port(port["hostPort"]):
            causes.append(invalid(f"{p}.hostPort", port["hostPort"], PORT_RANGE))
        proto = port.get("protocol") or ""
        if not proto:
            causes.append(required(f"{p}.protocol"))
        elif proto not in PROTOCOLS:
            causes.append(not_supported(f"{p}.protocol", proto, PROTOCOLS))
    return causes


def _container(c: dict, volumes: set[str], path: str) -> list[Cause]:
    name = c.get("name") or ""
    causes = [required(f"{path}.name")] if not name else _label_causes(f"{path}.name", name)
    if not c.get("image"):
        causes.append(required(f"{path}.image"))
    policy = c.get("terminationMessagePolicy") or ""
    if not policy:
        causes.append(required(f"{path}.terminationMessagePolicy"))
    elif policy not in ("File", "FallbackToLogsOnError"):
        causes.append(not_supported(f"{path}.terminationMessagePolicy", policy, ["File", "FallbackToLogsOnError"]))
    causes += _ports(c.get("ports") or [], f"{path}.ports")
    for i, env in enumerate(c.get("env") or []):
        ename = env.get("name") or ""
        if not ename:
            causes.append(required(f"{path}.env[{i}].name"))
        causes += [invalid(f"{path}.env[{i}].name", ename, m) for m in env_var_name(ename)] if ename else []
    mount_paths: set[str] = set()
    for i, mount in enumerate(c.get("volumeMounts") or []):
        p = f"{path}.volumeMounts[{i}]"
        mname = mount.get("name") or ""
        if not mname:
            causes.append(required(f"{p}.name"))
        if mname not in volumes:
            causes.append(not_found(f"{p}.name", mname))
        mpath = mount.get("mountPath") or ""
        if not mpath:
            causes.append(required(f"{p}.mountPath"))
        if mpath in mount_paths:
            causes.append(invalid(f"{p}.mountPath", mpath, "must be unique"))
        mount_paths.add(mpath)
    pull = c.get("imagePullPolicy") or ""
    if not pull:
        causes.append(required(f"{path}.imagePullPolicy"))
    elif pull not in ("Always", "IfNotPresent", "Never"):
        causes.append(not_supported(f"{path}.imagePullPolicy", pull, ["Always", "IfNotPresent", "Never"]))
    return causes


def _containers(containers: list, volumes: set[str], path: str, seen: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    for i, c in enumerate(containers):
        p = f"{path}[{i}]"
        causes += _container(c, volumes, p)
        name = c.get("name") or ""
        if name in seen:
            causes.append(duplicate(f"{p}.name", name))
        seen.add(name)
    return causes


def validate_pod_spec(spec: dict, path: str = "spec") -> list[Cause]:
    volumes, causes = _volumes(spec.get("volumes") or [], f"{path}.volumes")
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required(f"{path}.containers"))
    else:
        causes += _containers(containers, volumes, f"{path}.containers", set())
    init_seen = {c.get("name") for c in containers}
    causes += _containers(spec.get("initContainers") or [], volumes, f"{path}.initContainers", init_seen)
    restart = spec.get("restartPolicy") or ""
    if not restart:
        causes.append(required(f"{path}.restartPolicy"))
    elif restart not in ("Always", "OnFailure", "Never"):
        causes.append(not_supported(f"{path}.restartPolicy", restart, ["Always", "OnFailure", "Never"]))
    dns = spec.get("dnsPolicy") or ""
    if not dns:
        causes.append(required(f"{path}.dnsPolicy"))
    elif dns not in ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"):
        causes.append(not_supported(f"{path}.dnsPolicy", dns, ["ClusterFirstWithHostNet", "ClusterFirst", "Default",
                                                                "None"]))
    causes += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    sa = spec.get("serviceAccountName") or ""
    causes += [invalid(f"{path}.serviceAccountName", sa, m) for m in dns1123_subdomain(sa)] if sa else []
    node = spec.get("nodeName") or ""
    causes += [invalid(f"{path}.nodeName", node, m) for m in dns1123_subdomain(node)] if node else []
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not (isinstance(deadline, int) and 1 <= deadline <= 2147483647):
        causes.append(invalid(f"{path}.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive"))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            causes += _label_causes(f"{path}.{key}", spec[key])
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:
        causes.append(invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0"))
    return causes


def validate_template(template: Any, path: str, *, restart_always: bool = True) -> list[Cause]:
    """ValidatePodTemplateSpec plus the workload controllers' own template rules."""
    if not isinstance(template, dict):
        return [required(path)]
    meta = template.get("metadata") or {}
    causes = validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    spec = template.get("spec") or {}
    causes += validate_pod_spec(spec, f"{path}.spec")
    if restart_always and spec.get("restartPolicy") not in (None, "", "Always"):
        causes.append(not_supported(f"{path}.spec.restartPolicy", spec["restartPolicy"], ["Always"]))
    if restart_always and spec.get("activeDeadlineSeconds") is not None:
        causes.append(forbidden(f"{path}.spec.activeDeadlineSeconds",
                                "activeDeadlineSeconds in ReplicaSet is not Supported"))
    return causes


_UPDATABLE = ",".join([
    "`spec.containers[*].image`", "`spec.initContainers[*].image`", "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
])


def _spec_diff(old: dict, new: dict) -> str:
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            field = key[0].upper() + key[1:]
            lines.append(f"- \t{field}: {json.dumps(old.get(key), sort_keys=True)},")
            lines.append(f"+ \t{field}: {json.dumps(new.get(key), sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def validate_pod_update(new: dict, old: dict) -> list[Cause]:
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    causes: list[Cause] = []
    old_tolerations = old_spec.get("tolerations") or []
    new_tolerations = spec.get("tolerations") or []
    for t in old_tolerations:
        base = {k: v for k, v in t.items() if k != "tolerationSeconds"}
        if not any(base == {k: v for k, v in n.items() if k != "tolerationSeconds"} for n in new_tolerations):
            causes.append(forbidden("spec.tolerations", "existing toleration can not be modified except its "
                                                        "tolerationSeconds"))
            break
    old_deadline, deadline = old_spec.get("activeDeadlineSeconds"), spec.get("activeDeadlineSeconds")
    if old_deadline is not None:
        if deadline is None:
            causes.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer "
                                                                      "to nil value"))
        elif isinstance(deadline, int) and deadline > old_deadline:
            causes.append(invalid("spec.activeDeadlineSeconds", deadline,
                                  "must be less than or equal to previous value"))
    munged = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        olds = old_spec.get(key) or []
        news = munged.get(key) or []
        if len(olds) == len(news):
            for o, n in zip(olds, news, strict=True):
                if "image" in o and n.get("image"):
                    n["image"] = o["image"]
    for key in ("activeDeadlineSeconds", "tolerations"):
        if key in old_spec:
            munged[key] = old_spec[key]
        else:
            munged.pop(key, None)
    if isinstance(old_spec.get("terminationGracePeriodSeconds"), int) and old_spec["terminationGracePeriodSeconds"] < 0 \
            and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_spec["terminationGracePeriodSeconds"]
    if munged != old_spec:
        causes.append(forbidden("spec", f"pod updates may not change fields other than {_UPDATABLE}\n"
                                        f"{_spec_diff(old_spec, munged)}"))
    return causes
