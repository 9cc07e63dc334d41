"""`pyk3s dev cluster --nodes N`: a throwaway multi-node cluster on this machine (root), also the
end-to-end tests' fixture (tests/support/cluster.py).

Layout (everything named from one short random id ``<id>``, so leftovers are recognisable):

* underlay bridge ``pku<id>`` on a free ``172.31.x.0/24`` (else ``10.99.x.0/24``), checked against
  every host route; the host holds ``.254`` so kubectl and curl on the host reach every node;
* with ``subnets`` > 1, one such bridge per subnet (``pku<id>s<k>``, the host on each) and a router
  namespace ``pkr<id>`` with a leg in each (``.253``, forwarding on): nodes are spread over the subnets
  in order and reach the other subnets only through the router, so host-gw cannot join them and the
  VXLAN tunnel must;
* with ``stack="dual"`` every subnet also gets an IPv6 /64 of a random ULA /48 that overlaps no route
  of this machine (host ``::fe``, router ``::fd``, node ``::<i+1>``); the servers get IPv4,IPv6 pairs
  for ``--cluster-cidr``/``--service-cidr`` from the same /48 and every node both addresses as
  ``--node-ip``; ``stack="ipv6"`` makes everything IPv6 only: the underlay (no IPv4 address on it, the
  host on ``::fe``), the node addresses, the cluster and service CIDRs, the API servers (``--bind-address
  ::``, advertised on the node's IPv6 address, the ``kubernetes`` Service IPv6), the joins
  (``--server https://[<server>]:6443``) and the nodes' upstream resolver;
* one network namespace per node, ``pkn<id>-<i>``, joined to the bridge by a veth (host side
  ``pkh<id><i>``, node side ``eth0`` with ``.<i+1>``); no default route, so nothing leaves;
* nodes 0..S-1 run ``pyk3s server`` (with its embedded agent; S = ``servers``, 1 unless the servers
  share ``datastore_endpoint``, e.g. an etcd or PostgreSQL listening on the host's ``.254``), the
  others run ``pyk3s agent --server https://<server 0>:6443[,https://<server 1>:6443…] --token-file
  <server token>``. Every node gets ``--resolv-conf`` naming ``.254`` as its only upstream resolver
  (nothing answers there), so cluster DNS never forwards to this machine's resolver. Each process is started with
  ``nsenter --net=/run/netns/pkn<id>-<i>``: ``ip netns exec`` would also give it a private mount
  namespace, hiding the pod network namespaces it creates from the host and from ``killall``.

Teardown (also after a failed test or Ctrl-C): the processes by PID (their process groups), then
``pyk3s killall --data-dir`` inside each node namespace, the namespaces, the links, the temp dir.
"""


from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Cluster", "KubectlResult", "Node", "free_cluster_cidrs", "free_ula", "free_underlay", "main"]

REPO = Path(__file__).resolve().parents[2]
API_PORT = 6443


def _host_routes() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    nets: list[ipaddress.IPv4Network] = []
    for line in out.splitlines():
        words = line.split()
        if not words:
            continue
        tok = words[1] if words[0] in ("local", "broadcast", "unreachable", "blackhole", "prohibit") else words[0]
        if tok == "default":
            continue
        with contextlib.suppress(ValueError):
            nets.append(ipaddress.IPv4Network(tok, strict=False))
    return nets


def free_underlay() -> ipaddress.IPv4Network:
    """A 172.31.x.0/24 (else 10.99.x.0/24) that overlaps no route of this machine."""
    used = _host_routes()
    for base in ("172.31.{}.0/24", "10.99.{}.0/24"):
        for third in range(100, 250):
            net = ipaddress.ip_network(base.format(third))
            if not any(net.overlaps(u) for u in used):
                return net  # type: ignore[return-value]
    raise RuntimeError("cluster: no free 172.31.x.0/24 or 10.99.x.0/24 for the underlay")


def _host_routes6() -> list[ipaddress.IPv6Network]:
    out = subprocess.run(["ip", "-6", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    nets = []
    for line in out.splitlines():
        words = line.split()
        if not words:
            continue
        tok = words[1] if words[0] in ("local", "broadcast", "unreachable", "blackhole", "prohibit", "anycast",
                                       "multicast") else words[0]
        if tok == "default":
            continue
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(tok, strict=False)
            if isinstance(net, ipaddress.IPv6Network):
                nets.append(net)
    return nets


def free_cluster_cidrs() -> tuple[str, str]:
    """IPv4 pod and service ranges that overlap no route of this machine: K3s's 10.42/16 and 10.43/16
    when free, else a free pair of /16s in 10.100-10.249. The ranges live inside the node namespaces,
    but traffic between nodes crosses this machine's bridge, where its netfilter (br_netfilter) sees
    them: a range another cluster here routes would meet that cluster's rules."""
    used = _host_routes()
    pairs = [("10.42.0.0/16", "10.43.0.0/16")] + [(f"10.{a}.0.0/16", f"10.{a + 1}.0.0/16") for a in range(100, 250, 2)]
    for pods, services in pairs:
        nets = (ipaddress.ip_network(pods), ipaddress.ip_network(services))
        if not any(n.overlaps(u) for n in nets for u in used):
            return pods, services
    raise RuntimeError("cluster: no free pair of /16s for the pod and service ranges")


def free_ula() -> ipaddress.IPv6Network:
    """A random ULA /48 (RFC 4193: fd00::/8 plus 40 random bits) that overlaps no route of this machine."""
    used = _host_routes6()
    for _ in range(64):
        prefix = bytes([0xFD]) + secrets.token_bytes(5) + bytes(10)
        net = ipaddress.IPv6Network((prefix, 48))
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("cluster: no free ULA /48 for the IPv6 underlay")


def _sub64(ula: ipaddress.IPv6Network, index: int) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((int(ula.network_address) + (index << 64), 64))


def _url_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise RuntimeError(f"cluster: {' '.join(argv)}: {res.stderr.strip()}")
    return res


@dataclass
class KubectlResult:
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Node:
    index: int
    name: str
    netns: str
    ip: str
    host_link: str
    dir: Path
    role: str  # "server" | "agent"
    ip6: str = ""      # the node's IPv6 underlay address (dual-stack clusters)
    subnet: int = 0    # which underlay subnet it sits in
    proc: subprocess.Popen[bytes] | None = None
    args: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def ips(self) -> list[str]:
        return [self.ip, *([self.ip6] if self.ip6 else [])]

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.role}.log"

    @property
    def bridge(self) -> str:
        return f"pkb{self.host_link[3:]}"

    def log(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _runtime_default(args: Sequence[str]) -> list[str]:
    """Throwaway nodes run the process runtime only unless the arguments choose a container runtime."""
    if any(a.startswith(("--container-runtime", "--default-runtime")) for a in args):
        return []
    return ["--container-runtime", "none"]


@dataclass
class Cluster:
    """``nodes`` nodes: the first ``servers`` run ``pyk3s server``, the others agents. ``server_args`` go
    to every ``pyk3s server``; several servers need a shared ``datastore_endpoint``."""

    nodes: int = 3
    server_args: Sequence[str] = ("--disable", "traefik")
    agent_args: Sequence[str] = ()
    servers: int = 1
    datastore_endpoint: str = ""
    subnets: int = 1
    stack: str = "ipv4"          # "ipv4" | "dual" | "ipv6" (IPv6 only, control plane and underlay included)
    ident: str = field(default_factory=lambda: secrets.token_hex(3))
    members: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.servers <= self.nodes:
            raise ValueError(f"cluster: servers={self.servers} must be between 1 and nodes={self.nodes}")
        if not 1 <= self.subnets <= self.nodes:
            raise ValueError(f"cluster: subnets={self.subnets} must be between 1 and nodes={self.nodes}")
        if self.stack not in ("ipv4", "dual", "ipv6"):
            raise ValueError(f"cluster: stack={self.stack!r}: ipv4, dual or ipv6")
        self.tmp = Path(tempfile.mkdtemp(prefix=f"pyk3s-cluster-{self.ident}-"))
        self.bridge = f"pku{self.ident}"
        self.router = f"pkr{self.ident}"
        self.kubeconfig = self.tmp / "kubeconfig.yaml"
        self.net: ipaddress.IPv4Network | None = None
        self.nets: list[ipaddress.IPv4Network] = []
        self.nets6: list[ipaddress.IPv6Network] = []
        self.ula: ipaddress.IPv6Network | None = None
        self.bridges: list[str] = []
        self.v4_cidrs = ("10.42.0.0/16", "10.43.0.0/16")
        self._bridge_made = False
        self._router_made = False
        self.token = secrets.token_hex(12)

    def bridge_of(self, subnet: int) -> str:
        return self.bridge if subnet == 0 else f"{self.bridge}s{subnet}"

    def subnet_of(self, i: int) -> int:
        return i * self.subnets // self.nodes

    @property
    def cluster_cidrs(self) -> list[str]:
        """The servers' --cluster-cidr."""
        if self.ula is None:
            return [self.v4_cidrs[0]]
        v6 = str(ipaddress.IPv6Network((int(self.ula.network_address) + (0x42 << 72), 56)))
        return [v6] if self.stack == "ipv6" else [self.v4_cidrs[0], v6]

    @property
    def service_cidrs(self) -> list[str]:
        if self.ula is None:
            return [self.v4_cidrs[1]]
        v6 = str(ipaddress.IPv6Network((int(self.ula.network_address) + (0x43 << 72), 112)))
        return [v6] if self.stack == "ipv6" else [self.v4_cidrs[1], v6]

    @property
    def cluster_dns(self) -> str:
        """The first cluster DNS address (10th of the first service CIDR)."""
        return str(ipaddress.ip_network(self.service_cidrs[0])[10])

    # -- network ---------------------------------------------------------------------------------
    @property
    def ipv6_only(self) -> bool:
        return self.stack == "ipv6"

    @property
    def host_ip(self) -> str:
        """This machine's address on the (first) underlay: ``.254``, or ``::fe`` in an IPv6-only cluster."""
        if self.ipv6_only:
            return str(self.nets6[0][0xfe])
        assert self.net is not None
        return str(self.net[254])

    def _make_underlay(self) -> None:
        if not self.ipv6_only:
            self.v4_cidrs = free_cluster_cidrs()
        if self.stack in ("dual", "ipv6"):
            self.ula = free_ula()
        for k in range(self.subnets):
            bridge = self.bridge_of(k)
            _run("ip", "link", "add", bridge, "type", "bridge")
            self.bridges.append(bridge)
            self._bridge_made = True
            if not self.ipv6_only:
                net = free_underlay()   # sees the bridges made so far: each subnet gets its own /24
                _run("ip", "addr", "add", f"{net[254]}/24", "dev", bridge)
                self.nets.append(net)
            if self.ula is not None:
                net6 = _sub64(self.ula, k)
                self.nets6.append(net6)
                _run("ip", "addr", "add", f"{net6[0xfe]}/64", "dev", bridge, "nodad")
            _run("ip", "link", "set", bridge, "up")
        self.net = self.nets[0] if self.nets else None
        if self.subnets > 1:
            self._make_router()
        self.tmp.joinpath("resolv.conf").write_text(f"nameserver {self.host_ip}\n")

    def _make_router(self) -> None:
        _run("ip", "netns", "add", self.router)
        self._router_made = True
        for k in range(self.subnets):
            leg = f"{self.router}h{k}"
            _run("ip", "link", "add", leg, "type", "veth", "peer", "name", f"s{k}", "netns", self.router)
            _run("ip", "link", "set", leg, "master", self.bridge_of(k), "up")
            if self.nets:
                _run("ip", "-n", self.router, "addr", "add", f"{self.nets[k][253]}/24", "dev", f"s{k}")
            if self.nets6:
                _run("ip", "-n", self.router, "addr", "add", f"{self.nets6[k][0xfd]}/64", "dev", f"s{k}", "nodad")
            _run("ip", "-n", self.router, "link", "set", f"s{k}", "up")
        _run("ip", "netns", "exec", self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if self.nets6:
            _run("ip", "netns", "exec", self.router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")

    def _make_node(self, i: int) -> Node:
        k = self.subnet_of(i)
        ip6 = str(self.nets6[k][i + 1]) if self.nets6 else ""
        # an IPv6-only node has its IPv6 address as its one (primary) address
        node = Node(index=i, name=f"pk{self.ident}-{i}", netns=f"pkn{self.ident}-{i}",
                    ip=ip6 if self.ipv6_only else str(self.nets[k][i + 1]),
                    host_link=f"pkh{self.ident}{i}", dir=self.tmp / f"node{i}",
                    role="server" if i < self.servers else "agent",
                    ip6="" if self.ipv6_only else ip6, subnet=k)
        node.dir.mkdir(parents=True)
        self.members.append(node)
        _run("ip", "netns", "add", node.netns)
        _run("ip", "link", "add", node.host_link, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
        _run("ip", "link", "set", node.host_link, "master", self.bridge_of(k), "up")
        if self.nets:
            _run("ip", "-n", node.netns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
        if self.nets6:
            _run("ip", "-n", node.netns, "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad")
        _run("ip", "-n", node.netns, "link", "set", "eth0", "up")
        _run("ip", "-n", node.netns, "link", "set", "lo", "up")
        for other in range(self.subnets):   # the other subnets through the router, never a default route
            if other == k:
                continue
            if self.nets:
                _run("ip", "-n", node.netns, "route", "add", str(self.nets[other]), "via", str(self.nets[k][253]))
            if self.nets6:
                _run("ip", "-n", node.netns, "-6", "route", "add", str(self.nets6[other]), "via",
                     str(self.nets6[k][0xfd]))
        return node

    def in_node(self, node: Node, *argv: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{node.netns}", "--", *argv]

    # -- processes -------------------------------------------------------------------------------
    def _spawn(self, node: Node, argv: list[str]) -> None:
        node.args = argv
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for k in ("KUBECONFIG", "K3S_TOKEN", "K3S_URL", "PYK3S_TOKEN", "PYK3S_URL"):
            env.pop(k, None)
        with open(node.log_path, "ab") as log:
            node.proc = subprocess.Popen(self.in_node(node, *argv), stdout=log, stderr=subprocess.STDOUT,
                                         env=env, cwd=REPO, start_new_session=True)

    @property
    def server_nodes(self) -> list[Node]:
        return [n for n in self.members if n.role == "server"]

    @property
    def agent_nodes(self) -> list[Node]:
        return [n for n in self.members if n.role == "agent"]

    def server_url(self, server: Node) -> str:
        return f"https://{_url_host(server.ip)}:{API_PORT}"

    def server_argv(self, node: Node) -> list[str]:
        shared = ["--datastore-endpoint", self.datastore_endpoint.format(host=_url_host(self.host_ip)),
                  "--token", self.token] if self.datastore_endpoint else []
        stack = ["--cluster-cidr", ",".join(self.cluster_cidrs), "--service-cidr", ",".join(self.service_cidrs)]
        if self.ipv6_only:
            stack += ["--bind-address", "::"]
        return [sys.executable, "-m", "pyk3s", "server", "--data-dir", str(node.data_dir),
                "--node-ip", ",".join(node.ips), "--node-name", node.name, "--bridge-name", node.bridge, *stack,
                "--https-listen-port", str(API_PORT), "--write-kubeconfig", str(node.dir / "kubeconfig.yaml"),
                "--resolv-conf", str(self.tmp / "resolv.conf"), "--config", str(self.tmp / "no-config.yaml"),
                *shared, *self.server_args, *_runtime_default(self.server_args)]

    def agent_argv(self, node: Node, extra: Sequence[str] = ()) -> list[str]:
        servers = ",".join(self.server_url(s) for s in self.server_nodes)
        return [sys.executable, "-m", "pyk3s", "agent", "--server", servers,
                "--token-file", str(self.members[0].data_dir / "server" / "token"), "--data-dir", str(node.data_dir),
                "--node-ip", ",".join(node.ips), "--node-name", node.name, "--bridge-name", node.bridge,
                "--resolv-conf", str(self.tmp / "resolv.conf"), "--config", str(self.tmp / "no-config.yaml"),
                *self.agent_args, *extra, *_runtime_default([*self.agent_args, *extra])]

    def start(self, timeout: float = 120.0) -> Cluster:
        try:
            self.make_network()
            self.start_processes(timeout)
            return self
        except BaseException:
            self.cleanup()
            raise

    def make_network(self) -> None:
        """The underlay and the node namespaces (a datastore for the servers can listen on ``host_ip`` next)."""
        self._make_underlay()
        for i in range(self.nodes):
            self._make_node(i)

    def start_processes(self, timeout: float = 120.0) -> None:
        """Start every server, then every agent (on the data dirs they already have, after a restart)."""
        if len(self.server_nodes) > 1 and not self.datastore_endpoint:
            raise ValueError("cluster: several servers need a shared datastore_endpoint")
        for server in self.server_nodes:
            self.start_server(server)
        self.use_server(self.members[0])
        for node in self.agent_nodes:
            # one at a time: agents pick their pod CIDR themselves at registration (lowest free /24),
            # so two registering at the same moment could pick the same one
            self._spawn(node, self.agent_argv(node))
            self.wait_for(partial(self._registered, node), timeout=60, what=f"node {node.name} registered")
        self.wait_for(self._all_ready, timeout=timeout, what=f"{self.nodes} nodes Ready")

    def start_server(self, server: Node, timeout: float = 60.0) -> None:
        self._spawn(server, self.server_argv(server))
        self.wait_for(lambda: self._server_ready(server), timeout=timeout, what=f"API server {server.name} ready")

    def stop_all(self, sig: int = signal.SIGTERM) -> None:
        """Stop every agent, then every server (the processes only: pods, links and data stay)."""
        for node in reversed(self.members):
            node.stop(sig)

    def use_server(self, server: Node) -> None:
        """Point the cluster kubeconfig (kubectl) at ``server`` (every server shares one CA)."""
        doc = yaml.safe_load((self.members[0].dir / "kubeconfig.yaml").read_text())
        doc["clusters"][0]["cluster"]["server"] = self.server_url(server)
        self.kubeconfig.write_text(yaml.safe_dump(doc))
        os.chmod(self.kubeconfig, 0o600)

    def _server_ready(self, server: Node) -> bool:
        if not server.running():
            raise RuntimeError(f"pyk3s server exited with {server.proc and server.proc.returncode}:\n{server.log()}")
        if not (server.dir / "kubeconfig.yaml").exists() or not (self.members[0].dir / "kubeconfig.yaml").exists():
            return False
        if not self.kubeconfig.exists():
            self.use_server(server)
        return self.kubectl("--server", self.server_url(server), "get", "--raw", "/readyz",
                            check=False, timeout=10).rc == 0

    def _registered(self, node: Node) -> bool:
        if node.proc is not None and node.proc.poll() is not None:
            raise RuntimeError(f"agent {node.name} exited with {node.proc.returncode}:\n{node.log()}")
        res = self.kubectl("get", "node", node.name, "-o", "jsonpath={.spec.podCIDR}", check=False, timeout=15)
        return res.rc == 0 and bool(res.out)

    def _all_ready(self) -> bool:
        for node in self.members:
            if node.role == "agent" and node.proc is not None and node.proc.poll() is not None:
                raise RuntimeError(f"agent {node.name} exited with {node.proc.returncode}:\n{node.log()}")
        return len(self.ready_nodes()) == self.nodes

    def ready_nodes(self) -> list[str]:
        res = self.kubectl("get", "nodes", "-o", "json", check=False, timeout=15)
        if res.rc != 0:
            return []
        out = []
        for n in json.loads(res.out)["items"]:
            conds = {c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])}
            if conds.get("Ready") == "True":
                out.append(n["metadata"]["name"])
        return out

    def start_agent(self, node: Node, extra: Sequence[str] = ()) -> None:
        self._spawn(node, self.agent_argv(node, extra))

    # -- driving ---------------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60.0) -> KubectlResult:
        cache = self.tmp / "kcache"
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(cache), *args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        res = KubectlResult(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return res

    def exec_in(self, node: Node, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.in_node(node, *argv), capture_output=True, text=True, timeout=timeout)

    def logs(self) -> str:
        return "\n".join(f"===== {n.name} ({n.role}) =====\n{n.log()}" for n in self.members)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5,
                 what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
                if last:
                    return last
            except (AssertionError, ValueError, KeyError, IndexError, TypeError) as err:
                last = err
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last: {last!r}\n{self.logs()}")

    # -- teardown --------------------------------------------------------------------------------
    def cleanup(self) -> None:
        for node in reversed(self.members):
            node.stop()
        for node in self.members:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(self.in_node(node, sys.executable, "-m", "pyk3s", "killall", "--data-dir",
                                            str(node.data_dir), "--bridge-name", node.bridge),
                               capture_output=True, cwd=REPO, timeout=90)
        for node in self.members:
            _run("ip", "netns", "del", node.netns, check=False)
            _run("ip", "link", "del", node.host_link, check=False)
        if self._router_made:
            _run("ip", "netns", "del", self.router, check=False)
            for k in range(self.subnets):
                _run("ip", "link", "del", f"{self.router}h{k}", check=False)
        for bridge in self.bridges or ([self.bridge] if self._bridge_made else []):
            _run("ip", "link", "del", bridge, check=False)
        subprocess.run(["rm", "-rf", str(self.tmp)], capture_output=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="pyk3s dev", description="development helpers")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cluster", help="a throwaway multi-node cluster in network namespaces (root)")
    c.add_argument("--nodes", type=int, default=3, help="nodes, the first one the server (default 3)")
    c.add_argument("--servers", type=int, default=1,
                   help="how many of the nodes are servers (default 1; more need --datastore-endpoint)")
    c.add_argument("--datastore-endpoint", default="",
                   help="shared datastore of the servers, reachable from the node namespaces; {host} stands "
                        "for the underlay's host address (.254), e.g. http://{host}:2379")
    c.add_argument("--server-arg", action="append", default=[],
                   help="extra `pyk3s server` argument (repeat; default: --disable traefik)")
    c.add_argument("--agent-arg", action="append", default=[], help="extra `pyk3s agent` argument (repeat)")
    c.add_argument("--subnets", type=int, default=1,
                   help="spread the nodes over this many subnets joined by a router namespace (default 1)")
    c.add_argument("--stack", choices=("ipv4", "dual", "ipv6"), default="ipv4",
                   help="dual: IPv6 underlay beside IPv4, dual-stack --cluster-cidr/--service-cidr; ipv6: IPv6 only, "
                        "underlay, API servers and joins included (default ipv4)")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("pyk3s dev cluster: needs root (network namespaces, nftables)", file=sys.stderr)
        return 1
    if a.nodes < 1:
        print("pyk3s dev cluster: --nodes must be at least 1", file=sys.stderr)
        return 1
    if a.servers > 1 and not a.datastore_endpoint:
        print("pyk3s dev cluster: --servers above 1 needs --datastore-endpoint", file=sys.stderr)
        return 1
    try:
        cluster = Cluster(nodes=a.nodes, server_args=tuple(a.server_arg) or ("--disable", "traefik"),
                          agent_args=tuple(a.agent_arg), servers=a.servers, datastore_endpoint=a.datastore_endpoint,
                          subnets=a.subnets, stack=a.stack)
    except ValueError as err:
        print(f"pyk3s dev {err}", file=sys.stderr)
        return 1
    stop = {"now": False}

    def on_signal(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        print(f"pyk3s dev cluster: starting {a.nodes} node(s) on underlay {cluster.bridge} ...", flush=True)
        cluster.start()
        print(f"pyk3s dev cluster: ready. Nodes: "
              f"{', '.join(n.name + '=' + '/'.join(n.ips) for n in cluster.members)}", flush=True)
        if cluster.subnets > 1:
            print(f"  subnets: {', '.join(str(n) for n in cluster.nets or cluster.nets6)} joined by router namespace "
                  f"{cluster.router}", flush=True)
        print(f"  export KUBECONFIG={cluster.kubeconfig}", flush=True)
        print(f"  logs: {cluster.tmp}/node*/{{server,agent}}.log   (Ctrl-C tears everything down)", flush=True)
        reported: set[str] = set()
        while not stop["now"]:
            time.sleep(0.5)
            for n in cluster.members:
                if n.proc is not None and n.proc.poll() is not None and n.name not in reported:
                    print(f"pyk3s dev cluster: {n.role} {n.name} exited with {n.proc.returncode}", flush=True)
                    reported.add(n.name)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as err:
        print(f"pyk3s dev cluster: {err}", file=sys.stderr)
        return 1
    finally:
        print("pyk3s dev cluster: tearing down ...", flush=True)
        cluster.cleanup()
    return 0
