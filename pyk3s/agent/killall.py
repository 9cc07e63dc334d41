"""``pyk3s killall``: stop every pyk3s process and remove everything pyk3s put on the host.

Processes: container launchers and containers recorded under ``<data-dir>/agent/pods`` and any process
whose command line runs pyk3s (``python -m pyk3s …``, ``pyk3s …``), except this one and its parents;
the containerd pyk3s started, its shims and their containers (:mod:`pyk3s.agent.cri.killall`).
Then: network namespaces ``pk-*``, links ``pkv*``/``pyk3s*`` (and ``--bridge-name``), the service-CIDR
routes on those links, nftables tables ``pyk3s*`` (the service proxy's and the network policy one),
mounts under the data dir, and the empty mount points that earlier versions of the container launcher
created on the host (listed in ``<data-dir>/agent/mount-points``; the launcher now makes missing mount
points in the container's view alone).

With an explicit ``--data-dir`` the sweep is scoped to that installation (several clusters share a test
machine): only processes whose command line names the data dir, the netns/veths of pods recorded there,
the given bridges and their nftables tables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from pyk3s.agent.cni.podnet import netns_name, veth_name
from pyk3s.agent.cri.killall import stop_containerd
from pyk3s.agent.kubelet.kubelet import kill_leftover_containers
from pyk3s.agent.netpol.controller import netpol_table_for
from pyk3s.agent.overlay.vxlan import device_names
from pyk3s.agent.run import nft_table_for

__all__ = ["killall", "main"]

MOUNT_POINTS_RECORD = "mount-points"  # <data-dir>/agent/mount-points, written by earlier launchers


def _pyk3s_pids(only_with: bytes | None = None) -> list[int]:
    me = os.getpid()
    ancestors = {me}
    pid = me
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        ancestors.add(pid)
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in ancestors:
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a for a in argv if a]
        if any(a in (b"pyk3s", b"pyk3s.agent.kubelet.launch") or a.endswith(b"/pyk3s")
               or a.startswith(b"pyk3s.") for a in words[:4]):
            if b"pytest" in b" ".join(words[:3]):
                continue
            if only_with is not None and not any(only_with in a for a in words):
                continue
            out.append(int(d.name))
    return out


def _links(prefixes: tuple[str, ...]) -> list[str]:
    res = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True)
    try:
        links = json.loads(res.stdout or "[]")
    except ValueError:
        return []
    return [lk["ifname"] for lk in links if lk["ifname"].startswith(prefixes)]


def _recorded_uids(data_dir: Path) -> set[str]:
    agent = data_dir / "agent"
    uids = {d.name for d in (agent / "pods").glob("*") if d.is_dir()}
    for f in (agent / "ipam").glob("*/*"):
        if f.name[:1].isdigit():
            try:
                uids.add(f.read_text().strip())
            except OSError:
                pass
    return uids


def _mount_points_in_use() -> set[str]:
    """Mount points of every mount namespace on the machine (one process per namespace is read)."""
    seen_ns: set[str] = set()
    points: set[str] = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ns = os.readlink(d / "ns" / "mnt")
            if ns in seen_ns:
                continue
            seen_ns.add(ns)
            points.update(ln.split()[4] for ln in (d / "mountinfo").read_text().splitlines())
        except (OSError, IndexError):
            continue
    return points


def _remove_mount_points(record: Path) -> list[str]:
    """Mount points an earlier container launcher created on the host: empty ones go, deepest first."""
    try:
        paths = set(record.read_text().split("\n")) - {""}
    except OSError:
        return []
    removed = []
    busy = _mount_points_in_use()
    for p in sorted(paths, key=lambda x: x.count("/"), reverse=True):
        if p in busy:  # removing it would detach another cluster's container mount
            continue
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)  # only when empty: never removes content that is not ours
            elif os.path.isfile(p) and os.path.getsize(p) == 0:
                os.unlink(p)
            else:
                continue
            removed.append(p)
        except OSError:
            continue
    record.unlink(missing_ok=True)
    return removed


def killall(data_dir: Path, extra_links: tuple[str, ...] = (), kill_processes: bool = True,
            everything: bool = False) -> dict[str, list[str]]:
    """Remove pyk3s state; ``everything`` sweeps by name prefix, else only what ``data_dir`` recorded."""
    done: dict[str, list[str]] = {"processes": [], "netns": [], "links": [], "tables": [], "mounts": []}
    uids = _recorded_uids(data_dir)
    kill_leftover_containers(data_dir / "agent" / "pods")
    if kill_processes:
        pids = _pyk3s_pids(None if everything else str(data_dir).encode())
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
                done["processes"].append(str(pid))
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.1)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill_leftover_containers(data_dir / "agent" / "pods")
        done.update(stop_containerd(data_dir, everything))
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in res.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        # everything: every namespace the project names pk… (pods pk-…, dev-cluster nodes pkn…)
        if name.startswith("pk") if everything else name in {netns_name(u) for u in uids}:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            done["netns"].append(name)
    tunnels = tuple(d for b in extra_links for d in device_names(b).values())
    # everything: every link the project names pk… (pod veths, test and dev-cluster bridges and links)
    prefixes = ("pk", "pyk3s", *extra_links, *tunnels) if everything else \
        (*extra_links, *tunnels, *(veth_name(u) for u in uids))
    for link in _links(prefixes) if prefixes else []:
        subprocess.run(["ip", "link", "del", link], capture_output=True)  # routes on it go with it
        done["links"].append(link)
    res = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    try:
        tables = [t["table"] for t in json.loads(res.stdout or "{}").get("nftables", []) if "table" in t]
    except ValueError:
        tables = []
    for t in tables:
        ours = {nft_table_for(b) for b in extra_links} | {netpol_table_for(b) for b in extra_links}
        wanted = t["name"].startswith("pyk3s") if everything else t["name"] in ours
        if t["family"] in ("ip", "ip6", "inet") and wanted:
            subprocess.run(["nft", "delete", "table", t["family"], t["name"]], capture_output=True)
            done["tables"].append(f"{t['family']} {t['name']}")
    done["paths"] = _remove_mount_points(data_dir / "agent" / MOUNT_POINTS_RECORD)
    root = str(data_dir.resolve())
    mounts = [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()
              if ln.split()[1].startswith(root + "/")]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
        done["mounts"].append(m)
    return done


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pyk3s killall", description="stop pyk3s and remove its host state")
    parser.add_argument("--data-dir", "-d", default=None)
    parser.add_argument("--bridge-name", action="append", default=[])
    args = parser.parse_args(argv)
    explicit = args.data_dir or os.environ.get("K3S_DATA_DIR") or os.environ.get("PYK3S_DATA_DIR")
    data_dir = Path(explicit or "/var/lib/rancher/pyk3s")
    done = killall(data_dir, tuple(args.bridge_name), everything=not explicit)
    for what, items in done.items():
        if items:
            print(f"killall: removed {what}: {' '.join(items)}")
    return 0
