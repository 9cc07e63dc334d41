"""A pod's /etc/resolv.conf and /etc/hosts (pure text builders) and the node resolver choice (k3s 4.6)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["hosts_file", "node_resolv_conf", "parse_resolv_conf", "pod_resolv_conf"]

_FALLBACK = "nameserver 8.8.8.8\nnameserver 2001:4860:4860::8888\n"


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, search, options) of a resolv.conf."""
    ns: list[str] = []
    search: list[str] = []
    opts: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            ns.append(parts[1])
        elif parts[0] in ("search", "domain"):
            search = parts[1:]
        elif parts[0] == "options":
            opts.extend(parts[1:])
    return ns, search, opts


def _usable_resolvers(text: str) -> bool:
    servers, _, _ = parse_resolv_conf(text)
    if not servers:
        return False
    for s in servers:
        try:
            addr = ipaddress.ip_address(s)
        except ValueError:
            return False
        if not (addr.is_global or str(addr) == "169.254.169.254") or addr.is_loopback:
            return False
    return True


def node_resolv_conf(explicit: str, agent_dir: Path,
                     candidates: Sequence[str] = ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf")) -> Path:
    """K3s's rule: ``--resolv-conf`` wins; else the first candidate whose every nameserver is a global
    unicast address; else write ``<agent>/etc/resolv.conf`` with public resolvers."""
    if explicit:
        return Path(explicit)
    for c in candidates:
        try:
            if _usable_resolvers(Path(c).read_text()):
                return Path(c)
        except OSError:
            continue
    path = agent_dir / "etc" / "resolv.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_FALLBACK)
    return path


def pod_resolv_conf(pod: Mapping, cluster_dns: Sequence[str], cluster_domain: str, node_resolv: str) -> str:
    """resolv.conf for a pod by dnsPolicy (ClusterFirst, ClusterFirstWithHostNet, Default, None) + dnsConfig."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        servers = list(cluster_dns)
        search = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        _, host_search, _ = parse_resolv_conf(node_resolv)
        search += [s for s in host_search if s not in search]
        options = ["ndots:5"]
    elif policy != "None":
        servers, search, options = parse_resolv_conf(node_resolv)
    cfg = spec.get("dnsConfig") or {}
    servers += [s for s in cfg.get("nameservers") or [] if s not in servers]
    search += [s for s in cfg.get("searches") or [] if s not in search]
    opt_map: dict[str, str | None] = {}
    for o in options:
        k, _, v = o.partition(":")
        opt_map[k] = v or None
    for o in cfg.get("options") or []:
        opt_map[o["name"]] = o.get("value")
    lines = [f"nameserver {s}" for s in servers[:3]]
    if search:
        lines.append("search " + " ".join(search[:32]))
    if opt_map:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}" for k, v in opt_map.items()))
    return "\n".join(lines) + "\n"


def hosts_file(pod: Mapping, pod_ips: Sequence[str], cluster_domain: str = "cluster.local") -> str:
    """The kubelet-managed /etc/hosts: localhost lines, the pod's own name, then hostAliases."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    hostname = spec.get("hostname") or meta.get("name", "")
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    names = hostname
    if spec.get("subdomain"):
        ns = meta.get("namespace", "default")
        names = f"{hostname}.{spec['subdomain']}.{ns}.svc.{cluster_domain}\t{hostname}"
    for ip in pod_ips:
        lines.append(f"{ip}\t{names}")
    for alias in spec.get("hostAliases") or []:
        lines.append(f"{alias.get('ip')}\t" + "\t".join(alias.get("hostnames") or []))
    return "\n".join(lines) + "\n"
