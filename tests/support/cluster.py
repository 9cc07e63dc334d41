"""The multi-node test cluster (underlay bridge + one network namespace per node), shared with
`pyk3s dev cluster`: see :mod:`pyk3s.cli.dev` for the layout and the teardown rules."""

from __future__ import annotations

from pyk3s.cli.dev import Cluster, KubectlResult, Node, free_underlay

__all__ = ["Cluster", "KubectlResult", "Node", "free_underlay"]
