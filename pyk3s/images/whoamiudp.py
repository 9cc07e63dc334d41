"""``pyk3s whoamiudp``: the UDP echo of ``whoamitcp.py`` as a command of its own (traefik/whoamiudp)."""

from __future__ import annotations

from .whoamitcp import main_udp

__all__ = ["main"]

main = main_udp
