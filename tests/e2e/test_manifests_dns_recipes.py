"""The guide's CoreDNS recipes against a real server, its agent and the DNS add-on running as a pod.

(a) editing the Corefile in manifests/coredns.yaml changes the answers; (b) a restart reverts it;
(c) save coredns.yaml, restart with --disable coredns, copy it back and change it: the change is live
and survives restarts. Cluster DNS forwards only to a stand-in upstream on our own node link (the
server's --resolv-conf names it); every query here is for a cluster-domain name.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from pyk3s_server import NodeAddress, ServerProcess

RESCAN = "2"
BASE_DISABLE = "traefik,servicelb"
NAME = "recipe.pk-e2e.cluster.local"
ANSWER = "203.0.113.7"
HOSTS_LINE = "hosts /etc/coredns/NodeHosts {"


class StandInUpstream:
    """A tiny upstream resolver on the node link: NXDOMAIN for everything, and a record of what it saw."""

    def __init__(self, ip: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 53))
        self.sock.settimeout(0.2)
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - garbage is simply dropped
                continue
            self.seen.append(str(query.question[0].name) if query.question else "")
            reply = dns.message.make_response(query)
            reply.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def lookup(srv: ServerProcess, name: str = NAME) -> str:
    """The A answer of the cluster DNS Service for ``name``, "NXDOMAIN", or "" when nothing answers."""
    try:
        reply = dns.query.udp(dns.message.make_query(name, "A"), srv.nets.cluster_dns, timeout=1.5)
    except (dns.exception.Timeout, OSError):
        return ""
    if reply.rcode() != dns.rcode.NOERROR:
        return dns.rcode.to_text(reply.rcode())
    ips = [r.address for rr in reply.answer if rr.rdtype == dns.rdatatype.A for r in rr]
    return ips[0] if ips else "NODATA"


def corefile(srv: ServerProcess) -> str:
    return srv.kubectl("-n", "kube-system", "get", "configmap", "coredns", "-o",
                       "jsonpath={.data.Corefile}").out


def edited(text: str) -> str:
    """coredns.yaml with an inline hosts entry (the packaged `reload` keeps its default interval)."""
    assert HOSTS_LINE in text, "the packaged Corefile changed shape"
    return text.replace(HOSTS_LINE, f"{HOSTS_LINE}\n          {ANSWER} {NAME}", 1)


@pytest.fixture(scope="module")
def dns_cluster(kubectl_bin: str) -> Iterator[tuple[ServerProcess, StandInUpstream]]:
    srv = ServerProcess(agent=True, extra_args=["--disable", BASE_DISABLE, "--manifests-rescan-interval", RESCAN])
    upstream = None
    try:
        srv.node = NodeAddress.create(srv.ident)  # the stand-in listens where --resolv-conf points
        upstream = StandInUpstream(srv.node.ip)
        srv.start(timeout=60)
        srv.wait_for(lambda: lookup(srv, "kubernetes.default.svc.cluster.local") == srv.nets.kubernetes_ip,
                     timeout=60, what="cluster DNS answering from the coredns pod")
        yield srv, upstream
    finally:
        if upstream is not None:
            upstream.close()
        srv.cleanup()


@pytest.mark.timing_sensitive
def test_a_editing_the_corefile_changes_answers(dns_cluster: tuple[ServerProcess, StandInUpstream]) -> None:
    srv, _ = dns_cluster
    assert lookup(srv) == "NXDOMAIN"
    path = srv.manifests_dir / "coredns.yaml"
    path.write_text(edited(path.read_text()))
    started = time.monotonic()
    srv.wait_for(lambda: ANSWER in corefile(srv), timeout=float(RESCAN) + 4, what="the ConfigMap within one pass")
    # then the kubelet's volume sync (every 5 s) and the running CoreDNS, which reloads as soon as its
    # Corefile changes, carry it to answers
    srv.wait_for(lambda: lookup(srv) == ANSWER, timeout=float(RESCAN) + 15, interval=0.5,
                 what="the edited Corefile answering")
    print(f"recipe (a): answer changed {time.monotonic() - started:.1f}s after the edit")
    hosts = srv.kubectl("-n", "kube-system", "get", "configmap", "coredns", "-o", "jsonpath={.data.NodeHosts}").out
    assert srv.node_name in hosts, "NodeHosts (not in the file) must survive the apply"


def test_b_restart_reverts_the_edit(dns_cluster: tuple[ServerProcess, StandInUpstream]) -> None:
    srv, _ = dns_cluster
    srv.restart(timeout=60)
    assert ANSWER not in (srv.manifests_dir / "coredns.yaml").read_text()
    srv.wait_for(lambda: ANSWER not in corefile(srv), timeout=float(RESCAN) + 6, what="the ConfigMap reverted")
    srv.wait_for(lambda: lookup(srv) == "NXDOMAIN", timeout=75, interval=1, what="the edit gone from answers")


def test_c_disable_coredns_and_keep_a_changed_copy(
        dns_cluster: tuple[ServerProcess, StandInUpstream], tmp_path: Path) -> None:
    srv, upstream = dns_cluster
    saved = tmp_path / "coredns.yaml"
    shutil.copy2(srv.manifests_dir / "coredns.yaml", saved)  # (1) save it elsewhere

    disabled = ["--disable", f"{BASE_DISABLE},coredns", "--manifests-rescan-interval", RESCAN]
    srv.restart(disabled, timeout=60)  # (2) disable CoreDNS
    srv.wait_for(lambda: not (srv.manifests_dir / "coredns.yaml").exists(), timeout=15,
                 what="pyk3s's own coredns.yaml removed")
    srv.wait_for(lambda: srv.kubectl("-n", "kube-system", "get", "deployment", "coredns", check=False).rc != 0,
                 timeout=15, what="the coredns Deployment uninstalled")
    assert srv.kubectl("-n", "kube-system", "get", "addons.k3s.cattle.io", "coredns", check=False).rc != 0

    target = srv.manifests_dir / "coredns.yaml"
    shutil.copy2(saved, target)  # (3) copy it back ...
    target.write_text(edited(target.read_text()))  # ... and change it
    srv.wait_for(lambda: lookup(srv) == ANSWER, timeout=60, interval=1, what="the user's CoreDNS answering")

    srv.restart(disabled, timeout=60)  # the change survives further restarts
    assert ANSWER in target.read_text()
    time.sleep(float(RESCAN) * 2)
    srv.wait_for(lambda: lookup(srv) == ANSWER, timeout=60, interval=1, what="the change after a restart")
    assert ANSWER in corefile(srv)
    assert NAME not in upstream.seen and not any(s.endswith("cluster.local.") for s in upstream.seen)
