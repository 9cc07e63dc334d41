"""`pyk3s crictl ...`: crictl against the node's containerd."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from pyk3s.agent.cri.tools import run_tool

    return run_tool("crictl", argv)
