"""host-local IPAM: one file per allocated address under ``<data-dir>/agent/ipam/<network>/``.

Like the CNI host-local plugin: the file name is the IP, its content the owner (pod UID); the
``last_reserved_ip`` file makes allocation round-robin so a just-freed address is not reused at once.
The network address, the gateway (.1) and the broadcast address are never handed out. An ``flock`` on
``lock`` serializes allocators across processes; the state survives agent restarts.

A dual-stack node gives each pod one address per subnet (``extra_subnets``: the other family), all in
the same directory, with a ``last_reserved_ip.<n>`` file per further subnet as host-local keeps one per
range.
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
    def __init__(self, directory: Path, subnet: str, extra_subnets: tuple[str, ...] = ()) -> None:
        self.dir = Path(directory)
        self.subnet = ipaddress.ip_network(subnet, strict=False)
        self.subnets = [self.subnet, *(ipaddress.ip_network(s, strict=False) for s in extra_subnets)]
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

    def _owned(self, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None) -> dict[str, str]:
        out = {}
        for p in self.dir.iterdir():
            try:
                addr = ipaddress.ip_address(p.name)
            except ValueError:
                continue
            if subnet is not None and addr not in subnet:
                continue
            out[p.name] = p.read_text().strip()
        return out

    def lookup(self, owner: str) -> str | None:
        for ip, who in self._owned(self.subnet).items():
            if who == owner:
                return ip
        return None

    def allocate(self, owner: str) -> str:
        """The address already held by ``owner``, else the next free one after the last reserved."""
        return self.allocate_all(owner)[0]

    def allocate_all(self, owner: str) -> list[str]:
        """One address of each subnet for ``owner``, primary first (see :meth:`allocate`)."""
        with self._locked():
            out = [self._allocate_in(i, owner) for i in range(len(self.subnets))]
        return out

    def _allocate_in(self, index: int, owner: str) -> str:
        subnet = self.subnets[index]
        owned = self._owned(subnet)
        for ip, who in owned.items():
            if who == owner:
                return ip
        # hosts after the gateway; an IPv6 /64 is searched in its first 65,534 addresses only
        base = int(subnet.network_address)
        first = base + 2
        last = base + subnet.num_addresses - (2 if subnet.version == 4 else 1)
        last = min(last, first + 65533)
        span = last - first + 1
        last_file = self.dir / ("last_reserved_ip" if index == 0 else f"last_reserved_ip.{index}")
        start = 0
        try:
            prev = int(ipaddress.ip_address(last_file.read_text().strip()))
            if first <= prev <= last:
                start = prev - first + 1
        except (OSError, ValueError):
            start = 0
        for i in range(max(span, 0)):
            cand = str(ipaddress.ip_address(first + (start + i) % span))
            if cand not in owned:
                (self.dir / cand).write_text(owner)
                last_file.write_text(cand)
                return cand
        raise IpamExhausted(f"cni: ipam: no free address in {subnet} for {owner}")

    def release(self, owner: str) -> str | None:
        """Free every address of ``owner``; the primary one (or any) it held, None if none."""
        freed: list[str] = []
        with self._locked():
            for ip, who in self._owned().items():
                if who == owner:
                    (self.dir / ip).unlink(missing_ok=True)
                    freed.append(ip)
        primary = [ip for ip in freed if ipaddress.ip_address(ip) in self.subnet]
        return (primary or freed)[0] if freed else None

    def owners(self) -> dict[str, str]:
        """ip -> owner for every allocation."""
        return self._owned()
