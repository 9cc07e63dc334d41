"""Template hashes for ``pod-template-hash`` (Deployments) and ``controller-revision-hash`` (DaemonSets).

Upstream's ``controller.ComputeHash`` feeds a deep print of the PodTemplateSpec and, when set, the
collision count (4 bytes little endian) to FNV-1a 32, then renders the decimal number through
``rand.SafeEncodeString`` (alphabet ``bcdfghjklmnpqrstvwxz2456789``, one character per digit byte), so
hashes look like ``7d4b9c8f6``. We hash canonical JSON instead of Go's deep print: stable across runs
and processes, same shape, not byte-identical to upstream's values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["fnv32a", "safe_encode", "template_hash"]

_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_ALPHANUMS[b % len(_ALPHANUMS)] for b in text.encode())


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += int(collision_count & 0xFFFFFFFF).to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))
