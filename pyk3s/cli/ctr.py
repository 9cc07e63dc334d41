"""`pyk3s ctr ...`: ctr against the node's containerd, namespace k8s.io."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from pyk3s.agent.cri.tools import run_tool

    return run_tool("ctr", argv)
