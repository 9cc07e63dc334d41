"""Pod and container specs as CRI messages (pure): the sandbox config, the container config with its
env, mounts, resources (cgroups) and security context, and pull credentials from imagePullSecrets."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pyk3s.agent.cri.client import pb
from pyk3s.agent.cri.registries import split_reference

__all__ = ["ANNOTATION_HASH", "LABEL_CONTAINER_NAME", "LABEL_NODE", "LABEL_POD_UID", "container_config",
           "container_hash", "cpu_millis", "dns_config", "linux_resources",
           "memory_bytes", "pull_auth", "quantity", "sandbox_config"]

LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_NODE = "pyk3s.io/node"
# what the container was made from, so an agent restart can tell a container it may adopt (the kubelet
# keeps such a hash too)
ANNOTATION_HASH = "pyk3s.io/container-hash"
ANNOTATION_RESTART_COUNT = "io.kubernetes.container.restartCount"

CPU_PERIOD = 100_000          # µs, as the kubelet sets it
MIN_SHARES, MAX_SHARES = 2, 262_144

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QTY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def quantity(value: Any) -> Decimal:
    """A Kubernetes resource quantity (``128Mi``, ``250m``, ``1.5``, ``1e3``)."""
    m = _QTY.match(str(value).strip())
    if not m:
        raise ValueError(f"invalid quantity {value!r}")
    return Decimal(m.group(1)) * Decimal(str(_SUFFIX[m.group(2) or ""]))


def cpu_millis(value: Any) -> int:
    return int((quantity(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: Any) -> int:
    return int(quantity(value).to_integral_value(rounding="ROUND_CEILING"))


def linux_resources(container: Mapping) -> Any:
    """requests.cpu -> cpu.shares, limits.cpu -> CFS quota, limits.memory -> memory limit (the kubelet's
    mapping); with neither request nor limit the container gets the minimum shares (BestEffort)."""
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out = pb.LinuxContainerResources(cpu_period=CPU_PERIOD)
    cpu_req = requests.get("cpu", limits.get("cpu"))
    shares = MIN_SHARES if cpu_req is None else cpu_millis(cpu_req) * 1024 // 1000
    out.cpu_shares = max(MIN_SHARES, min(MAX_SHARES, shares))
    if limits.get("cpu") is not None:
        out.cpu_quota = max(1000, cpu_millis(limits["cpu"]) * CPU_PERIOD // 1000)
    if limits.get("memory") is not None:
        out.memory_limit_in_bytes = memory_bytes(limits["memory"])
    return out


def dns_config(resolv_conf: str) -> Any:
    """A resolv.conf text (the one the kubelet wrote for the pod) as the sandbox's DNS config."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in resolv_conf.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers.append(words[1])
        elif words[0] == "search":
            searches = words[1:]
        elif words[0] == "options":
            options += words[1:]
    return pb.DNSConfig(servers=servers, searches=searches, options=options)


def _int64(v: Any) -> Any:
    return pb.Int64Value(value=int(v))


def sandbox_config(pod: Mapping, *, hostname: str | None, log_dir: str, resolv_conf: str, node: str,
                   attempt: int = 0) -> Any:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    ns_mode = pb.NODE if spec.get("hostNetwork") else pb.POD
    sec = pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(
        network=ns_mode, pid=pb.NODE if spec.get("hostPID") else pb.POD,
        ipc=pb.NODE if spec.get("hostIPC") else pb.POD))
    if psc.get("runAsUser") is not None:
        sec.run_as_user.CopyFrom(_int64(psc["runAsUser"]))
    if psc.get("runAsGroup") is not None:
        sec.run_as_group.CopyFrom(_int64(psc["runAsGroup"]))
    sec.supplemental_groups.extend(int(g) for g in _groups(psc))
    sysctls = {s["name"]: str(s.get("value", "")) for s in psc.get("sysctls") or [] if s.get("name")}
    ports = [pb.PortMapping(protocol={"UDP": pb.UDP, "SCTP": pb.SCTP}.get(p.get("protocol") or "TCP", pb.TCP),
                            container_port=int(p["containerPort"]), host_port=int(p["hostPort"]),
                            host_ip=p.get("hostIP", ""))
             for c in spec.get("containers") or [] for p in c.get("ports") or [] if p.get("hostPort")]
    labels = {LABEL_POD_NAME: meta["name"], LABEL_POD_NAMESPACE: meta.get("namespace", "default"),
              LABEL_POD_UID: meta["uid"], LABEL_NODE: node}
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=meta["name"], uid=meta["uid"], namespace=meta.get("namespace", "default"),
                                       attempt=attempt),
        hostname=hostname or "", log_directory=log_dir,
        dns_config=dns_config(resolv_conf) if not spec.get("hostNetwork") else None,
        port_mappings=ports, labels=labels,
        annotations={k: str(v) for k, v in (meta.get("annotations") or {}).items()},
        linux=pb.LinuxPodSandboxConfig(security_context=sec, sysctls=sysctls))


def _groups(psc: Mapping) -> list[int]:
    groups = [int(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None and int(psc["fsGroup"]) not in groups:
        groups.append(int(psc["fsGroup"]))
    return groups


def _security(pod_sc: Mapping, sc: Mapping, spec: Mapping) -> Any:
    out = pb.LinuxContainerSecurityContext()
    run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    run_as_group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if run_as_user is not None:
        out.run_as_user.CopyFrom(_int64(run_as_user))
    if run_as_group is not None:
        out.run_as_group.CopyFrom(_int64(run_as_group))
    out.privileged = bool(sc.get("privileged"))
    out.readonly_rootfs = bool(sc.get("readOnlyRootFilesystem"))
    caps = sc.get("capabilities") or {}
    out.capabilities.add_capabilities.extend(caps.get("add") or [])
    out.capabilities.drop_capabilities.extend(caps.get("drop") or [])
    if sc.get("allowPrivilegeEscalation") is False:
        out.no_new_privs = True
    out.supplemental_groups.extend(_groups(pod_sc))
    out.namespace_options.CopyFrom(pb.NamespaceOption(
        network=pb.NODE if spec.get("hostNetwork") else pb.POD,
        pid=pb.NODE if spec.get("hostPID") else (pb.POD if spec.get("shareProcessNamespace") else pb.CONTAINER),
        ipc=pb.NODE if spec.get("hostIPC") else pb.POD))
    return out


def container_hash(container: Mapping) -> str:
    return hashlib.sha256(json.dumps(container, sort_keys=True, default=str).encode()).hexdigest()[:16]


def container_config(pod: Mapping, container: Mapping, *, image: str, attempt: int, env: Mapping[str, str],
                     mounts: Sequence[Mapping], log_path: str) -> Any:
    spec = pod.get("spec") or {}
    meta = pod["metadata"]
    cfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=container["name"], attempt=attempt),
        image=pb.ImageSpec(image=image),
        command=list(container.get("command") or []), args=list(container.get("args") or []),
        working_dir=container.get("workingDir") or "",
        envs=[pb.KeyValue(key=k, value=v) for k, v in env.items()],
        mounts=[pb.Mount(container_path=m["target"], host_path=m["source"], readonly=bool(m.get("readOnly")))
                for m in mounts],
        labels={LABEL_POD_NAME: meta["name"], LABEL_POD_NAMESPACE: meta.get("namespace", "default"),
                LABEL_POD_UID: meta["uid"], LABEL_CONTAINER_NAME: container["name"]},
        annotations={ANNOTATION_RESTART_COUNT: str(attempt), ANNOTATION_HASH: container_hash(container)},
        log_path=log_path, stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=pb.LinuxContainerConfig(
            resources=linux_resources(container),
            security_context=_security(spec.get("securityContext") or {}, container.get("securityContext") or {},
                                       spec)))
    return cfg


def pull_auth(image: str, secrets: Sequence[Mapping]) -> Any | None:
    """The credentials of the first ``kubernetes.io/dockerconfigjson`` (or ``dockercfg``) secret with an
    entry for the image's registry, as the kubelet's keyring picks them."""
    registry, _, _ = split_reference(image)
    wanted = {registry, f"https://{registry}", f"http://{registry}"}
    if registry == "docker.io":
        wanted |= {"index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"}
    for sec in secrets:
        data = sec.get("data") or {}
        raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
        if not raw:
            continue
        try:
            doc = json.loads(base64.b64decode(raw))
        except (ValueError, TypeError):
            continue
        auths = doc.get("auths", doc) if isinstance(doc, dict) else {}
        for key, entry in auths.items():
            host = key.split("://", 1)[-1].split("/", 1)[0]
            if key in wanted or host in wanted:
                user, pw = entry.get("username", ""), entry.get("password", "")
                if not user and entry.get("auth"):
                    user, _, pw = base64.b64decode(entry["auth"]).decode(errors="replace").partition(":")
                return pb.AuthConfig(username=user, password=pw, server_address=registry)
    return None
