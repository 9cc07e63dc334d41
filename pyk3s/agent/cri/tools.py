"""``pyk3s crictl`` and ``pyk3s ctr``: run the tools against the node's containerd, as ``k3s crictl``
and ``k3s ctr`` do (the socket from the data dir, the ``k8s.io`` namespace for ctr)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pyk3s.agent.cri.settings import DEFAULT_DATA_DIR, ContainerdPaths

__all__ = ["run_tool"]

HINTS = {"crictl": "install cri-tools (crictl) to use it", "ctr": "install containerd (it ships ctr)"}


def _socket(environ: dict[str, str]) -> str:
    data_dir = environ.get("PYK3S_DATA_DIR") or environ.get("K3S_DATA_DIR") or DEFAULT_DATA_DIR
    return str(ContainerdPaths(Path(data_dir)).socket)


def tool_argv(tool: str, argv: list[str], environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment to run; raises FileNotFoundError when the tool is missing."""
    path = shutil.which(tool)
    if path is None:
        raise FileNotFoundError(f"pyk3s {tool}: {tool} is not on PATH; {HINTS[tool]}")
    env = dict(environ)
    if tool == "crictl":
        endpoint = env.get("CONTAINER_RUNTIME_ENDPOINT") or f"unix://{_socket(environ)}"
        env.setdefault("CONTAINER_RUNTIME_ENDPOINT", endpoint)
        env.setdefault("IMAGE_SERVICE_ENDPOINT", endpoint)
    else:
        env.setdefault("CONTAINERD_ADDRESS", _socket(environ))
        env.setdefault("CONTAINERD_NAMESPACE", "k8s.io")
    return [path, *argv], env


def run_tool(tool: str, argv: list[str]) -> int:
    try:
        args, env = tool_argv(tool, argv, dict(os.environ))
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    os.execve(args[0], args, env)
    return 0  # not reached
