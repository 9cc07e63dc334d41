"""`pyk3s netpol explain FROM TO [PORT/PROTO]` and `pyk3s netpol matrix -n NS...`: what the cluster's
NetworkPolicies allow, from the same evaluation the agents compile into nftables.

* ``explain``: FROM and TO are pods (``ns/name``) or addresses. Prints whether a new connection is
  allowed, which policies isolate each side, and which rule allows it (or that none does, with the
  rules that match the peer but not the port). PORT/PROTO defaults to 80/TCP; ``icmp`` probes ICMP.
* ``matrix``: every pod of the given namespaces to every other, per ``--port`` (repeatable, default
  80/TCP), read from the allow sets the agents program.

Reads Pods, Namespaces, NetworkPolicies and Nodes with the kubeconfig (``--kubeconfig``, else
``$KUBECONFIG``, else /etc/rancher/pyk3s/pyk3s.yaml). Exit status: 0 allowed (explain) or printed
(matrix), 1 denied, 2 usage or API error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from pyk3s.k3s.paths import default_kubeconfig_path
from pyk3s.netpol.cluster import cluster_of, matrix_pods, parse_port
from pyk3s.netpol.evaluate import ClusterView, evaluate
from pyk3s.netpol.matrix import build_index, reachability, render

__all__ = ["load_cluster", "main", "parse_port"]


async def load_cluster(kubeconfig: str | None) -> ClusterView:
    from pyk3s.client import Client

    async with Client.from_env(kubeconfig) as client:
        pods, nss, pols, nodes = await asyncio.gather(
            client.resource("v1", "pods").list(), client.resource("v1", "namespaces").list(),
            client.resource("networking.k8s.io/v1", "networkpolicies").list(), client.resource("v1", "nodes").list())
    return cluster_of(pods.get("items") or [], nss.get("items") or [], pols.get("items") or [],
                      nodes.get("items") or [])


def _kubeconfig(given: str | None) -> str | None:
    if given or os.environ.get("KUBECONFIG"):
        return given
    path = default_kubeconfig_path()
    return path if Path(path).exists() else None


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pyk3s netpol", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("explain", help="is a connection allowed, and which policy rule decides")
    ex.add_argument("src", metavar="FROM", help="ns/name of a pod, or an address")
    ex.add_argument("dst", metavar="TO", help="ns/name of a pod, or an address")
    ex.add_argument("port", metavar="PORT/PROTO", nargs="?", default="80/TCP")
    ex.add_argument("--json", action="store_true")
    mx = sub.add_parser("matrix", help="reachability of every pod of the namespaces to every other")
    mx.add_argument("-n", "--namespace", action="append", required=True, help="namespace (repeatable)")
    mx.add_argument("--port", action="append", help="PORT/PROTO or icmp (repeatable; default 80/TCP)")
    mx.add_argument("--json", action="store_true")
    for p in (ex, mx):
        p.add_argument("--kubeconfig", default=None)
    a = ap.parse_args(argv)
    try:
        ports = [parse_port(p) for p in ([a.port] if a.cmd == "explain" else (a.port or ["80/TCP"]))]
    except ValueError as err:
        print(f"pyk3s netpol: {err}", file=sys.stderr)
        return 2
    try:
        cluster = asyncio.run(load_cluster(_kubeconfig(a.kubeconfig)))
    except Exception as err:  # noqa: BLE001 - any API or kubeconfig failure ends the command with its message
        print(f"pyk3s netpol: cannot read the cluster: {err}", file=sys.stderr)
        return 2
    if a.cmd == "explain":
        try:
            src, dst = cluster.endpoint(a.src), cluster.endpoint(a.dst)
        except KeyError as err:
            print(f"pyk3s netpol: {err.args[0]}", file=sys.stderr)
            return 2
        proto, port = ports[0]
        verdict = evaluate(cluster, src, dst, proto, port)
        if a.json:
            print(json.dumps({"allowed": verdict.allowed, "lines": verdict.lines()}, indent=2))
        else:
            print("\n".join(verdict.lines()))
        return 0 if verdict.allowed else 1
    namespaces = set(a.namespace)
    pods = matrix_pods(cluster, namespaces)
    if not pods:
        print(f"pyk3s netpol: no pods with an address in {', '.join(sorted(namespaces))}", file=sys.stderr)
        return 2
    index = build_index(cluster)
    out: dict[str, Any] = {}
    for proto, port in ports:
        table = reachability(index, pods, proto, port)
        label = "ICMP" if proto == "ICMP" else f"{port}/{proto}"
        if a.json:
            out[label] = {f"{s} -> {d}": v for (s, d), v in table.items()}
        else:
            print(f"{label}:")
            print(render(pods, table))
            print()
    if a.json:
        print(json.dumps(out, indent=2))
    return 0
