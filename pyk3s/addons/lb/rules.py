"""The klipper-lb ruleset (pure): what the svclb container installs in its pod's network namespace.

Rules (specs/k3s.md section 2), as one nftables table per family instead of iptables chains:
packets arriving on SRC_PORT are DNAT-ed to each DEST_IP:DEST_PORT and masqueraded to the pod IP;
forwarding to the destination is accepted only from SRC_RANGES and dropped otherwise. With several
destinations of one family the last one wins, as with klipper-lb's ``iptables -I``.

The masquerade keeps source ports (no ``fully-random``), as klipper-lb's MASQUERADE does: a client
that reuses its port must reach the destination on the same 4-tuple again, or the destination's
TIME_WAIT entry for that tuple refuses the SYN by timestamp (PAWS) and the client waits a retransmit.

Every container of a svclb pod (one per Service port) shares the pod's network namespace, so each
owns a table of its own, named after its protocol and port: a container that restarts replaces its
own rules and never another container's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["LbConfig", "LbConfigError", "TABLE", "parse_env", "ruleset", "table_name"]

TABLE = "pyk3s_klipper"


class LbConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class LbConfig:
    src_port: int
    dest_proto: str
    dest_port: int
    dest_ips: tuple[str, ...]
    src_ranges: tuple[str, ...]


def _split(value: str) -> list[str]:
    return [p for p in value.replace(",", " ").split() if p]


def _port(env: dict[str, str], name: str) -> int:
    raw = env.get(name, "")
    try:
        port = int(raw)
    except ValueError:
        raise LbConfigError(f"klipper-lb: {name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise LbConfigError(f"klipper-lb: {name}={port} is outside 1-65535")
    return port


def parse_env(env: dict[str, str]) -> LbConfig:
    proto = env.get("DEST_PROTO", "TCP").upper()
    if proto not in ("TCP", "UDP"):
        raise LbConfigError(f"klipper-lb: DEST_PROTO={proto!r} is not supported (TCP or UDP)")
    ips = []
    for ip in _split(env.get("DEST_IPS", "")):
        try:
            ips.append(str(ipaddress.ip_address(ip)))
        except ValueError:
            raise LbConfigError(f"klipper-lb: DEST_IPS has {ip!r}, which is not an IP address") from None
    if not ips:
        raise LbConfigError("klipper-lb: DEST_IPS is empty; nothing to forward to")
    ranges = []
    for r in _split(env.get("SRC_RANGES", "0.0.0.0/0")):
        try:
            ranges.append(str(ipaddress.ip_network(r, strict=False)))
        except ValueError:
            raise LbConfigError(f"klipper-lb: SRC_RANGES has {r!r}, which is not a CIDR") from None
    return LbConfig(_port(env, "SRC_PORT"), proto, _port(env, "DEST_PORT"), tuple(ips), tuple(ranges or ["0.0.0.0/0"]))


def table_name(cfg: LbConfig) -> str:
    """The table one svclb container owns, e.g. ``pyk3s_klipper_tcp_8000``."""
    return f"{TABLE}_{cfg.dest_proto.lower()}_{cfg.src_port}"


def ruleset(cfg: LbConfig) -> str:
    """nft script text; ``delete table`` lines are prepended by the caller when the table exists."""
    proto = cfg.dest_proto.lower()
    table = table_name(cfg)
    out: list[str] = []
    for family, version in (("ip", 4), ("ip6", 6)):
        dests = [ip for ip in cfg.dest_ips if ipaddress.ip_address(ip).version == version]
        if not dests:
            continue
        dest = dests[-1]
        addr = "ip" if version == 4 else "ip6"
        ranges = [r for r in cfg.src_ranges if ipaddress.ip_network(r).version == version]
        target = f"{dest}:{cfg.dest_port}" if version == 4 else f"[{dest}]:{cfg.dest_port}"
        lines = [
            f"table {family} {table} {{",
            "  chain prerouting {",
            "    type nat hook prerouting priority dstnat; policy accept;",
            f"    {proto} dport {cfg.src_port} dnat to {target}",
            "  }",
            "  chain postrouting {",
            "    type nat hook postrouting priority srcnat; policy accept;",
            f"    {addr} daddr {dest} {proto} dport {cfg.dest_port} masquerade",
            "  }",
            "  chain forward {",
            "    type filter hook forward priority filter; policy accept;",
        ]
        if ranges:
            lines.append(f"    {addr} saddr {{ {', '.join(ranges)} }} {addr} daddr {dest} {proto} dport {cfg.dest_port} accept")
        lines += [f"    {addr} daddr {dest} {proto} dport {cfg.dest_port} drop", "  }", "}"]
        out.append("\n".join(lines))
    return "\n".join(out) + "\n"
