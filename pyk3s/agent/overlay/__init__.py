"""Pod traffic between nodes: flannel's backends, fed by Node objects.

Layout, from the bottom up:

* ``model``     annotations flannel publishes on Nodes, peers, problems and plans (pure)
* ``underlay``  the interface and addresses the tunnel uses; how a peer address is reached
* ``backend``   the interface every backend has, and the node-local facts it gets
* ``vxlan``, ``hostgw``, ``none``  the backends (``BACKENDS`` below)
* ``kernel``    plans applied to routes, neighbours and forwarding entries, as a difference
* ``sync``      the loop: Nodes -> peers -> plan -> kernel, this node's annotations, events
* ``config``    ``--flannel-*`` settings and the agent's start-up helper

A new backend is a class with the :class:`~.backend.OverlayBackend` methods and a row in ``BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .backend import LocalNode, OverlayBackend
from .hostgw import HostGwBackend
from .none import NoneBackend
from .vxlan import VxlanBackend

__all__ = ["BACKENDS", "OverlayBackend", "LocalNode", "make_backend"]

BACKENDS: dict[str, Callable[..., Any]] = {
    "vxlan": VxlanBackend,
    "host-gw": HostGwBackend,
    "none": NoneBackend,
}


def make_backend(name: str, bridge: str) -> OverlayBackend:
    if name not in BACKENDS:
        raise ValueError(f"--flannel-backend {name!r}: supported values: {', '.join(BACKENDS)}")
    if name == "vxlan":
        return VxlanBackend(bridge)
    backend: OverlayBackend = BACKENDS[name]()
    return backend
