"""Materialize a pod's volumes under ``<pod dir>/volumes/<name>`` and map volumeMounts to bind mounts.

configMap, secret, downwardAPI and projected (serviceAccountToken, configMap, secret, downwardAPI)
volumes are written as files at pod start, and configMap and secret volumes are refreshed in place
while the pod runs (``refresh_volumes``); emptyDir is a directory; hostPath is the host path
(``DirectoryOrCreate``/``FileOrCreate`` create it). Unknown volume types raise :class:`VolumeError`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pyk3s.agent.kubelet.env import field_value

__all__ = ["SA_MOUNT_PATH", "VolumeError", "VolumeSources", "container_mounts", "fs_group", "fs_user",
           "nested_mountpoints", "prepare_volumes",
           "refresh_volumes", "service_account_volume"]

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


class VolumeError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class VolumeSources:
    config_map: Callable[[str, str], Awaitable[dict | None]]
    secret: Callable[[str, str], Awaitable[dict | None]]
    token: Callable[[str, str, int], Awaitable[str]]  # namespace, serviceaccount, expirationSeconds
    ca_crt: str
    pod_ip: str = ""
    host_ip: str = ""
    pod_ips: tuple[str, ...] = ()   # every address, primary first
    host_ips: tuple[str, ...] = ()


def service_account_volume() -> dict:
    return {"name": "pyk3s-api-access", "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}


def _write(base: Path, rel: str, data: bytes, mode: int) -> None:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)


def _keyed(base: Path, data: Mapping[str, bytes], items: list | None, mode: int, what: str, optional: bool) -> None:
    if items:
        for it in items:
            if it["key"] not in data:
                if optional:
                    continue
                raise VolumeError(f"{what} has no key {it['key']!r}")
            _write(base, it["path"], data[it["key"]], it.get("mode", mode))
    else:
        for k, v in data.items():
            _write(base, k, v, mode)


async def _source(base: Path, kind: str, src: Mapping, pod: Mapping, sources: VolumeSources, mode: int,
                  cm_fallback_ca: bool = False) -> None:
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    if kind == "configMap":
        name = src.get("name", "")
        obj = await sources.config_map(ns, name)
        if obj is None:
            if cm_fallback_ca and name == "kube-root-ca.crt":  # published later by a controller
                _write(base, "ca.crt", sources.ca_crt.encode(), mode)
                return
            if src.get("optional"):
                return
            raise VolumeError(f'configmap "{name}" not found')
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        _keyed(base, data, src.get("items"), src.get("defaultMode", mode), f'configmap "{name}"', bool(src.get("optional")))
    elif kind == "secret":
        name = src.get("secretName") or src.get("name", "")
        obj = await sources.secret(ns, name)
        if obj is None:
            if src.get("optional"):
                return
            raise VolumeError(f'secret "{name}" not found')
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        _keyed(base, data, src.get("items"), src.get("defaultMode", mode), f'secret "{name}"', bool(src.get("optional")))
    elif kind == "downwardAPI":
        for it in src.get("items") or []:
            if "fieldRef" in it:
                value = field_value(pod, it["fieldRef"]["fieldPath"], sources.pod_ip, sources.host_ip,
                                    sources.pod_ips, sources.host_ips)
            else:
                value = ""
            _write(base, it["path"], value.encode(), it.get("mode", mode))
    elif kind == "serviceAccountToken":
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        token = await sources.token(ns, sa, int(src.get("expirationSeconds") or 3607))
        if not token:  # like the kubelet: no token, no mount (retried), never an empty token file
            raise VolumeError(f'failed to fetch token: serviceaccount "{ns}/{sa}" token request failed')
        # the kubelet's rule: a pod whose containers all run as one user (or that has an fsGroup) gets a
        # token only that user (and the group) may read; any other pod gets the volume's mode
        user, group = fs_user(pod), fs_group(pod)
        path = src.get("path", "token")
        _write(base, path, token.encode(), 0o600 if user is not None or group is not None else mode)
        if user is not None or group is not None:
            os.chown(base / path, -1 if user is None else user, -1 if group is None else group)
            if group is not None:
                os.chmod(base / path, 0o640)
    else:
        raise VolumeError(f"unsupported projected source {kind!r}")


def fs_user(pod: Mapping) -> int | None:
    """The one user every (init) container runs as, or None (one runs as the image's user, or two differ)."""
    spec = pod.get("spec") or {}
    pod_user = (spec.get("securityContext") or {}).get("runAsUser")
    users = {(c.get("securityContext") or {}).get("runAsUser", pod_user)
             for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}
    user = users.pop() if len(users) == 1 else None
    return None if user is None else int(user)


def fs_group(pod: Mapping) -> int | None:
    group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return None if group is None else int(group)


def nested_mountpoints(pod: Mapping, name: str) -> list[str]:
    """Directories (relative) the volume ``name`` needs for other volumes mounted inside it, as the
    kubelet makes them: a container runtime cannot create a mount point inside a read-only bind (runc
    remounts each read-only bind at once) nor in a read-only root file system. Only the first level
    below the volume is listed (``/a/b`` and not ``/a/b/c`` when both are mounts)."""
    out: list[str] = []
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        mounts = sorted(os.path.normpath(m.get("mountPath") or "/") for m in c.get("volumeMounts") or [])
        for mine in sorted({os.path.normpath(m.get("mountPath") or "/") for m in c.get("volumeMounts") or []
                            if m.get("name") == name}):
            prefix = mine.rstrip("/") + "/"
            previous = ""
            for mp in mounts:
                if not mp.startswith(prefix) or (previous and mp.startswith(previous)):
                    continue
                previous = mp + "/"
                rel = mp[len(prefix):]
                if rel not in out and ".." not in rel.split("/"):
                    out.append(rel)
    return out


def _make_nested_mountpoints(pod: Mapping, name: str, base: Path) -> None:
    for rel in nested_mountpoints(pod, name):
        target = base / rel
        if not target.exists() and not target.is_symlink():
            target.mkdir(parents=True, exist_ok=True)


def _move_into(fresh: Path, base: Path) -> bool:
    """Put ``fresh``'s files into ``base`` one by one and drop the files only ``base`` has: ``base``
    stays the same directory, so a container's bind mount of it sees the change (directories, the
    mount points of nested volumes, are kept). True when anything changed."""
    new = {f.relative_to(fresh) for f in fresh.rglob("*") if f.is_file()}
    old = {f.relative_to(base) for f in base.rglob("*") if f.is_file()}
    dirty = False
    for rel in sorted(new):
        target = base / rel
        if rel in old and target.read_bytes() == (fresh / rel).read_bytes() \
                and target.stat().st_mode == (fresh / rel).stat().st_mode:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(fresh / rel, target)
        dirty = True
    for rel in old - new:
        (base / rel).unlink(missing_ok=True)
        dirty = True
    return dirty


@contextlib.contextmanager
def _filling(base: Path) -> Iterator[Path]:
    """Where to write a volume's files: ``base`` itself when new; when it exists (a container adopted
    after an agent restart may have it mounted), a fresh folder whose files then move into it."""
    if not base.exists():
        base.mkdir(parents=True)
        yield base
        return
    fresh = base.parent / f".{base.name}.new"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    try:
        yield fresh
        _move_into(fresh, base)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


async def prepare_volumes(pod: Mapping, pod_dir: Path, sources: VolumeSources) -> dict[str, Path]:
    """volume name -> host path, every file written (and the mount points of volumes nested in it)."""
    out: dict[str, Path] = {}
    vol_root = pod_dir / "volumes"
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        name = vol["name"]
        base = vol_root / name
        try:
            if "emptyDir" in vol:
                base.mkdir(parents=True, exist_ok=True)
                # world-writable, as the kubelet makes it: a container running as any user may write there
                os.chmod(base, base.stat().st_mode & 0o7777 | 0o777)
            elif "hostPath" in vol:
                hp = vol["hostPath"]
                base = Path(hp["path"])
                kind = hp.get("type") or ""
                if kind == "DirectoryOrCreate":
                    base.mkdir(parents=True, exist_ok=True)
                elif kind == "FileOrCreate":
                    base.parent.mkdir(parents=True, exist_ok=True)
                    base.touch(exist_ok=True)
                elif kind and not base.exists():
                    raise VolumeError(f"hostPath {base} does not exist (type {kind})")
            elif "projected" in vol:
                mode = vol["projected"].get("defaultMode", 0o644)
                with _filling(base) as target:
                    for src in vol["projected"].get("sources") or []:
                        for kind, body in src.items():
                            await _source(target, kind, body, pod, sources, mode, cm_fallback_ca=True)
            else:
                kind = next((k for k in ("configMap", "secret", "downwardAPI") if k in vol), None)
                if kind is None:
                    raise VolumeError(f"unsupported volume type {sorted(k for k in vol if k != 'name')}")
                with _filling(base) as target:
                    await _source(target, kind, vol[kind], pod, sources, vol[kind].get("defaultMode", 0o644))
        except VolumeError as exc:
            raise VolumeError(f'volume "{name}": {exc}') from None
        if "hostPath" not in vol:
            _make_nested_mountpoints(pod, name, base)
        out[name] = base
    return out


async def refresh_volumes(pod: Mapping, volumes: Mapping[str, Path], sources: VolumeSources) -> list[str]:
    """Rewrite running pods' configMap and secret volumes in place, as the kubelet's periodic sync does.

    The container bind-mounts the volume directory, so files are replaced inside it (never the
    directory itself); directories (mount points of nested volumes) are left alone. A source that is
    gone or invalid keeps the last content. Returns the names of the volumes that changed.
    """
    changed: list[str] = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        kind = next((k for k in ("configMap", "secret") if k in vol), None)
        base = volumes.get(vol["name"])
        if kind is None or base is None or not base.is_dir():
            continue
        fresh = base.parent / f".{vol['name']}.refresh"
        if fresh.exists():
            shutil.rmtree(fresh)
        fresh.mkdir()
        try:
            await _source(fresh, kind, vol[kind], pod, sources, vol[kind].get("defaultMode", 0o644))
        except VolumeError:
            shutil.rmtree(fresh)
            continue
        dirty = _move_into(fresh, base)
        shutil.rmtree(fresh)
        if dirty:
            changed.append(vol["name"])
    return changed


def container_mounts(container: Mapping, volumes: Mapping[str, Path]) -> list[dict]:
    """Launcher mount entries for a container's volumeMounts (subPath supported)."""
    mounts = []
    for vm in container.get("volumeMounts") or []:
        src = volumes.get(vm["name"])
        if src is None:
            raise VolumeError(f'container "{container.get("name")}": volumeMount "{vm["name"]}" has no volume')
        if vm.get("subPath"):
            src = src / vm["subPath"]
            if not src.exists():
                src.mkdir(parents=True, exist_ok=True)
        mounts.append({"source": str(src), "target": vm["mountPath"], "readOnly": bool(vm.get("readOnly")),
                       "file": src.is_file()})
    return mounts
