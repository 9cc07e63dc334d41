"""The container-runtime settings of a node and the file layout pyk3s gives containerd (K3s's layout
with ``pyk3s`` for ``k3s``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyk3s.agent.cri.imagegc import ImageGcPolicy
from pyk3s.k3s.durations import parse_go_duration

__all__ = ["DEFAULT_PAUSE_IMAGE", "DEFAULT_REGISTRIES", "ContainerdPaths", "RuntimeSettings", "state_dir_for"]

DEFAULT_PAUSE_IMAGE = "docker.io/pyk3s/pause:3.10"
DEFAULT_REGISTRIES = "/etc/rancher/pyk3s/registries.yaml"
DEFAULT_DATA_DIR = "/var/lib/rancher/pyk3s"
RUN_DIR = Path("/run/pyk3s")


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """``endpoint``: an external CRI socket (``--container-runtime-endpoint``); empty: pyk3s runs its own
    containerd when the binary is on PATH. ``default_runtime``: ``process`` runs built-in images as host
    processes, ``containerd`` runs every pod under containerd."""
    endpoint: str = ""
    pause_image: str = DEFAULT_PAUSE_IMAGE
    private_registry: str = DEFAULT_REGISTRIES
    default_runtime: str = "process"
    disable_default_registry_endpoint: bool = False
    snapshotter: str = "overlayfs"
    enabled: bool = True            # --container-runtime=none keeps only the process runtime
    required: bool = False          # --container-runtime=containerd: no containerd is an error, not a fallback
    image_gc: ImageGcPolicy = ImageGcPolicy()   # --kubelet-arg image-gc-*

    @property
    def mode(self) -> str:
        """``--container-runtime`` as given: auto, containerd or none."""
        return "none" if not self.enabled else "containerd" if self.required else "auto"


def state_dir_for(data_dir: Path) -> Path:
    """``/run/pyk3s/containerd`` for the default data dir; another installation on the same machine gets
    a directory of its own."""
    if str(data_dir).rstrip("/") == DEFAULT_DATA_DIR:
        return RUN_DIR / "containerd"
    return RUN_DIR / ("containerd-" + hashlib.sha256(str(data_dir).encode()).hexdigest()[:8])


@dataclass(frozen=True, slots=True)
class ContainerdPaths:
    data_dir: Path

    @property
    def agent(self) -> Path:
        return self.data_dir / "agent"

    @property
    def root(self) -> Path:
        return self.agent / "containerd"

    @property
    def state(self) -> Path:
        return state_dir_for(self.data_dir)

    @property
    def socket(self) -> Path:
        return self.state / "containerd.sock"

    @property
    def config(self) -> Path:
        return self.agent / "etc" / "containerd" / "config.toml"

    @property
    def certs_d(self) -> Path:
        return self.agent / "etc" / "containerd" / "certs.d"

    @property
    def log(self) -> Path:
        return self.root / "containerd.log"

    @property
    def cni_bin(self) -> Path:
        return self.agent / "bin"

    @property
    def cni_conf(self) -> Path:
        return self.agent / "etc" / "cni" / "net.d"

    @property
    def images(self) -> Path:
        return self.agent / "images"


CONTAINER_RUNTIME_MODES = ("auto", "containerd", "none")
# the kubelet flags pyk3s's kubelet takes through --kubelet-arg (name -> ImageGcPolicy field, parser)
KUBELET_ARGS: dict[str, tuple[str, Any]] = {
    "image-gc-high-threshold": ("high_threshold", int),
    "image-gc-low-threshold": ("low_threshold", int),
    "image-minimum-gc-age": ("minimum_age", parse_go_duration),
}


def image_gc_policy(kubelet_args: Any) -> ImageGcPolicy:
    """``--kubelet-arg`` values (``name=value``, K3s's form; a leading ``--`` is accepted); ValueError
    names an argument pyk3s's kubelet does not take or a value it cannot use."""
    values: dict[str, Any] = {}
    for arg in kubelet_args or ():
        name, eq, value = str(arg).lstrip("-").partition("=")
        if name not in KUBELET_ARGS:
            raise ValueError(f"--kubelet-arg {arg!r}: pyk3s's kubelet does not take {name!r} "
                             f"(it takes {', '.join(KUBELET_ARGS)})")
        if not eq:
            raise ValueError(f"--kubelet-arg {arg!r}: want {name}=VALUE")
        field_name, parse = KUBELET_ARGS[name]
        try:
            values[field_name] = parse(value)
        except ValueError:
            raise ValueError(f"--kubelet-arg {arg!r}: invalid value {value!r}") from None
    return ImageGcPolicy(**values)
DEFAULT_RUNTIMES = ("process", "containerd")


def runtime_settings(flags: Mapping[str, Any]) -> RuntimeSettings:
    """The settings from parsed agent flag values (``container_runtime_endpoint``, ``pause_image``, …);
    ValueError for a value out of range."""
    def get(name: str, default: object = None) -> object:
        value = flags.get(name)
        return default if value is None else value

    mode = str(get("container_runtime") or "auto")
    if mode not in CONTAINER_RUNTIME_MODES:
        raise ValueError(f"--container-runtime {mode!r}: want one of {', '.join(CONTAINER_RUNTIME_MODES)}")
    default_runtime = str(get("default_runtime") or "process")
    if default_runtime not in DEFAULT_RUNTIMES:
        raise ValueError(f"--default-runtime {default_runtime!r}: want one of {', '.join(DEFAULT_RUNTIMES)}")
    return RuntimeSettings(
        endpoint=str(get("container_runtime_endpoint") or ""),
        pause_image=str(get("pause_image") or DEFAULT_PAUSE_IMAGE),
        private_registry=str(get("private_registry") or DEFAULT_REGISTRIES),
        default_runtime=default_runtime,
        disable_default_registry_endpoint=bool(get("disable_default_registry_endpoint", False)),
        snapshotter=str(get("snapshotter") or "overlayfs"),
        enabled=mode != "none",
        required=mode == "containerd",
        image_gc=image_gc_policy(flags.get("kubelet_arg")))
