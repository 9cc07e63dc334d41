"""`pyk3s map [--address A] [--port P] [--kubeconfig F]`: the network map, one page that shows how the
cluster's traffic flows and why (nodes, Services and their endpoints, LoadBalancers, the ingress's
routers, NetworkPolicies, and a trace box), served read-only on 127.0.0.1:8001 like `kubectl proxy`.
The kubeconfig is --kubeconfig, else $KUBECONFIG, else the server's (/etc/rancher/pyk3s/pyk3s.yaml)."""

from __future__ import annotations

import argparse

from pyk3s.netmap.run import DEFAULT_ADDRESS, DEFAULT_PORT, main_serve

__all__ = ["main"]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pyk3s map", description="The network map: one read-only page that shows how "
                                 "the cluster's traffic flows, and why. Prints its URL.")
    ap.add_argument("--address", default=DEFAULT_ADDRESS, help=f"address to serve on (default {DEFAULT_ADDRESS})")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on, 0 for any (default {DEFAULT_PORT})")
    ap.add_argument("--kubeconfig", default=None,
                    help="kubeconfig file (default: $KUBECONFIG, else the server's /etc/rancher/pyk3s/pyk3s.yaml)")
    args = ap.parse_args(argv)
    if not 0 <= args.port <= 65535:
        ap.error(f"--port {args.port}: expected 0-65535")
    return main_serve(args.kubeconfig, args.address, args.port)
