"""Which runtime runs a pod, and the settings behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyk3s.agent.cri.runtime import CriRuntime, pick_runtime
from pyk3s.agent.cri.settings import RuntimeSettings, runtime_settings, state_dir_for

HANDLERS = {"pyk3s-process": "pyk3s-process", "runc": "runc", "fast": "crun"}


def pod(*images: str, rc: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}
    if rc:
        spec["runtimeClassName"] = rc
    return {"spec": spec}


def runtime(default: str = "process") -> CriRuntime:
    return CriRuntime(RuntimeSettings(default_runtime=default), "/run/x.sock")


def test_built_in_images_stay_processes_and_the_rest_go_to_containerd() -> None:
    assert pick_runtime(pod("pyk3s/whoami", "rancher/klipper-lb:v0.4"), runtime(), HANDLERS) == ("process", "")
    assert pick_runtime(pod("pyk3s/whoami", "nginx:1"), runtime(), HANDLERS) == ("cri", "")
    assert pick_runtime(pod("pyk3s/whoami"), runtime("containerd"), HANDLERS) == ("cri", "")


def test_without_containerd_everything_is_a_process_pod() -> None:
    assert pick_runtime(pod("nginx:1"), None, HANDLERS) == ("process", "")
    assert pick_runtime(pod("nginx:1", rc="runc"), None, HANDLERS) == ("process", "")


def test_runtime_class_name_decides() -> None:
    assert pick_runtime(pod("nginx:1", rc="pyk3s-process"), runtime(), HANDLERS) == ("process", "")
    assert pick_runtime(pod("pyk3s/whoami", rc="runc"), runtime(), HANDLERS) == ("cri", "runc")
    assert pick_runtime(pod("pyk3s/whoami", rc="fast"), runtime(), HANDLERS) == ("cri", "crun")


def Flags(**kw: object) -> dict[str, object]:  # noqa: N802 - reads like the parsed flags it stands for
    return kw


def test_runtime_settings_from_flags() -> None:
    s = runtime_settings(Flags(container_runtime="containerd", default_runtime="containerd",
                               container_runtime_endpoint="unix:///run/x.sock", pause_image="p:1",
                               disable_default_registry_endpoint=True))
    assert s.required and s.enabled and s.endpoint == "unix:///run/x.sock" and s.pause_image == "p:1"
    assert s.disable_default_registry_endpoint and s.default_runtime == "containerd"
    assert not runtime_settings(Flags(container_runtime="none")).enabled
    with pytest.raises(ValueError, match="--default-runtime"):
        runtime_settings(Flags(default_runtime="docker"))


def test_state_dir_is_per_installation() -> None:
    assert state_dir_for(Path("/var/lib/rancher/pyk3s")) == Path("/run/pyk3s/containerd")
    a, b = state_dir_for(Path("/tmp/a")), state_dir_for(Path("/tmp/b"))
    assert a != b and a.parent == Path("/run/pyk3s") and len(str(a / "containerd.sock")) < 100


def test_crictl_and_ctr_point_at_the_nodes_containerd(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyk3s.agent.cri import tools

    monkeypatch.setattr(tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    argv, env = tools.tool_argv("ctr", ["images", "ls"], {"PYK3S_DATA_DIR": "/var/lib/rancher/pyk3s"})
    assert argv == ["/usr/bin/ctr", "images", "ls"]
    assert env["CONTAINERD_ADDRESS"] == "/run/pyk3s/containerd/containerd.sock"
    assert env["CONTAINERD_NAMESPACE"] == "k8s.io"
    _, env = tools.tool_argv("crictl", ["ps"], {"CONTAINER_RUNTIME_ENDPOINT": "unix:///x.sock"})
    assert env["CONTAINER_RUNTIME_ENDPOINT"] == "unix:///x.sock" and env["IMAGE_SERVICE_ENDPOINT"] == "unix:///x.sock"
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="cri-tools"):
        tools.tool_argv("crictl", [], {})
