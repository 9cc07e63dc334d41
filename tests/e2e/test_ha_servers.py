"""Several `pyk3s server`s sharing one cluster state (k3s "HA with an external datastore"): a real
3-member etcd and a real PostgreSQL on loopback, servers on loopback (no agents: the control plane is
under test). Leader election, one CA for all servers, the kubernetes Endpoints listing every server,
failover after kill -9 with no acknowledged write lost, an etcd member stopped, and the refusals:
wrong token, mismatched --disable or --flannel-backend, malformed or unreachable --datastore-endpoint.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyk3s_server import ServerProcess

from pyk3s.agent.loadbalancer import ServerLoadBalancer

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="root")]

# the store tests' real etcd/PostgreSQL launchers
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "api" / "store"))
import store_servers as stores  # noqa: E402

BASE = ("--disable", "coredns,traefik,servicelb", "--token", "pk-ha-secret")


class EtcdCluster:
    """Three etcd members on loopback ports (same launch rules as the store tests' single member)."""

    def __init__(self, members: int = 3) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pketcdc-"))
        self.n = members
        self.procs: list[subprocess.Popen[bytes]] = []
        self.clients = [f"http://127.0.0.1:{stores.free_port()}" for _ in range(members)]
        self.peers = [f"http://127.0.0.1:{stores.free_port()}" for _ in range(members)]

    @property
    def endpoint(self) -> str:
        return ",".join(self.clients)

    def start(self) -> EtcdCluster:
        initial = ",".join(f"pk{i}={p}" for i, p in enumerate(self.peers))
        for i in range(self.n):
            log = open(self.dir / f"etcd{i}.log", "ab")  # noqa: SIM115 - handed to the child
            self.procs.append(subprocess.Popen(
                [shutil.which("etcd"), "--name", f"pk{i}", "--data-dir", str(self.dir / f"m{i}"),
                 "--listen-client-urls", self.clients[i], "--advertise-client-urls", self.clients[i],
                 "--listen-peer-urls", self.peers[i], "--initial-advertise-peer-urls", self.peers[i],
                 "--initial-cluster", initial, "--initial-cluster-state", "new", "--log-level", "error"],
                stdout=log, stderr=log, cwd=self.dir))
            log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self._healthy(u) for u in self.clients):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"etcd cluster did not start: {(self.dir / 'etcd0.log').read_text()[-1500:]}")

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            with stores.NO_PROXY.open(url + "/health", timeout=1) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def stop_member(self, i: int) -> None:
        stores._stop(self.procs[i], signal.SIGTERM)

    def stop(self) -> None:
        for p in self.procs:
            stores._stop(p, signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def etcd3() -> Iterator[EtcdCluster]:
    if not shutil.which("etcd"):
        pytest.skip("etcd not installed")
    c = EtcdCluster()
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[object]:
    if not stores.HAVE_POSTGRES:
        pytest.skip("PostgreSQL not installed")
    pg = stores.PostgresServer()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


def start_servers(endpoint: str, n: int = 2, extra: tuple[str, ...] = ()) -> list[ServerProcess]:
    servers: list[ServerProcess] = []
    try:
        for _ in range(n):
            servers.append(ServerProcess(extra_args=[*BASE, "--datastore-endpoint", endpoint, *extra]).start(60))
    except BaseException:
        for s in servers:
            s.cleanup()
        raise
    return servers


def leader(srv: ServerProcess) -> str:
    return srv.kubectl("get", "lease", "-n", "kube-system", "pyk3s-controllers",
                       "-o", "jsonpath={.spec.holderIdentity}", check=False).out


def identity(srv: ServerProcess) -> str:
    return f"{srv.node_name}_{(srv.data_dir / 'server' / 'server-id').read_text().strip()}"


def via(srv: ServerProcess, other: ServerProcess, *args: str, check: bool = True):
    """kubectl with ``srv``'s kubeconfig against ``other``'s port (one CA for the whole cluster)."""
    return srv.kubectl("--server", f"https://127.0.0.1:{other.port}", *args, check=check)


class LocalLb:
    """The agent's load balancer (pyk3s.agent.loadbalancer.ServerLoadBalancer) in a thread, for kubectl."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.lb = ServerLoadBalancer([("127.0.0.1", s.port) for s in servers], port=0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.lb.start(), self.loop).result(5)
        self.health = asyncio.run_coroutine_threadsafe(self.lb.health(), self.loop)

    def stop(self) -> None:
        self.health.cancel()
        asyncio.run_coroutine_threadsafe(self.lb.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# -- etcd -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def etcd_servers(etcd3: EtcdCluster) -> Iterator[list[ServerProcess]]:
    servers = start_servers(etcd3.endpoint, 2)
    try:
        yield servers
    finally:
        for s in servers:
            s.cleanup()


def test_servers_share_state_and_one_ca(etcd_servers: list[ServerProcess]) -> None:
    a, b = etcd_servers
    a.kubectl("create", "configmap", "pk-shared", "--from-literal=k=v")
    assert via(a, b, "get", "configmap", "pk-shared", "-o", "jsonpath={.data.k}").out == "v"
    assert (a.data_dir / "server/tls/server-ca.crt").read_bytes() == (b.data_dir / "server/tls/server-ca.crt").read_bytes()
    assert a.kubectl("get", "--raw", "/cacerts", check=False).rc == 0


def test_one_leader_and_every_server_in_the_kubernetes_endpoints(etcd_servers: list[ServerProcess]) -> None:
    a, b = etcd_servers
    holder = a.wait_for(lambda: leader(a), what="a leader")
    assert holder in (identity(a), identity(b))
    ports = a.wait_for(lambda: sorted(int(p) for p in a.kubectl(
        "get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[*].ports[0].port}").out.split()) == sorted(
        [a.port, b.port]), timeout=30, what="both servers in Endpoints")
    assert ports


def test_mismatched_disable_is_refused(etcd3: EtcdCluster, etcd_servers: list[ServerProcess]) -> None:
    bad = ServerProcess(extra_args=["--disable", "coredns,traefik", "--token", "pk-ha-secret",
                                    "--datastore-endpoint", etcd3.endpoint])
    try:
        with pytest.raises(RuntimeError, match="critical configuration value mismatch: --disable"):
            bad.start(60)
    finally:
        bad.cleanup()


def test_mismatched_flannel_backend_is_refused(etcd3: EtcdCluster, etcd_servers: list[ServerProcess]) -> None:
    bad = ServerProcess(extra_args=[*BASE, "--flannel-backend", "host-gw", "--datastore-endpoint", etcd3.endpoint])
    try:
        with pytest.raises(RuntimeError, match="critical configuration value mismatch: --flannel-backend is 'host-gw'"):
            bad.start(60)
    finally:
        bad.cleanup()


def test_wrong_token_is_refused(etcd3: EtcdCluster, etcd_servers: list[ServerProcess]) -> None:
    bad = ServerProcess(extra_args=[*BASE[:2], "--token", "not-the-token", "--datastore-endpoint", etcd3.endpoint])
    try:
        with pytest.raises(RuntimeError, match="--token does not match"):
            bad.start(60)
    finally:
        bad.cleanup()


@pytest.mark.timing_sensitive
def test_kill9_leader_under_writes(etcd_servers: list[ServerProcess], etcd3: EtcdCluster) -> None:
    """kubectl writes through the agent load balancer; the leader dies; writes resume within 5 s on the
    other server, nothing acknowledged is lost, and the other server takes the controllers' Lease."""
    a, b = etcd_servers
    for srv in etcd_servers:
        # the rerun of an attempt that failed after its kill -9 finds that server still down
        if srv.proc is None or srv.proc.poll() is not None:
            srv.start(60)
    holder = a.wait_for(lambda: leader(a), what="a leader")
    victim, survivor = (a, b) if holder == identity(a) else (b, a)
    lb = LocalLb([victim, survivor])
    acked: list[tuple[float, str]] = []
    failures: list[float] = []
    errors: list[str] = []  # of the failed writes, for the failure message
    stop = threading.Event()
    # a rerun must not find the names its first attempt wrote
    prefix = f"pk-w-{uuid.uuid4().hex[:6]}"

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 400:
            name = f"{prefix}-{i}"
            try:
                r = survivor.kubectl("--server", f"https://127.0.0.1:{lb.lb.port}", "--request-timeout", "3s",
                                     "create", "configmap", name, check=False, timeout=10)
            except subprocess.TimeoutExpired:  # a failed write like any other: the writer goes on
                failures.append(time.monotonic())
                errors.append("kubectl ran longer than 10 s")
                continue
            if r.rc == 0:
                acked.append((time.monotonic(), name))
                i += 1
            elif "already exists" in r.err.lower():  # created, but the kill took the answer with it
                acked.append((time.monotonic(), name))
                i += 1
            else:
                failures.append(time.monotonic())
                errors.append(r.err.strip())
                time.sleep(0.1)
    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(3)
        killed_at = time.monotonic()
        killed_wall = datetime.datetime.now(datetime.UTC)
        victim.kill9()
        try:
            survivor.wait_for(lambda: len([x for x in acked if x[0] > killed_at]) >= 3, timeout=20,
                              what="writes after the kill")
        except TimeoutError as err:
            raise AssertionError(f"{len(failures)} failed writes, the last ones: {errors[-3:]}\n{err}") from None
        resumed = next(ts for ts, _ in acked if ts > killed_at)
        new_leader = survivor.wait_for(lambda: leader(survivor) == identity(survivor), timeout=25,
                                       what="survivor takes the Lease")
        lease_moved = time.monotonic() - killed_at
    finally:
        stop.set()
        t.join(60)
        lb.stop()
    gap = resumed - killed_at
    print(f"writes resumed {gap:.2f}s after kill -9; Lease moved within {lease_moved:.1f}s")
    assert gap < 5.0, f"writes resumed only after {gap:.1f}s"
    assert new_leader
    # When the survivor acquired the Lease, by its own record (the poll above adds kubectl's start-up).
    acquired = survivor.kubectl("get", "lease", "-n", "kube-system", "pyk3s-controllers",
                                "-o", "jsonpath={.spec.acquireTime}").out.strip()
    takeover = (datetime.datetime.fromisoformat(acquired.replace("Z", "+00:00")) - killed_wall).total_seconds()
    print(f"controllers' Lease acquired by the survivor {takeover:.2f}s after kill -9")
    assert takeover < 5.0, f"the survivor took the controllers' Lease only after {takeover:.1f}s"
    names = set(survivor.kubectl("get", "configmaps", "-o", "jsonpath={.items[*].metadata.name}").out.split())
    lost = [n for _, n in acked if n not in names]
    assert not lost, f"acknowledged writes lost: {lost[:5]}"
    # the new leader's controllers work: a Deployment gets its ReplicaSet
    survivor.kubectl("create", "deployment", "pk-after", "--image=pyk3s/whoami")
    survivor.wait_for(lambda: survivor.kubectl("get", "rs", "-l", "app=pk-after", "-o", "name").out, timeout=20,
                      what="ReplicaSet from the new leader")
    victim.start(60)  # back as a follower
    assert leader(survivor) == identity(survivor)


def test_one_etcd_member_down_cluster_keeps_working(etcd_servers: list[ServerProcess], etcd3: EtcdCluster) -> None:
    a = next(s for s in etcd_servers if s.proc is not None and s.proc.poll() is None)
    etcd3.stop_member(0)
    for i in range(5):
        r = a.wait_for(lambda i=i: a.kubectl("create", "configmap", f"pk-e{i}", check=False).rc == 0, timeout=20,
                       what="write with one etcd member down")
        assert r
    assert len(a.kubectl("get", "configmaps", "-o", "name").out.split()) >= 5


# -- PostgreSQL and bad input ------------------------------------------------------------------------------

def test_postgres_servers_share_state_and_elect_one_leader(postgres) -> None:
    servers = start_servers(postgres.dsn(), 2)
    try:
        a, b = servers
        a.kubectl("create", "configmap", "pk-pg", "--from-literal=k=v")
        assert via(a, b, "get", "configmap", "pk-pg", "-o", "jsonpath={.data.k}").out == "v"
        holder = a.wait_for(lambda: leader(a), what="a leader")
        assert holder in (identity(a), identity(b))
        # a graceful stop hands the Lease over at once (released, not waited out)
        victim, survivor = (a, b) if holder == identity(a) else (b, a)
        victim.stop()
        survivor.wait_for(lambda: leader(survivor) == identity(survivor), timeout=8, what="handover")
    finally:
        for s in servers:
            s.cleanup()


@pytest.mark.parametrize(("endpoint", "message"), [
    ("postgres://", "needs a host"),
    ("mysql://x", "unsupported scheme"),
    ("http://127.0.0.1:1", "cannot reach the datastore"),
])
def test_bad_datastore_endpoint_is_refused(endpoint: str, message: str) -> None:
    srv = ServerProcess(extra_args=[*BASE, "--datastore-endpoint", endpoint])
    try:
        with pytest.raises(RuntimeError) as err:
            srv.start(60)
        assert "--datastore-endpoint" in str(err.value) and message in str(err.value)
    finally:
        srv.cleanup()
