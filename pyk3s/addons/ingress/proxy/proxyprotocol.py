"""PROXY protocol v1 and v2 (haproxy's proxy-protocol.txt), the way Traefik reads and writes it
(pires/go-proxyproto): sans-IO, bytes in, header out.

Reading (entry points with ``proxyProtocol``): :func:`read_header` on the first bytes of a connection
gives a :class:`ProxyHeader` (its ``size`` bytes are to be consumed), :data:`NO_HEADER` when the
connection does not start with a PROXY signature, :data:`NEED_MORE` while a started header is
incomplete, or ``ValueError`` for a malformed one (the connection is closed). From a trusted peer the
header's source address replaces the peer's; from any other peer the header is still read and dropped
and the real address is kept (go-proxyproto's IGNORE policy, which Traefik applies to untrusted peers).
``LOCAL`` (v2) and ``UNKNOWN`` (v1) headers keep the real addresses.

Writing (services with ``proxyProtocol`` / a ServersTransportTCP's): :func:`build_header`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

__all__ = ["ProxyHeader", "NO_HEADER", "NEED_MORE", "read_header", "build_header", "SIGNATURE_V2", "MAX_V1"]

SIGNATURE_V2: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX: Final = b"PROXY "
MAX_V1: Final = 107  # "PROXY" line including CRLF, spec section 2.1
MAX_V2: Final = 16 + 65535


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    size: int  # bytes of the header on the wire
    source: tuple[str, int] | None  # None: LOCAL / UNKNOWN, keep the connection's own addresses
    destination: tuple[str, int] | None = None
    version: int = 1


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NO_HEADER: Final = _Marker("NO_HEADER")
NEED_MORE: Final = _Marker("NEED_MORE")


def _ip(text: str, version: int, where: str) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"PROXY v1: invalid {where} address {text!r}") from None
    if addr.version != version:
        raise ValueError(f"PROXY v1: {where} address {text!r} is not IPv{version}")
    return str(addr)


def _port(text: str, where: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
        raise ValueError(f"PROXY v1: invalid {where} port {text!r}")
    return int(text)


def _read_v1(data: bytes) -> ProxyHeader | _Marker:
    end = data.find(b"\r\n", 0, MAX_V1)
    if end < 0:
        if len(data) >= MAX_V1 or b"\n" in data[:MAX_V1]:
            raise ValueError("PROXY v1: header line without CRLF within 107 bytes")
        return NEED_MORE
    parts = data[:end].decode("latin-1").split(" ")
    if len(parts) < 2:
        raise ValueError("PROXY v1: missing protocol")
    proto = parts[1]
    if proto == "UNKNOWN":
        return ProxyHeader(end + 2, None, None, 1)
    if proto not in ("TCP4", "TCP6"):
        raise ValueError(f"PROXY v1: unknown protocol {proto!r}")
    if len(parts) != 6:
        raise ValueError("PROXY v1: expected 6 fields")
    version = 4 if proto == "TCP4" else 6
    src = _ip(parts[2], version, "source")
    dst = _ip(parts[3], version, "destination")
    return ProxyHeader(end + 2, (src, _port(parts[4], "source")), (dst, _port(parts[5], "destination")), 1)


def _read_v2(data: bytes) -> ProxyHeader | _Marker:
    if len(data) < 16:
        return NEED_MORE
    ver_cmd, fam, length = data[12], data[13], int.from_bytes(data[14:16], "big")
    if ver_cmd >> 4 != 2:
        raise ValueError(f"PROXY v2: unsupported version {ver_cmd >> 4}")
    cmd = ver_cmd & 0x0F
    if cmd not in (0, 1):
        raise ValueError(f"PROXY v2: unsupported command {cmd}")
    if len(data) < 16 + length:
        return NEED_MORE
    size = 16 + length
    if cmd == 0:  # LOCAL: health check of the proxy itself
        return ProxyHeader(size, None, None, 2)
    body = data[16:size]
    family, transport = fam >> 4, fam & 0x0F
    if transport not in (1, 2):  # STREAM / DGRAM; UNSPEC keeps the connection's addresses
        if transport == 0 and family == 0:
            return ProxyHeader(size, None, None, 2)
        raise ValueError(f"PROXY v2: unsupported transport {transport}")
    if family == 1:
        if length < 12:
            raise ValueError("PROXY v2: address block too short for IPv4")
        src, dst = str(ipaddress.IPv4Address(body[0:4])), str(ipaddress.IPv4Address(body[4:8]))
        sport, dport = struct.unpack("!HH", body[8:12])
    elif family == 2:
        if length < 36:
            raise ValueError("PROXY v2: address block too short for IPv6")
        src, dst = str(ipaddress.IPv6Address(body[0:16])), str(ipaddress.IPv6Address(body[16:32]))
        sport, dport = struct.unpack("!HH", body[32:36])
    elif family == 0:
        return ProxyHeader(size, None, None, 2)
    else:
        raise ValueError(f"PROXY v2: unsupported address family {family}")
    return ProxyHeader(size, (src, sport), (dst, dport), 2)


def read_header(data: bytes) -> ProxyHeader | _Marker:
    """The PROXY header at the start of ``data`` (see the module docstring)."""
    if not data:
        return NEED_MORE
    if data[0] == SIGNATURE_V2[0]:
        n = min(len(data), 12)
        if data[:n] != SIGNATURE_V2[:n]:
            return NO_HEADER
        return NEED_MORE if n < 12 else _read_v2(data)
    if data[0] == _V1_PREFIX[0]:
        n = min(len(data), 6)
        if data[:n] != _V1_PREFIX[:n]:
            return NO_HEADER
        return NEED_MORE if n < 6 else _read_v1(data)
    return NO_HEADER


def build_header(version: int, source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A v1 or v2 PROXY header for a proxied TCP connection (IPv4-mapped addresses written as IPv4)."""
    def norm(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        return ip

    src, dst = norm(source[0]), norm(destination[0])
    if src.version != dst.version:
        # mixed families (a v4 client on a dual-stack listener): both written in the source's family
        dst = ipaddress.ip_address("0.0.0.0") if src.version == 4 else ipaddress.ip_address("::")
    if version == 1:
        proto = "TCP4" if src.version == 4 else "TCP6"
        return f"PROXY {proto} {src} {dst} {source[1]} {destination[1]}\r\n".encode()
    if src.version == 4:
        body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
        fam = 0x11
    else:
        body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
        fam = 0x21
    return SIGNATURE_V2 + bytes((0x21, fam)) + len(body).to_bytes(2, "big") + body
