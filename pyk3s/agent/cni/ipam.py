"""host-local IPAM: one file per allocated address under ``<data-dir>/agent/ipam/<network>/``.

Like the CNI host-local plugin: the file name is the IP, its content the owner (pod UID); the
``last_reserved_ip`` file makes allocation round-robin so a just-freed address is not reused at once.
The network address, the gateway (.1) and the broadcast address are never handed out. An ``flock`` on
``lock`` serializes allocators across processes; the state survives agent restarts.
"""

from __future__ import annotations

import fcntl
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HostLocalIpam", "IpamExhausted"]


class IpamExhausted(RuntimeError):
    pass


class HostLocalIpam:
    def __init__(self, directory: Path, subnet: str) -> None:
        self.dir = Path(directory)
        self.subnet = ipaddress.ip_network(subnet, strict=False)
        self.gateway = self.subnet.network_address + 1
        self.dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.dir / "lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _owned(self) -> dict[str, str]:
        out = {}
        for p in self.dir.iterdir():
            try:
                ipaddress.ip_address(p.name)
            except ValueError:
                continue
            out[p.name] = p.read_text().strip()
        return out

    def lookup(self, owner: str) -> str | None:
        for ip, who in self._owned().items():
            if who == owner:
                return ip
        return None

    def allocate(self, owner: str) -> str:
        """The address already held by ``owner``, else the next free one after the last reserved."""
        with self._locked():
            owned = self._owned()
            for ip, who in owned.items():
                if who == owner:
                    return ip
            hosts = [h for h in self.subnet.hosts() if h != self.gateway]
            last_file = self.dir / "last_reserved_ip"
            start = 0
            if last_file.exists():
                try:
                    last = ipaddress.ip_address(last_file.read_text().strip())
                    start = next((i + 1 for i, h in enumerate(hosts) if h == last), 0)
                except ValueError:
                    start = 0
            for i in range(len(hosts)):
                cand = hosts[(start + i) % len(hosts)]
                if str(cand) not in owned:
                    (self.dir / str(cand)).write_text(owner)
                    last_file.write_text(str(cand))
                    return str(cand)
        raise IpamExhausted(f"cni: ipam: no free address in {self.subnet} for {owner}")

    def release(self, owner: str) -> str | None:
        with self._locked():
            for ip, who in self._owned().items():
                if who == owner:
                    (self.dir / ip).unlink(missing_ok=True)
                    return ip
        return None

    def owners(self) -> dict[str, str]:
        """ip -> owner for every allocation."""
        return self._owned()
