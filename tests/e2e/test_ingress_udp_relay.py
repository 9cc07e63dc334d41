"""End-to-end: a UDP router relayed by the kernel (nftables DNAT, conntrack sessions), real datagrams.

Five network namespaces of the test's own on one bridge (which lives in a namespace too, so nothing
touches the machine's own): the ingress (``pyk3s traefik --objects``, 2 workers, in a namespace of its
own as in a pod), two ``pyk3s whoamiudp`` servers and a client. The IngressRouteUDP's datagrams never
reach Python:

1. the UDP router's ``relay`` is the kernel in ``/api/udp/routers``; four client ports get two sessions
   on each server, each session keeps its server, answers come from the entry point's address, the
   servers see the ingress's address (as with Traefik), the rules count the sessions and the ingress's
   userspace relay has none open;
2. a session idle for longer than the entry point's ``udp.timeout`` ends: the next datagram opens a new one;
3. with access logs on, the same router is relayed in userspace (the API says why) and each session is
   logged; the kernel's table is gone;
4. the table is removed when the ingress stops.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

ID = secrets.token_hex(2)
NS = {role: f"pk-uk{ID}-{role}" for role in ("sw", "in", "b1", "b2", "cl")}
CANDIDATES = ("172.31.213.0/24", "172.31.223.0/24", "10.213.77.0/24")
TABLE = "pyk3s-ingress-udp"


def pick_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    taken = []
    for line in routes.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast", "unreachable", "blackhole", "prohibit"):
            word = line.split()[1]
        if word == "default":
            continue
        try:
            taken.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    for cand in CANDIDATES:
        net = ipaddress.ip_network(cand)
        if not any(net.overlaps(t) for t in taken):
            return net
    pytest.skip(f"every candidate subnet ({', '.join(CANDIDATES)}) overlaps a route of this machine")


def run(*argv: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    full = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    return subprocess.run(full, capture_output=True, text=True, check=check, timeout=30)


class Net:
    def __init__(self) -> None:
        net = pick_subnet()
        hosts = list(net.hosts())
        self.ip = {"in": str(hosts[1]), "b1": str(hosts[2]), "b2": str(hosts[3]), "cl": str(hosts[4])}
        self.prefix = net.prefixlen

    def up(self) -> None:
        for ns in NS.values():
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", NS["sw"], "link", "add", "br0", "type", "bridge")
        run("ip", "-n", NS["sw"], "link", "set", "br0", "up")
        for role, ip in self.ip.items():
            port = f"pkv{ID}{role}"
            run("ip", "link", "add", "eth0", "netns", NS[role], "type", "veth", "peer", "name", port, "netns", NS["sw"])
            run("ip", "-n", NS["sw"], "link", "set", port, "master", "br0", "up")
            run("ip", "-n", NS[role], "addr", "add", f"{ip}/{self.prefix}", "dev", "eth0")
            run("ip", "-n", NS[role], "link", "set", "eth0", "up")

    def down(self) -> None:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


OBJECTS = """
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: default}}
spec: {{ports: [{{name: dns, port: 53, protocol: UDP}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: echo-1, namespace: default, labels: {{kubernetes.io/service-name: echo}}}}
addressType: IPv4
ports: [{{name: dns, port: 5353, protocol: UDP}}]
endpoints:
- {{addresses: [{b1}], conditions: {{ready: true}}}}
- {{addresses: [{b2}], conditions: {{ready: true}}}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {{name: echo, namespace: default}}
spec:
  entryPoints: [dns]
  routes:
  - services: [{{name: echo, port: 53}}]
"""

# Runs in the client's namespace: one socket per session, each sends WHO `repeat` times.
CLIENT = """
import json, socket, sys
target, sessions, repeat = (sys.argv[1], 9053), int(sys.argv[2]), int(sys.argv[3])
ports = [int(p) for p in sys.argv[4].split(",")] if len(sys.argv) > 4 else [0] * sessions
out = []
for port in ports:
    s = socket.socket(type=socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.settimeout(2)
    got = []
    for _ in range(repeat):
        s.sendto(b"WHO", target)
        try:
            data, peer = s.recvfrom(65535)
            got.append([data.decode(errors="replace"), f"{peer[0]}:{peer[1]}"])
        except TimeoutError:
            got.append(None)
    out.append({"port": s.getsockname()[1], "answers": got})
    s.close()
print(json.dumps(out))
"""


class Ingress:
    def __init__(self, net: Net, workdir: Path, *extra: str) -> None:
        self.net, self.workdir = net, workdir
        objects = workdir / "objects.yaml"
        objects.write_text(OBJECTS.format(**net.ip))
        self.log = workdir / f"ingress{len(extra)}.log"
        argv = ["ip", "netns", "exec", NS["in"], sys.executable, "-m", "pyk3s", "traefik",
                "--entryPoints.dns.address=:9053/udp", "--entryPoints.dns.udp.timeout=1s",
                "--entryPoints.traefik.address=:8080", "--api.insecure", "--metrics.prometheus",
                "--providers.kubernetescrd", f"--objects={objects}", "--workers=2", "--log.level=INFO", *extra]
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)

    def get(self, path: str) -> str:
        return run("curl", "-s", "-m", "3", f"http://127.0.0.1:8080{path}", ns=NS["in"], check=False).stdout

    def router(self) -> dict:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                routers = json.loads(self.get("/api/udp/routers") or "[]")
            except json.JSONDecodeError:
                routers = []
            if routers and "relay" in routers[0]:
                return routers[0]
            time.sleep(0.2)
        raise AssertionError(f"no UDP router in the API\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def sessions(net: Net, count: int, repeat: int = 3, ports: list[int] | None = None) -> list[dict]:
    argv = [sys.executable, "-c", CLIENT, net.ip["in"], str(count), str(repeat)]
    if ports:
        argv.append(",".join(map(str, ports)))
    return json.loads(run(*argv, ns=NS["cl"]).stdout)


def server_of(answer: list[str] | None) -> str:
    assert answer is not None, "no answer"
    return next(line.split(": ", 1)[1] for line in answer[0].splitlines() if line.startswith("Name: "))


def nft_sessions() -> int:
    listing = json.loads(run("nft", "-j", "list", "table", "inet", TABLE, ns=NS["in"]).stdout)
    total = 0
    for item in listing["nftables"]:
        rule = item.get("rule")
        if rule and rule["chain"] in ("sessions_in", "sessions_local"):
            total += sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
    return total


def has_table() -> bool:
    return TABLE in run("nft", "list", "tables", ns=NS["in"]).stdout


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Net, list[subprocess.Popen[bytes]], Path]]:
    network = Net()
    procs: list[subprocess.Popen[bytes]] = []
    workdir = tmp_path_factory.mktemp("udpkernel")
    try:
        network.up()
        for role in ("b1", "b2"):
            procs.append(subprocess.Popen(["ip", "netns", "exec", NS[role], sys.executable, "-m", "pyk3s", "whoamiudp",
                                           "--port", ":5353", "--name", role], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        yield network, procs, workdir
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        network.down()


@pytest.fixture(scope="module")
def ingress(net: tuple[Net, list, Path]) -> Iterator[Ingress]:
    network, _, workdir = net
    ing = Ingress(network, workdir)
    try:
        yield ing
    finally:
        ing.stop()


def test_kernel_relays_sessions(net: tuple[Net, list, Path], ingress: Ingress) -> None:
    network = net[0]
    assert ingress.router()["relay"] == "kernel (nftables DNAT, conntrack sessions)"
    deadline = time.monotonic() + 20
    while sessions(network, 1, 1)[0]["answers"][0] is None:  # the servers are up
        assert time.monotonic() < deadline, "no answer through the ingress"
        time.sleep(0.3)
    before = nft_sessions()
    found = sessions(network, 4)
    owners = []
    for session in found:
        names = {server_of(a) for a in session["answers"]}
        assert len(names) == 1, f"a session moved between servers: {session}"  # one session, one server
        owners.append(names.pop())
        assert {a[1] for a in session["answers"]} == {f"{network.ip['in']}:9053"}  # from the entry point
        assert f"RemoteAddr: {network.ip['in']}:" in session["answers"][0][0]  # masqueraded, as Traefik's
    assert Counter(owners) == {"b1": 2, "b2": 2}  # round robin per session
    assert nft_sessions() - before == 4
    metrics = ingress.get("/metrics")
    assert 'traefik_open_connections{entrypoint="dns",protocol="UDP"} 0' in metrics  # nothing in userspace


def test_session_ends_after_the_udp_timeout(net: tuple[Net, list, Path], ingress: Ingress) -> None:
    network = net[0]
    first = sessions(network, 1, 2)[0]
    port = first["port"]
    before = nft_sessions()
    again = sessions(network, 1, 1, [port])[0]  # within udp.timeout (1s): the same session
    assert server_of(again["answers"][0]) == server_of(first["answers"][0])
    assert nft_sessions() == before
    time.sleep(2.5)
    sessions(network, 1, 1, [port])  # past it: a new session
    assert nft_sessions() == before + 1


def test_access_logs_keep_the_router_in_userspace(net: tuple[Net, list, Path], ingress: Ingress) -> None:
    network, _, workdir = net
    ingress.stop()
    assert not has_table()  # removed when the ingress stopped
    logged = Ingress(network, workdir, "--accesslog=true")
    try:
        router = logged.router()
        assert router["relay"] == "userspace: access logs are on (a session's record needs its byte counts)"
        # The API answers from the supervisor; each worker hears of the router a moment later, and a
        # datagram a worker takes before that is dropped as one with no router (as in Traefik).
        deadline = time.monotonic() + 20
        while any(s["answers"][0] is None for s in sessions(network, 4, 1)):  # client ports spread over workers
            assert time.monotonic() < deadline, "no answer through the userspace relay"
        found = sessions(network, 2)
        assert all(a is not None and a[1] == f"{network.ip['in']}:9053" for s in found for a in s["answers"])
        for s in found:  # (each worker process has its own round robin: the split is the kernel's)
            assert len({server_of(a) for a in s["answers"]}) == 1
        assert not has_table()
        deadline = time.monotonic() + 10
        while '"UDP"' not in logged.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.3)  # a session's record is written when it ends (udp.timeout 1s)
        assert f'{network.ip["cl"]}' in logged.log.read_text()
    finally:
        logged.stop()
