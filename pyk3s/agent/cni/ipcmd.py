"""Run iproute2 (``ip``) and sysctl writes. Every call is a subprocess with a timeout, never the loop."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

__all__ = ["ROUTE_PROTO", "CniError", "ip", "ip_batch", "ip_json", "ip_sync", "write_sysctl"]

# Routes pyk3s writes to other nodes' pod CIDRs (host-gw) carry this protocol number, so they are told
# apart from every other route: only those are replaced, removed, or ignored by the overlap check.
ROUTE_PROTO = "201"


class CniError(RuntimeError):
    pass


async def ip(*args: str, netns: str | None = None, check: bool = True, timeout: float = 15.0) -> str:
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CniError(f"cni: {' '.join(argv)} timed out") from None
    if check and proc.returncode != 0:
        raise CniError(f"cni: {' '.join(argv)}: {err.decode(errors='replace').strip()}")
    return out.decode()


async def ip_batch(commands: list[str], netns: str | None = None, timeout: float = 15.0) -> None:
    """Several ``ip`` commands in one process (``ip -batch -``); stops at the first failure."""
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate("\n".join(commands).encode() + b"\n"), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CniError(f"cni: ip batch in {netns or 'host'} timed out") from None
    if proc.returncode != 0:
        raise CniError(f"cni: ip batch in {netns or 'host'} {commands}: {err.decode(errors='replace').strip()}")


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
