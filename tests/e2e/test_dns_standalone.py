"""`pyk3s coredns` as a separate process against a real pyk3s API server (no agent) via a kubeconfig.

The test starts its own API server (ServerProcess without agent), runs `pyk3s coredns -conf ...
--kubeconfig ...` on a loopback port, creates objects with kubectl and queries with dnspython and dig.
The second test runs two workers (`multisocket 2`) and checks that an update reaches both.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype as T
import pytest
from pyk3s_server import REPO, ServerProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not shutil.which("dig"), reason="needs dig")]

NS = "pk-dns-e2e"


@pytest.fixture(scope="module")
def api(kubectl_bin: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(extra_args=["--disable", "coredns,traefik,servicelb"])
    try:
        srv.start()
        srv.kubectl("create", "namespace", NS)
        srv.kubectl("-n", NS, "create", "service", "clusterip", "pk-web", "--tcp=80:8080")
        yield srv
    finally:
        srv.cleanup()


class CoreDNS:
    def __init__(self, srv: ServerProcess, tmp: Path, extra: str = "") -> None:
        self.port = free_port()
        self.conf = tmp / "Corefile"
        self.ready_port = free_port()
        self.conf.write_text(f".:{self.port} {{\n  bind 127.0.0.1\n{extra}  errors\n  ready 127.0.0.1:{self.ready_port}\n"
                             f"  kubernetes cluster.local in-addr.arpa ip6.arpa\n  cache 30\n  loadbalance\n}}\n")
        self.log = open(tmp / "coredns.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "pyk3s", "coredns", "-conf", str(self.conf),
                                      "--kubeconfig", str(srv.kubeconfig)], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=REPO)

    def ask(self, name: str, rdtype: str = "A") -> dns.message.Message | None:
        try:
            return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=self.port, timeout=1)
        except (dns.exception.Timeout, OSError):
            return None

    def a(self, name: str) -> list[str]:
        r = self.ask(name)
        return sorted(rd.address for rr in (r.answer if r else []) if rr.rdtype == T.A for rd in rr)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def coredns(api: ServerProcess, tmp_path: Path) -> Iterator:  # noqa: ANN201
    started: list[CoreDNS] = []

    def start(extra: str = "") -> CoreDNS:
        c = CoreDNS(api, tmp_path, extra)
        started.append(c)
        return c
    yield start
    for c in started:
        c.stop()


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def wait(predicate, timeout: float, what: str, c: CoreDNS):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}; last {last!r}\n{c.output()}")


def test_standalone_server_against_kubeconfig(api: ServerProcess, coredns) -> None:  # noqa: ANN001
    c = coredns()
    ip = api.kubectl("-n", NS, "get", "svc", "pk-web", "-o", "jsonpath={.spec.clusterIP}").out.strip()
    name = f"pk-web.{NS}.svc.cluster.local"
    wait(lambda: c.a(name) == [ip], 30, "ClusterIP answered", c)
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(c.port), "+short", "+time=1", "+tries=2", name],
                         capture_output=True, text=True, timeout=20).stdout.split()
    assert out == [ip]
    r = c.ask(f"nothing.{NS}.svc.cluster.local")
    assert r is not None and r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].rdtype == T.SOA
    r = c.ask("dns-version.cluster.local", "TXT")
    assert r is not None and r.answer[0][0].to_text() == '"1.1.0"'
    # an update through the API reaches the server
    api.kubectl("-n", NS, "create", "service", "clusterip", "pk-new", "--tcp=81:8081")
    new_ip = api.kubectl("-n", NS, "get", "svc", "pk-new", "-o", "jsonpath={.spec.clusterIP}").out.strip()
    wait(lambda: c.a(f"pk-new.{NS}.svc.cluster.local") == [new_ip], 5, "new service answered", c)
    api.kubectl("-n", NS, "delete", "service", "pk-new")
    wait(lambda: (r := c.ask(f"pk-new.{NS}.svc.cluster.local")) is not None and r.rcode() == dns.rcode.NXDOMAIN,
         5, "deleted service gone", c)


def test_multisocket_workers_all_see_updates(api: ServerProcess, coredns) -> None:  # noqa: ANN001
    c = coredns("  multisocket 2\n")
    name = f"pk-web.{NS}.svc.cluster.local"
    ip = api.kubectl("-n", NS, "get", "svc", "pk-web", "-o", "jsonpath={.spec.clusterIP}").out.strip()
    wait(lambda: c.a(name) == [ip], 30, "ClusterIP answered", c)
    wait(lambda: "2 workers" in c.output(), 10, "two workers announced", c)
    workers = [pid for pid in subprocess.run(["pgrep", "-P", str(c.proc.pid)], capture_output=True,
                                             text=True).stdout.split()
               if b"--worker-index" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 1, c.output()
    wait(lambda: subprocess.run(["ss", "-Hulpn", f"sport = :{c.port}"], capture_output=True,
                                text=True).stdout.count("127.0.0.1:") == 2, 15, "both workers bound", c)
    wait(lambda: http_get(c.ready_port, "/ready") == (200, "OK"), 15, "ready once both workers are", c)
    for i in range(3):
        svc = f"pk-upd-{i}"
        api.kubectl("-n", NS, "create", "service", "clusterip", svc, "--tcp=82:8082")
        sip = api.kubectl("-n", NS, "get", "svc", svc, "-o", "jsonpath={.spec.clusterIP}").out.strip()
        wait(lambda s=svc, ip=sip: c.a(f"{s}.{NS}.svc.cluster.local") == [ip], 5, f"{svc} answered", c)
        # every query comes from a new source port: SO_REUSEPORT spreads them over both workers
        time.sleep(0.5)
        got = [c.a(f"{svc}.{NS}.svc.cluster.local") for _ in range(16)]
        assert got == [[sip]] * 16, (got, c.output())
        api.kubectl("-n", NS, "delete", "service", svc)
    # the primary forwards SIGTERM: no worker is left
    c.stop()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
