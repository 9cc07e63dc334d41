"""``pyk3s killall``'s part for containerd: the containerd pyk3s started (found by its ``--state`` under
``/run/pyk3s/``), its shims and their containers, the rootfs and sandbox mounts, the sandbox network
namespaces the ``pyk3s`` CNI plugin recorded, and the state directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pyk3s.agent.cri.settings import RUN_DIR, ContainerdPaths

__all__ = ["stop_containerd"]


def _procs() -> list[tuple[int, int, list[str]]]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (d / "cmdline").read_bytes().split(b"\0") if a]
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if argv:
            out.append((int(d.name), ppid, argv))
    return out


def _ours(argv: list[str], states: list[str]) -> str:
    """``containerd`` / ``shim`` when the process belongs to one of ``states``, else ``""``."""
    prog = os.path.basename(argv[0])
    if prog == "containerd":
        for flag in ("--state", "--address"):
            if flag in argv[:-1] and any(argv[argv.index(flag) + 1].startswith(s) for s in states):
                return "containerd"
    if prog.startswith("containerd-shim"):
        for flag in ("-address", "--address"):
            if flag in argv[:-1] and any(argv[argv.index(flag) + 1].startswith(s) for s in states):
                return "shim"
    return ""


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.05)


def stop_containerd(data_dir: Path, everything: bool) -> dict[str, list[str]]:
    done: dict[str, list[str]] = {"containerd": [], "containers": [], "cni-netns": [], "runtime-mounts": []}
    paths = ContainerdPaths(data_dir)
    if everything:
        states = [str(p) for p in RUN_DIR.glob("containerd*")] if RUN_DIR.is_dir() else []
    else:
        states = [str(paths.state)]
    states = [s.rstrip("/") + suffix for s in states for suffix in ("/", "")]
    procs = _procs()
    daemons = [pid for pid, _, argv in procs if _ours(argv, states) == "containerd"]
    shims = [pid for pid, _, argv in procs if _ours(argv, states) == "shim"]
    containers = [pid for pid, ppid, _ in procs if ppid in shims]
    # containerd first, so it restarts nothing; then each container's first process (its PID namespace
    # goes with it), then the shims
    for group, sig in ((daemons, signal.SIGTERM), (containers, signal.SIGKILL), (shims, signal.SIGKILL)):
        _kill(group, sig)
        _wait_gone(group, 5)
        _kill(group, signal.SIGKILL)
    done["containerd"] = [str(p) for p in daemons + shims]
    done["containers"] = [str(p) for p in containers]
    records = paths.agent / "cni"
    for rec in sorted(records.glob("*.json")) if records.is_dir() else []:
        try:
            netns = json.loads(rec.read_text()).get("netns", "")
        except (OSError, ValueError):
            netns = ""
        if netns and Path(netns).exists():
            subprocess.run(["ip", "netns", "del", Path(netns).name], capture_output=True)
            done["cni-netns"].append(Path(netns).name)
        rec.unlink(missing_ok=True)
    roots = tuple(s.rstrip("/") + "/" for s in states) + (str(paths.root) + "/",)
    mounts = [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()
              if ln.split()[1].startswith(roots)]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
        done["runtime-mounts"].append(m)
    for s in {s.rstrip("/") for s in states}:
        if Path(s).is_dir() and Path(s).parent == RUN_DIR:
            shutil.rmtree(s, ignore_errors=True)
    return done
