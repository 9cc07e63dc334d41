"""NetworkPolicy in the map: the reachability matrix of a namespace's pods and the verdict for one
connection, from ``pyk3s netpol``'s evaluator."""

from __future__ import annotations

from typing import Any

from .hops import INFO, Hop
from .objects import Obj
from .state import MapState

__all__ = ["policies_view", "policy_verdict"]

UNAVAILABLE = "this build has no NetworkPolicy evaluator"


def policies_view(state: MapState, namespaces: list[str], port: str) -> dict[str, Any]:
    del state, namespaces, port
    return {"available": False, "reason": UNAVAILABLE}


def policy_verdict(state: MapState, src: Obj, dst: Obj, protocol: str, port: int) -> tuple[Hop, dict[str, Any] | None]:
    del state, src, dst, protocol, port
    return Hop("policy", "NetworkPolicy", INFO, ("not evaluated: this build has no NetworkPolicy evaluator",)), None
