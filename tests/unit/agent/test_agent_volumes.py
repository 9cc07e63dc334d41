"""Volumes: the mount points of volumes nested inside another volume are made in it, as the kubelet does."""

from __future__ import annotations

from pathlib import Path

from pyk3s.agent.kubelet.volumes import VolumeSources, nested_mountpoints, prepare_volumes

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
