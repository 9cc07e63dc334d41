"""Where pyk3s keeps state and reads configuration, after K3s's layout (``/var/lib/rancher/k3s``,
``/etc/rancher/k3s``) with ``pyk3s`` in place of ``k3s``. A non-root user gets folders under ``~``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_config_path", "default_data_dir", "default_kubeconfig_path", "ensure_private_dir", "is_root"]


def is_root() -> bool:
    return os.geteuid() == 0


def default_data_dir() -> str:
    return "/var/lib/rancher/pyk3s" if is_root() else str(Path.home() / ".rancher" / "pyk3s")


def default_kubeconfig_path() -> str:
    return "/etc/rancher/pyk3s/pyk3s.yaml" if is_root() else str(Path.home() / ".kube" / "pyk3s.yaml")


def default_config_path() -> str:
    return "/etc/rancher/pyk3s/config.yaml"


def ensure_private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner may read (K3s keeps server and agent state 0700)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
