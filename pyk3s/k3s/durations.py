"""Go durations (``time.ParseDuration``: ``2m0s``, ``90s``, ``1h30m``, ``500ms``) as K3s's kubelet
arguments and CoreDNS's Corefile write them; the one reader of them outside the ingress."""

from __future__ import annotations

import re

__all__ = ["parse_go_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """A Go duration in seconds (``0`` alone needs no unit); ValueError otherwise."""
    s = text.strip()
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"invalid duration {text!r} (want e.g. 2m0s, 90s, 1h)")
    return total
