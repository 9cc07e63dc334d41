"""Volumes as the kubelet makes them: the mount points of volumes nested inside another volume, and the
service account token readable by the pod's one user (fsUser) and its fsGroup."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pyk3s.agent.kubelet.volumes import (
    VolumeSources,
    fs_group,
    fs_user,
    nested_mountpoints,
    prepare_volumes,
    service_account_volume,
)

POD = {"metadata": {"name": "dns", "namespace": "kube-system", "uid": "u1"},
       "spec": {"containers": [{"name": "c", "volumeMounts": [
           {"name": "config", "mountPath": "/etc/coredns", "readOnly": True},
           {"name": "custom", "mountPath": "/etc/coredns/custom", "readOnly": True},
           {"name": "deeper", "mountPath": "/etc/coredns/custom/more"},
           {"name": "other", "mountPath": "/etc/corednsx"}]}],
                "initContainers": [{"name": "i", "volumeMounts": [
                    {"name": "config", "mountPath": "/cfg/"}, {"name": "scratch", "mountPath": "/cfg/tmp/a"}]}],
                "volumes": [{"name": "config", "configMap": {"name": "coredns"}},
                            {"name": "custom", "emptyDir": {}}]}}


def test_nested_mount_points_are_the_first_level_below_each_mount() -> None:
    assert nested_mountpoints(POD, "config") == ["tmp/a", "custom"]
    assert nested_mountpoints(POD, "custom") == ["more"]
    assert nested_mountpoints(POD, "other") == []


async def test_prepared_volumes_hold_their_nested_mount_points(tmp_path: Path) -> None:
    async def config_map(ns: str, name: str) -> dict | None:
        return {"data": {"Corefile": ".:53 {}\n"}}

    async def none(*_: object) -> None:
        return None

    sources = VolumeSources(config_map, none, none, "")  # type: ignore[arg-type]
    vols = await prepare_volumes(POD, tmp_path, sources)
    assert (vols["config"] / "Corefile").read_text() == ".:53 {}\n"
    assert (vols["config"] / "custom").is_dir() and (vols["config"] / "tmp" / "a").is_dir()
    assert (vols["custom"] / "more").is_dir()
    assert stat.S_IMODE(vols["custom"].stat().st_mode) == 0o777   # an emptyDir is world-writable


def test_fs_user_is_the_one_user_of_every_container() -> None:
    def pod(psc: dict, *users: int | None, init: int | None = None) -> dict:
        cs = [{"name": f"c{i}", "securityContext": {} if u is None else {"runAsUser": u}} for i, u in enumerate(users)]
        inits = [] if init is None else [{"name": "i", "securityContext": {"runAsUser": init}}]
        return {"spec": {"securityContext": psc, "containers": cs, "initContainers": inits}}
    assert fs_user(pod({"runAsUser": 65532}, None, None)) == 65532
    assert fs_user(pod({}, 1000, 1000)) == 1000
    assert fs_user(pod({}, 1000, None)) is None            # one runs as the image's user
    assert fs_user(pod({"runAsUser": 5}, 1000, None)) is None
    assert fs_user(pod({}, 1000, init=0)) is None
    assert fs_group({"spec": {"securityContext": {"fsGroup": 2000}}}) == 2000 and fs_group({"spec": {}}) is None


async def _token_volume(tmp_path: Path, psc: dict) -> Path:
    async def token(ns: str, sa: str, exp: int) -> str:
        return "tok"

    async def none(*_: object) -> None:
        return None

    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
           "spec": {"securityContext": psc, "containers": [{"name": "c"}], "volumes": [service_account_volume()]}}
    vols = await prepare_volumes(pod, tmp_path, VolumeSources(none, none, token, "CA"))  # type: ignore[arg-type]
    return vols["pyk3s-api-access"] / "token"


async def test_token_file_mode_follows_the_kubelet(tmp_path: Path) -> None:
    path = await _token_volume(tmp_path, {})
    assert path.read_text() == "tok" and stat.S_IMODE(path.stat().st_mode) == 0o644
    if os.geteuid() == 0:
        path = await _token_volume(tmp_path / "b", {"runAsUser": 65532, "fsGroup": 2000})
        st = path.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65532, 2000, 0o640)


async def test_preparing_again_keeps_each_volume_directory(tmp_path: Path) -> None:
    """An agent restart prepares the volumes of a pod whose containers are still running: the bind-mounted
    directories stay the same ones and their files are brought up to date."""
    data = {"Corefile": "old\n", "gone": "x"}

    async def config_map(ns: str, name: str) -> dict | None:
        return {"data": dict(data)}

    async def none(*_: object) -> None:
        return None

    sources = VolumeSources(config_map, none, none, "")  # type: ignore[arg-type]
    first = await prepare_volumes(POD, tmp_path, sources)
    inode = first["config"].stat().st_ino
    data.pop("gone")
    data["Corefile"] = "new\n"
    again = await prepare_volumes(POD, tmp_path, sources)
    assert again["config"].stat().st_ino == inode
    assert (again["config"] / "Corefile").read_text() == "new\n" and not (again["config"] / "gone").exists()
    assert (again["config"] / "custom").is_dir() and not [n for n in os.listdir(tmp_path / "volumes") if n.startswith(".")]
