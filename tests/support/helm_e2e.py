"""Helpers of the end-to-end tests of the packaged Traefik and its HelmChartConfig (real kubectl, real pods)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyk3s_server import REPO, ServerProcess

ROLL = 150  # seconds for a rollout on a loaded 2-core machine


def curl(*args: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-m", str(timeout), *args], capture_output=True, text=True,
                          timeout=timeout + 5)


def is_ready(p: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def traefik_pods(srv: ServerProcess) -> list[dict[str, Any]]:
    items = srv.kubectl("get", "pods", "-n", "kube-system", "-l", "app.kubernetes.io/name=traefik",
                        "-o", "json").json()["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def cmdline(p: dict[str, Any]) -> list[str]:
    pid = int(p["status"]["containerStatuses"][0]["containerID"].removeprefix("pyk3s://"))
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []  # a status not updated yet after a restart names a process that has gone


def settled(srv: ServerProcess, check: Callable[[dict[str, Any]], bool], count: int = 1) -> list[dict[str, Any]] | None:
    """The Traefik pods once exactly ``count`` run, all Ready and all passing ``check`` (a finished rollout)."""
    pods = traefik_pods(srv)
    if len(pods) == count and all(is_ready(p) and check(p) for p in pods):
        return pods
    return None


def chart(srv: ServerProcess, name: str = "traefik") -> dict[str, Any]:
    return srv.kubectl("get", "helmchart", "-n", "kube-system", name, "-o", "json").json()


def condition(srv: ServerProcess, kind: str) -> dict[str, Any]:
    return next((c for c in chart(srv).get("status", {}).get("conditions") or [] if c["type"] == kind), {})


def revision(srv: ServerProcess) -> int:
    return int(chart(srv).get("status", {}).get("revision") or 0)


def events(srv: ServerProcess, kind: str, name: str) -> list[dict[str, Any]]:
    return srv.kubectl("get", "events", "-n", "kube-system", "--field-selector",
                       f"involvedObject.kind={kind},involvedObject.name={name}", "-o", "json").json()["items"]


CONFIG = """apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata:
  name: traefik
  namespace: kube-system
spec:
  valuesContent: |-
{values}"""


def apply_config(srv: ServerProcess, values: str) -> None:
    body = CONFIG.format(values="".join(f"    {line}\n" for line in values.strip("\n").splitlines()))
    srv.kubectl("apply", "-f", "-", input=body)


def delete_config(srv: ServerProcess) -> None:
    srv.kubectl("delete", "helmchartconfig", "-n", "kube-system", "traefik", "--ignore-not-found")


def manifests_status(srv: ServerProcess) -> str:
    p = subprocess.run([sys.executable, "-m", "pyk3s", "manifests", "status", "--data-dir", str(srv.data_dir),
                        "--kubeconfig", str(srv.kubeconfig)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def has_args(*wanted: str) -> Callable[[dict[str, Any]], bool]:
    return lambda p: all(a in cmdline(p) for a in wanted)


def lacks_args(*unwanted: str) -> Callable[[dict[str, Any]], bool]:
    return lambda p: not any(a in cmdline(p) for a in unwanted)


def service_ports(srv: ServerProcess) -> dict[str, int]:
    svc = srv.kubectl("get", "svc", "-n", "kube-system", "traefik", "-o", "json").json()
    return {p["name"]: p["port"] for p in svc["spec"]["ports"]}


def svclb_containers(srv: ServerProcess) -> list[str]:
    items = srv.kubectl("get", "ds", "-n", "kube-system", "-l", "svccontroller.k3s.cattle.io/svcname=traefik",
                        "-o", "json").json()["items"]
    return [c["name"] for ds in items for c in ds["spec"]["template"]["spec"]["containers"]]


def connects(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=2):
            return True
    except OSError:
        return False


