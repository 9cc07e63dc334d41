"""`pyk3s <subcommand> ...`: one table of subcommands, each a module with ``main(argv) -> int``."""

from __future__ import annotations

import importlib
import sys

__all__ = ["SUBCOMMANDS", "main"]

# name -> (module, help). Modules are imported only when their subcommand runs.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "server": ("pyk3s.cli.server", "run a server: API, controllers, manifests, and an embedded agent"),
    "agent": ("pyk3s.cli.agent", "run a node agent that joins a server (--server, --token)"),
    "kubectl": ("pyk3s.cli.kubectl", "run kubectl with the server's kubeconfig"),
    "check-config": ("pyk3s.cli.check_config", "check whether this machine can run pyk3s (PASS/WARN/FAIL and the fix)"),
    "killall": ("pyk3s.agent.killall", "stop every pyk3s process and remove its network state"),
    "coredns": ("pyk3s.addons.dns.cli", "the cluster DNS server (CoreDNS-compatible)"),
    "traefik": ("pyk3s.addons.ingress.cli", "the ingress controller (Traefik-compatible)"),
    "klipper-lb": ("pyk3s.addons.lb.cli", "the svclb data plane (klipper-lb compatible)"),
    "whoami": ("pyk3s.images.whoami", "a small echo server (traefik/whoami compatible)"),
    "whoamitcp": ("pyk3s.images.whoamitcp", "a TCP echo server (traefik/whoamitcp compatible)"),
    "whoamiudp": ("pyk3s.images.whoamiudp", "a UDP echo server (traefik/whoamiudp compatible)"),
    "manifests": ("pyk3s.cli.manifests", "inspect the manifests directory: `pyk3s manifests status`"),
    "dns": ("pyk3s.addons.dns.explain", "`pyk3s dns explain NAME [TYPE]`: why DNS answers what it does"),
    "ingress": ("pyk3s.addons.ingress.explain", "`pyk3s ingress explain URL`: which router a request takes"),
    "map": ("pyk3s.cli.map", "the network map: one page showing how the cluster's traffic flows, and why"),
    "crictl": ("pyk3s.cli.crictl", "run crictl against the node's containerd (when crictl is installed)"),
    "ctr": ("pyk3s.cli.ctr", "run ctr against the node's containerd, namespace k8s.io"),
    "images": ("pyk3s.cli.images", "`pyk3s images build`: the built-in images as OCI images in the air-gap folder"),
    "netpol": ("pyk3s.cli.netpol", "`pyk3s netpol explain FROM TO [PORT/PROTO]`, `pyk3s netpol matrix -n NS`: "
                                   "what NetworkPolicies allow"),
    "dev": ("pyk3s.cli.dev", "`pyk3s dev cluster --nodes N`: a throwaway multi-node cluster on this machine"),
}


def usage() -> str:
    lines = ["usage: pyk3s <command> [flags]", "", "commands:"]
    for name, (_mod, help_) in SUBCOMMANDS.items():
        lines.append(f"  {name:<11} {help_}")
    lines.append("")
    lines.append("`pyk3s <command> --help` shows a command's flags.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-v", "--version", "version"):
        from pyk3s.k3s.version import KUBERNETES_VERSION, PYK3S_VERSION

        print(f"pyk3s version v{PYK3S_VERSION} (kubernetes {KUBERNETES_VERSION})")
        return 0
    name = args[0]
    if name not in SUBCOMMANDS:
        print(f"pyk3s: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    rc = module.main(args[1:])
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
