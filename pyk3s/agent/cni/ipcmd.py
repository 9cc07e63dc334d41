"""Run iproute2 (``ip``) and sysctl writes. Every call is a subprocess with a timeout, started and waited
for off the event loop (:mod:`pyk3s.agent.spawn`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pyk3s.agent.spawn import CommandTimeout, run_command

__all__ = ["POD_ROUTE_PROTO", "ROUTE_PROTO", "CniError", "ip", "ip_batch", "ip_json", "ip_sync", "write_sysctl"]

# Routes pyk3s writes to other nodes' pod CIDRs (host-gw) carry this protocol number, so they are told
# apart from every other route: only those are replaced, removed, or ignored by the overlap check.
ROUTE_PROTO = "201"
# Routes to this node's own pods (a /32 or /128 on each pod's veth) carry this one.
POD_ROUTE_PROTO = "202"


class CniError(RuntimeError):
    pass


async def ip(*args: str, netns: str | None = None, check: bool = True, timeout: float = 15.0) -> str:
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    try:
        res = await run_command(argv, timeout=timeout)
    except CommandTimeout:
        raise CniError(f"cni: {' '.join(argv)} timed out") from None
    if check and res.returncode != 0:
        raise CniError(f"cni: {' '.join(argv)}: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout.decode()


async def ip_batch(commands: list[str], netns: str | None = None, timeout: float = 15.0, *,
                   force: bool = False, check: bool = True) -> None:
    """Several ``ip`` commands in one process (``ip -batch -``); stops at the first failure, unless
    ``force``: then every command runs. ``check``: a failure raises :class:`CniError`."""
    argv = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else []) + ["-batch", "-"]
    try:
        res = await run_command(argv, input="\n".join(commands).encode() + b"\n", timeout=timeout)
    except CommandTimeout:
        raise CniError(f"cni: ip batch in {netns or 'host'} timed out") from None
    if check and res.returncode != 0:
        raise CniError(f"cni: ip batch in {netns or 'host'} {commands}: {res.stderr.decode(errors='replace').strip()}")


async def ip_json(*args: str, netns: str | None = None) -> list[dict]:
    out = await ip("-j", *args, netns=netns)
    return json.loads(out or "[]")


def ip_sync(*args: str, check: bool = False, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise CniError(f"cni: ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def write_sysctl(name: str, value: str) -> bool:
    """Write /proc/sys/<name with dots as slashes>; False when the knob does not exist."""
    path = Path("/proc/sys") / name.replace(".", "/")
    try:
        if path.read_text().strip() != value:
            path.write_text(value)
    except FileNotFoundError:
        return False
    return True
