"""Start a real `pyk3s server` for end-to-end tests, drive it with the real kubectl, and clean up.

Everything a server creates is named from one short random id, so a crashed run's leftovers are
recognisable: the data dir, the node link `pkd<id>` (the node address lives there, never on
the machine's own interface), the pod bridge `pkb<id>`, the nftables table `pyk3s-pkb<id>`.

With an agent the server gets ``--resolv-conf`` naming the node address as the only upstream resolver:
nothing listens on port 53 there, so cluster DNS never forwards to the machine's resolver.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pyk3s.cli.dev import KubectlResult

__all__ = ["ClusterNets", "KubectlResult", "NodeAddress", "ServerProcess", "free_port"]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _host_routes() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    nets = []
    for line in out.splitlines():
        tok = line.split()[0] if line.split() else ""
        if tok in ("local", "broadcast", "unreachable", "blackhole", "prohibit"):
            tok = line.split()[1]
        if tok == "default":
            continue
        try:
            nets.append(ipaddress.ip_network(tok, strict=False))
        except ValueError:
            continue
    return nets


@dataclass(frozen=True)
class ClusterNets:
    """Pod and service CIDRs for one test cluster with an agent: a /24 pair no route of this machine
    overlaps (several clusters share the host: each bridge routes its CIDRs and an agent refuses CIDRs
    another link routes). Never K3s's /16 defaults: a single-node cluster routes only its node's /24 of
    them, so a cluster started meanwhile could take another /24 inside, and the first one's restart
    would then refuse its own cluster CIDR."""

    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"

    @property
    def cluster_dns(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def kubernetes_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[1])

    @classmethod
    def pick(cls) -> ClusterNets:
        used = _host_routes()

        def free(*cidrs: str) -> bool:
            return not any(ipaddress.ip_network(c).overlaps(u) for c in cidrs for u in used)

        # a cluster with the defaults routes all of 10.43/16: then services go to a free 10.99.x/24
        for third in range(1, 255):
            for services in (f"10.43.{third}.0/24", f"10.99.{third}.0/24"):
                if free(f"10.42.{third}.0/24", services):
                    return cls(f"10.42.{third}.0/24", services)
        raise RuntimeError("no free pod/service CIDR pair (10.42.x/24 + 10.43.x/24 or 10.99.x/24) for a test cluster")


@contextmanager
def _cidr_lock() -> Iterator[None]:
    """Serializes choosing CIDRs until the chosen routes exist, across concurrent test runs."""
    with open(Path(tempfile.gettempdir()) / "pyk3s-e2e-cidr.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class NodeAddress:
    """A node address on a link of our own (a bridge with no ports) (tests never use the machine's interface)."""

    link: str
    ip: str

    @classmethod
    def create(cls, ident: str) -> NodeAddress:
        used = _host_routes()
        for third in range(10, 250):
            net = ipaddress.ip_network(f"172.31.{third}.0/24")
            if not any(net.overlaps(u) for u in used):
                break
        else:  # pragma: no cover
            raise RuntimeError("no free 172.31.x.0/24 for a test node")
        link = f"pkd{ident}"
        ip = str(net[1])
        subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"{ip}/24", "dev", link], check=True)
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
        return cls(link, ip)

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)


@dataclass
class ServerProcess:
    extra_args: Sequence[str] = ()
    agent: bool = False
    ident: str = field(default_factory=lambda: secrets.token_hex(3))
    env: dict[str, str] = field(default_factory=dict)
    node_name_flag: bool = True  # False: the name comes from K3S_NODE_NAME in env (or the hostname)
    launcher: Sequence[str] = ()  # what runs `pyk3s server` (default: this interpreter's `-m pyk3s server`)
    workdir: Path = REPO

    def __post_init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"pyk3s-e2e-{self.ident}-"))
        self.data_dir = self.tmp / "data"
        self.kubeconfig = self.tmp / "kubeconfig.yaml"
        self.port = free_port()
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.node: NodeAddress | None = None
        self.node_name = f"pk-node-{self.ident}"
        self.nets = ClusterNets()

    @property
    def bridge(self) -> str:
        return f"pkb{self.ident}"

    @property
    def nft_table(self) -> str:
        return f"pyk3s-{self.bridge}"

    def killall(self) -> subprocess.CompletedProcess[str]:
        """``pyk3s killall`` scoped to this server's data dir and bridge."""
        return subprocess.run([sys.executable, "-m", "pyk3s", "killall", "--data-dir", str(self.data_dir),
                               "--bridge-name", self.bridge], capture_output=True, text=True, cwd=REPO,
                              timeout=60)

    @property
    def manifests_dir(self) -> Path:
        return self.data_dir / "server" / "manifests"

    def args(self) -> list[str]:
        a = [
            *(self.launcher or (sys.executable, "-m", "pyk3s", "server")),
            "--data-dir", str(self.data_dir),
            "--https-listen-port", str(self.port),
            "--write-kubeconfig", str(self.kubeconfig),
            "--config", str(self.tmp / "no-config.yaml"),
        ]
        if self.node_name_flag:
            a += ["--node-name", self.node_name]
        if self.agent:
            assert self.node is not None
            resolv = self.tmp / "resolv.conf"
            resolv.write_text(f"nameserver {self.node.ip}\n")
            a += ["--node-ip", self.node.ip, "--bridge-name", self.bridge, "--resolv-conf", str(resolv),
                  "--kubelet-port", str(free_port())]
            if "--container-runtime" not in self.extra_args and "--container-runtime-endpoint" not in self.extra_args:
                # tests run the process runtime alone unless they are about containerd: an image that is not
                # built in must never send containerd looking for it on the network
                a += ["--container-runtime", "none"]
            if self.nets != ClusterNets():
                a += ["--cluster-cidr", self.nets.cluster_cidr, "--service-cidr", self.nets.service_cidr,
                      "--cluster-dns", self.nets.cluster_dns]
        else:
            a += ["--disable-agent"]
        return a + list(self.extra_args)

    def start(self, timeout: float = 30.0) -> ServerProcess:
        if not self.agent:
            return self._start(timeout)
        if self.node is None:
            self.node = NodeAddress.create(self.ident)
        with _cidr_lock():
            if self.proc is None:
                self.nets = ClusterNets.pick()
            self._start(timeout)
            # hold the lock until our bridge routes the service CIDR, so a concurrent pick sees it
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                out = subprocess.run(["ip", "-4", "route", "show", "dev", self.bridge], capture_output=True,
                                     text=True).stdout
                if self.nets.service_cidr in out:
                    break
                time.sleep(0.2)
        return self

    def _start(self, timeout: float) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.args(), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pyk3s server exited with {self.proc.returncode}:\n{self.log()}")
            if self.kubeconfig.exists() and self.kubectl("get", "--raw", "/readyz", check=False).rc == 0:
                return self
            time.sleep(0.2)
        raise TimeoutError(f"pyk3s server not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0,
                env: dict[str, str] | None = None) -> KubectlResult:
        cache = self.tmp / f"kcache-{secrets.token_hex(4)}"
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(cache), *args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})})
        res = KubectlResult(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return res

    def wait_for(self, predicate, timeout: float = 30.0, interval: float = 0.25, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
                if last:
                    return last
            except (AssertionError, ValueError, KeyError, IndexError, TypeError) as err:
                last = err
            time.sleep(interval)
        raise TimeoutError(f"timed out waiting for {what}; last: {last!r}\nserver log:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()  # start() opens it again

    def restart(self, extra_args: Sequence[str] | None = None, timeout: float = 30.0) -> ServerProcess:
        self.stop()
        if extra_args is not None:
            self.extra_args = extra_args
        return self.start(timeout)

    def cleanup(self) -> None:
        self.stop()
        if self.agent:
            self.killall()
        if self.node is not None:
            self.node.remove()
        subprocess.run(["rm", "-rf", str(self.tmp)], capture_output=True)
