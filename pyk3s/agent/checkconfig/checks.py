"""Can this machine run pyk3s? One check per row of :data:`CHECKS`, each a PASS, WARN or FAIL with the fix.

A check reads the machine and changes nothing, except the kernel-feature probe, which creates links of
each kind in a network namespace of its own (``pkcheck<pid>``) and deletes that namespace again, and
asks nftables to validate (not apply) a NAT chain. ``blocking`` rows are the ones `pyk3s server` and
`pyk3s agent` run at start: a FAIL among them ends start-up with the same message instead of a failure
later (a traceback from the service proxy, a port taken).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

__all__ = [
    "CHECKS",
    "Check",
    "CheckSettings",
    "CheckResult",
    "Status",
    "blocking_failures",
    "format_results",
    "run_checks",
]

COMMAND_TIMEOUT = 5.0


class Status(Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """What the checks need to know of the server's or agent's settings."""

    data_dir: Path
    server: bool = True                   # runs the API (port https_port)
    agent: bool = True                    # runs pods (root, nftables, links, kubelet port)
    bind_address: str = "0.0.0.0"
    https_port: int = 6443
    kubelet_port: int = 10250            # 0: not checked
    ingress: bool = True                  # the packaged Traefik takes ports 80 and 443
    cluster_cidrs: tuple[str, ...] = ("10.42.0.0/16",)
    service_cidrs: tuple[str, ...] = ("10.43.0.0/16",)
    bridge_name: str = "pyk3s0"
    flannel_backend: str = "vxlan"        # vxlan (K3s's default) needs the kernel's vxlan links
    container_runtime: str = "auto"       # --container-runtime: auto | containerd | none
    runtime_endpoint: str = ""            # --container-runtime-endpoint (an external CRI socket)
    extra_ports: tuple[tuple[int, str], ...] = field(default=())   # (port, what) that must be free


Checker = Callable[[CheckSettings], list[CheckResult]]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    run: Checker
    blocking: bool                        # also run at `pyk3s server` / `pyk3s agent` start
    applies: Callable[[CheckSettings], bool] = lambda s: True


def _run(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


# -- root ---------------------------------------------------------------------------------------------

def check_root(s: CheckSettings) -> list[CheckResult]:
    if os.geteuid() == 0:
        return [CheckResult("root", Status.PASS, "running as root")]
    return [CheckResult("root", Status.FAIL, "not root: pods need network namespaces, links and nftables",
                   "run it as root (sudo), or start the server with --disable-agent")]


# -- binaries -----------------------------------------------------------------------------------------

BINARIES: tuple[tuple[str, str, str], ...] = (
    ("nft", "nftables", "Services, NodePorts and ServiceLB are nftables rules"),
    ("ip", "iproute2", "pod links, addresses and routes"),
    ("nsenter", "util-linux", "kubectl exec and port-forward enter a pod's namespaces"),
    ("unshare", "util-linux", "each container gets a mount namespace of its own"),
)


def check_binaries(s: CheckSettings) -> list[CheckResult]:
    out = []
    for binary, package, why in BINARIES:
        path = shutil.which(binary)
        if path:
            out.append(CheckResult(f"binary {binary}", Status.PASS, path))
        else:
            out.append(CheckResult(f"binary {binary}", Status.FAIL, f"{binary} not found on PATH ({why})",
                              f"apt-get install {package}"))
    return out


# -- container runtime --------------------------------------------------------------------------------

RUNTIME_BINARIES: tuple[tuple[str, str, str], ...] = (
    ("containerd", "containerd", "runs the pods whose images are not built in; pyk3s starts its own"),
    ("runc", "runc", "containerd's OCI runtime, which starts the containers"),
    ("ctr", "containerd", "imports the air-gap folder's images and the pause image"),
)


def _version(binary: str, path: str) -> str:
    """``containerd 1.6.20~ds1`` / ``runc 1.1.5+ds1`` from ``--version``, or ''."""
    try:
        out = _run(path, "--version").stdout.split("\n")[0].split()
    except (OSError, subprocess.SubprocessError):
        return ""
    if binary == "containerd" and len(out) >= 3:
        return out[2]
    if binary == "runc" and len(out) >= 3 and out[1] == "version":
        return out[2]
    return ""


def check_container_runtime(s: CheckSettings) -> list[CheckResult]:
    """containerd, runc and ctr for pods with real images (``--container-runtime``), or the given socket."""
    if s.container_runtime == "none":
        return [CheckResult("container runtime", Status.PASS,
                            "--container-runtime none: the process runtime only (built-in images)")]
    if s.runtime_endpoint:
        sock = Path(s.runtime_endpoint.removeprefix("unix://"))
        if sock.is_socket():
            return [CheckResult("container runtime", Status.PASS, f"--container-runtime-endpoint {sock}: a socket")]
        return [CheckResult("container runtime", Status.WARN,
                            f"--container-runtime-endpoint {sock} is not a socket (yet): pods whose images are "
                            "not built in wait until the runtime answers there",
                            "start that runtime, or correct --container-runtime-endpoint")]
    required = s.container_runtime == "containerd"
    out = []
    for binary, package, why in RUNTIME_BINARIES:
        path = shutil.which(binary)
        if path:
            version = _version(binary, path)
            out.append(CheckResult(f"binary {binary}", Status.PASS, path + (f" ({version})" if version else "")))
            continue
        effect = ("--container-runtime containerd needs it: the agent does not start" if required
                  else "pods whose images are not built in stay Waiting (built-in images run as processes)")
        out.append(CheckResult(f"binary {binary}", Status.FAIL if required else Status.WARN,
                               f"{binary} not found on PATH ({why}); {effect}",
                               f"apt-get install {package}, or start with --container-runtime none"))
    return out


MOUNTINFO = Path("/proc/self/mountinfo")


def cgroup_mounts(mountinfo: Path = MOUNTINFO) -> list[str]:
    """Mount points of cgroup (v1) and cgroup2 filesystems this process sees."""
    try:
        text = mountinfo.read_text()
    except OSError:
        return []
    points = []
    for line in text.splitlines():
        # "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - cgroup2 cgroup2 rw": the type follows " - "
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if sep and len(fields) > 4 and tail.split(" ", 1)[0] in ("cgroup", "cgroup2"):
            points.append(fields[4])
    return points


def check_cgroups(s: CheckSettings, mountinfo: Path = MOUNTINFO) -> list[CheckResult]:
    """runc needs a cgroup filesystem to create containerd's sandboxes; the process runtime does not."""
    if s.container_runtime == "none" or s.runtime_endpoint or not shutil.which("containerd"):
        return []
    points = cgroup_mounts(mountinfo)
    if points:
        return [CheckResult("cgroups", Status.PASS, f"{len(points)} cgroup mount(s), e.g. {points[0]}")]
    return [CheckResult("cgroups", Status.WARN,
                        "no cgroup filesystem mounted in this mount namespace: runc cannot create containerd's "
                        "sandboxes, so pods whose images are not built in fail with FailedCreatePodSandBox "
                        "(built-in images still run as processes)",
                        "mount cgroup2 on /sys/fs/cgroup; in a network namespace enter it with "
                        "`nsenter --net=/run/netns/NAME` (`ip netns exec` remounts /sys and hides the cgroups)")]

# -- kernel features ----------------------------------------------------------------------------------

# link kind -> (what pyk3s uses it for, whether it is needed with these settings)
def link_kinds(s: CheckSettings) -> tuple[tuple[str, str, bool], ...]:
    vxlan = s.flannel_backend == "vxlan"
    return (
        ("veth", "one pair per pod", True),
        ("bridge", "the node's pod bridge", True),
        ("vxlan", "pod traffic between nodes (--flannel-backend vxlan)" if vxlan
         else f"not used with --flannel-backend {s.flannel_backend}", vxlan),
    )


def check_netns(s: CheckSettings) -> list[CheckResult]:
    if Path("/proc/self/ns/net").exists():
        return [CheckResult("kernel: network namespaces", Status.PASS, "/proc/self/ns/net present")]
    return [CheckResult("kernel: network namespaces", Status.FAIL, "the kernel has no network namespaces",
                   "a kernel with CONFIG_NET_NS=y")]


def check_link_kinds(s: CheckSettings) -> list[CheckResult]:
    """Create one link of each kind in a throwaway namespace: the kernel loads the module if it has one."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return [CheckResult(f"kernel: {kind}", Status.WARN, "not probed (needs root and ip)", "") for kind, _, _ in link_kinds(s)]
    ns = f"pkcheck{os.getpid()}"
    if _run("ip", "netns", "add", ns).returncode != 0:
        return [CheckResult(f"kernel: {kind}", Status.WARN, "not probed: could not create a network namespace", "")
                for kind, _, _ in link_kinds(s)]
    try:
        specs = {"veth": ["type", "veth", "peer", "name", "pkc1"], "bridge": ["type", "bridge"],
                 "vxlan": ["type", "vxlan", "id", "42", "dstport", "4789", "local", "127.0.0.1"]}
        out = []
        for kind, why, needed in link_kinds(s):
            res = _run("ip", "-n", ns, "link", "add", f"pkc{kind[:4]}", *specs[kind])
            if res.returncode == 0:
                out.append(CheckResult(f"kernel: {kind}", Status.PASS, why))
            else:
                out.append(CheckResult(f"kernel: {kind}", Status.FAIL if needed else Status.WARN,
                                  f"cannot create a {kind} link ({res.stderr.strip()}); {why}",
                                  f"modprobe {kind}, or a kernel with CONFIG_{kind.upper()}"))
        return out
    finally:
        _run("ip", "netns", "del", ns)


def check_br_netfilter(s: CheckSettings) -> list[CheckResult]:
    """K3s's flannel needs br_netfilter for pods on its cni0 bridge; pyk3s's pods are routed links, so
    nftables sees their traffic without it. Reported so a K3s user comparing the two lists finds it."""
    if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        return [CheckResult("kernel: br_netfilter", Status.PASS, "loaded (not needed: pods are routed links)")]
    return [CheckResult("kernel: br_netfilter", Status.PASS,
                        "not loaded, not needed: pods are routed links, not bridge ports")]


def check_nft_nat(s: CheckSettings) -> list[CheckResult]:
    """Ask the kernel to validate (nft --check: not applied) a table with a NAT chain."""
    if not shutil.which("nft"):
        return [CheckResult("kernel: nf_tables with nat", Status.FAIL, "not probed: nft not found",
                       "apt-get install nftables")]
    if os.geteuid() != 0:
        return [CheckResult("kernel: nf_tables with nat", Status.WARN, "not probed (needs root)", "")]
    probe = ("table inet pkcheck { chain pre { type nat hook prerouting priority -100; "
             "ip daddr 192.0.2.1 tcp dport 1 dnat to 192.0.2.2:1; }; "
             "chain post { type nat hook postrouting priority 100; masquerade; }; }")
    res = _run("nft", "--check", "-f", "-", input=probe)
    if res.returncode == 0:
        return [CheckResult("kernel: nf_tables with nat", Status.PASS, "a dnat/masquerade chain validates")]
    return [CheckResult("kernel: nf_tables with nat", Status.FAIL,
                   f"the kernel refuses a nat chain: {res.stderr.strip().splitlines()[0] if res.stderr else res.returncode}",
                   "modprobe nf_tables nft_nat nf_nat (or a kernel with CONFIG_NF_TABLES, CONFIG_NFT_NAT)")]


# -- forwarding ---------------------------------------------------------------------------------------

def check_ip_forward(s: CheckSettings) -> list[CheckResult]:
    try:
        value = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    except OSError as err:
        return [CheckResult("ip forwarding", Status.WARN, f"cannot read net.ipv4.ip_forward: {err}", "")]
    if value == "1":
        return [CheckResult("ip forwarding", Status.PASS, "net.ipv4.ip_forward = 1")]
    return [CheckResult("ip forwarding", Status.WARN, "net.ipv4.ip_forward = 0: the agent turns it on at start",
                   "sysctl -w net.ipv4.ip_forward=1 (and in /etc/sysctl.d/ to keep it)")]


# -- ports --------------------------------------------------------------------------------------------

def port_holder(port: int) -> str:
    """Who listens on a TCP port, from `ss` (empty when unknown)."""
    if not shutil.which("ss"):
        return ""
    res = _run("ss", "-Hltnp", f"sport = :{port}")
    line = res.stdout.strip().splitlines()[0] if res.stdout.strip() else ""
    if 'users:((' in line:
        return line.split("users:((", 1)[1].split(")", 1)[0]
    return ""


def port_free(address: str, port: int) -> str:
    """'' when TCP ``address:port`` can be bound, else why not."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                holder = port_holder(port)
                return "in use" + (f" by {holder}" if holder else "")
            if err.errno == errno.EACCES:
                return "needs root (a port below 1024)"
            return str(err)
    return ""


def wanted_ports(s: CheckSettings) -> list[tuple[int, str, bool]]:
    """(port, what, blocking)"""
    ports: list[tuple[int, str, bool]] = []
    if s.server:
        ports.append((s.https_port, "the API server (--https-listen-port)", True))
    if s.agent and s.kubelet_port:
        ports.append((s.kubelet_port, "the kubelet (--kubelet-port)", True))
    if s.agent and s.ingress:
        ports += [(80, "the packaged ingress (Traefik's web entry point)", False),
                  (443, "the packaged ingress (Traefik's websecure entry point)", False)]
    ports += [(port, what, True) for port, what in s.extra_ports]
    return ports


def check_ports(s: CheckSettings, blocking_only: bool = False) -> list[CheckResult]:
    out = []
    for port, what, blocking in wanted_ports(s):
        if blocking_only and not blocking:
            continue
        why = port_free(s.bind_address, port)
        if not why:
            out.append(CheckResult(f"port {port}", Status.PASS, f"free for {what}"))
        elif blocking:
            out.append(CheckResult(f"port {port}", Status.FAIL, f"{why}; needed by {what}",
                              "stop what holds it, or choose another port with the flag named"))
        else:
            out.append(CheckResult(f"port {port}", Status.WARN, f"{why}; {what} will not serve it",
                              "free the port, or start with --disable traefik"))
    return out


def check_blocking_ports(s: CheckSettings) -> list[CheckResult]:
    return check_ports(s, blocking_only=True)


# -- CIDRs --------------------------------------------------------------------------------------------

def host_routes() -> list[dict]:
    """The main table's IPv4 routes, which the agent compares at start as well."""
    res = _run("ip", "-j", "-4", "route", "show")
    try:
        return list(json.loads(res.stdout or "[]"))
    except ValueError:
        return []


def check_cidrs(s: CheckSettings) -> list[CheckResult]:
    from pyk3s.agent.cni.bridge import overlapping_routes

    if not shutil.which("ip"):
        return [CheckResult("free CIDRs", Status.FAIL, "not probed: ip not found", "apt-get install iproute2")]
    routes = host_routes()
    out = []
    for flag, cidrs in (("--cluster-cidr", s.cluster_cidrs), ("--service-cidr", s.service_cidrs)):
        for cidr in cidrs:
            if ipaddress.ip_network(cidr, strict=False).version != 4:
                continue
            bad = overlapping_routes(routes, (cidr,), {s.bridge_name})
            if bad:
                out.append(CheckResult(f"free CIDR {cidr}", Status.FAIL, "overlaps host routes: " + "; ".join(bad),
                                  f"choose a free range with {flag}"))
            else:
                out.append(CheckResult(f"free CIDR {cidr}", Status.PASS, f"{flag}: no host route overlaps it"))
    return out


# -- data dir -----------------------------------------------------------------------------------------

def check_data_dir(s: CheckSettings) -> list[CheckResult]:
    path = s.data_dir
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return [CheckResult("data dir", Status.FAIL, f"{probe} is not a directory (data dir {path})",
                       "choose another --data-dir")]
    if os.access(probe, os.W_OK | os.X_OK):
        detail = f"{path} is writable" if probe == path else f"{path} can be created in {probe}"
        return [CheckResult("data dir", Status.PASS, detail)]
    return [CheckResult("data dir", Status.FAIL, f"{probe} is not writable (data dir {path})",
                   "run as root, or choose a writable --data-dir")]


def _agent(s: CheckSettings) -> bool:
    return s.agent


CHECKS: tuple[Check, ...] = (
    Check("root", check_root, blocking=True, applies=_agent),
    Check("binaries", check_binaries, blocking=True, applies=_agent),
    # not blocking: without containerd the built-in images still run, and --container-runtime
    # containerd refuses to start by itself
    Check("container runtime", check_container_runtime, blocking=False, applies=_agent),
    Check("cgroups", check_cgroups, blocking=False, applies=_agent),
    Check("network namespaces", check_netns, blocking=True, applies=_agent),
    Check("link kinds", check_link_kinds, blocking=False, applies=_agent),
    Check("br_netfilter", check_br_netfilter, blocking=False, applies=_agent),
    Check("nf_tables with nat", check_nft_nat, blocking=True, applies=_agent),
    Check("ip forwarding", check_ip_forward, blocking=False, applies=_agent),
    Check("ports", check_ports, blocking=False),
    Check("blocking ports", check_blocking_ports, blocking=True),
    Check("free CIDRs", check_cidrs, blocking=True, applies=_agent),
    Check("data dir", check_data_dir, blocking=True),
)


def run_checks(s: CheckSettings, blocking_only: bool = False) -> list[CheckResult]:
    """Every check that applies (``blocking_only``: those run at start), in table order."""
    out: list[CheckResult] = []
    for check in CHECKS:
        if not check.applies(s):
            continue
        # the full report lists all ports once; the start-up run checks only the blocking ones
        if check.name == ("ports" if blocking_only else "blocking ports"):
            continue
        if blocking_only and not check.blocking:
            continue
        out.extend(check.run(s))
    return out


def blocking_failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status is Status.FAIL]


def format_results(results: list[CheckResult]) -> str:
    width = max((len(r.name) for r in results), default=0)
    lines = []
    for r in results:
        line = f"{r.status.value:<4}  {r.name:<{width}}  {r.detail}"
        if r.fix and r.status is not Status.PASS:
            line += f"\n      {'':<{width}}  fix: {r.fix}"
        lines.append(line)
    return "\n".join(lines)
