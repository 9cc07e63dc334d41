"""Cluster DNS in a real cluster: `pyk3s server` with its agent runs the packaged CoreDNS Deployment.

The host queries the kube-dns Service address (the agent routes the service CIDR into its bridge) with
dnspython and dig; a pod resolves names through its own resolv.conf search path. The forward path goes
to a stand-in upstream on the node's own link address (the resolv.conf given with --resolv-conf names
it), never to the machine's resolver. Spec references: dns.md S/P/O statements, k3s.md 4.2/4.4.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype as T
import dns.rrset
import pytest
from pyk3s_server import NodeAddress, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not shutil.which("nft") or not shutil.which("dig"),
                                                  reason="needs nft and dig")]

NS = "pk-dnse2e"
ZONE = "cluster.local"
EXTERNAL = "external.example.test"
EXTERNAL_IP = "10.99.7.7"

MANIFEST = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web-0, namespace: {NS}, labels: {{app: pk-web}}}}
spec:
  containers: [{{name: w, image: pyk3s/whoami, args: ["--port", "8080"]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{app: pk-web}}
  ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: db-0, namespace: {NS}, labels: {{app: pk-db}}}}
spec:
  hostname: db-0
  subdomain: db
  containers: [{{name: w, image: pyk3s/whoami, args: ["--port", "5432"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: db-1, namespace: {NS}, labels: {{app: pk-db}}}}
spec:
  hostname: db-1
  subdomain: db
  containers: [{{name: w, image: pyk3s/whoami, args: ["--port", "5432"]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{app: pk-db}}
  ports: [{{name: pg, port: 5432, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext, namespace: {NS}}}
spec:
  type: ExternalName
  externalName: {EXTERNAL}
"""

CLIENT_POD = f"""
apiVersion: v1
kind: Pod
metadata: {{name: resolver, namespace: {NS}}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: pyk3s/whoami
    command:
    - python3
    - -c
    - |
      import socket
      for name in ("kubernetes.default", "web", "web.{NS}", "db-0.db"):
          try:
              print("RESOLVED", name, socket.gethostbyname(name), flush=True)
          except OSError as err:
              print("FAILED", name, err, flush=True)
      print(open("/etc/resolv.conf").read(), flush=True)
"""


class StandInUpstream:
    """The only upstream cluster DNS may forward to: knows {EXTERNAL} A, NXDOMAIN otherwise."""

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
                q = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - garbage is dropped
                continue
            if not q.question:
                continue
            qn = q.question[0]
            self.seen.append(qn.name.to_text().lower())
            r = dns.message.make_response(q)
            r.flags |= dns.flags.RA
            if qn.name.to_text().lower() == EXTERNAL + "." and qn.rdtype == T.A:
                r.answer.append(dns.rrset.from_text(qn.name, 300, "IN", "A", EXTERNAL_IP))
            elif qn.name.to_text().lower() != EXTERNAL + ".":
                r.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(r.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def ask(srv: ServerProcess, name: str, rdtype: str = "A", tcp: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    last: Exception | None = None
    for _ in range(3):
        try:
            return send(q, srv.nets.cluster_dns, timeout=2)
        except (dns.exception.Timeout, OSError) as err:
            last = err
    raise AssertionError(f"no answer from {srv.nets.cluster_dns} for {name} {rdtype}: {last}")


def values(msg: dns.message.Message, rdtype: int, section: str = "answer") -> list[str]:
    return sorted(rd.to_text() for rr in getattr(msg, section) if rr.rdtype == rdtype for rd in rr)


def pod_ip(srv: ServerProcess, name: str) -> str:
    return srv.kubectl("-n", NS, "get", "pod", name, "-o", "jsonpath={.status.podIP}").out.strip()


def svc_ip(srv: ServerProcess, name: str, ns: str = NS) -> str:
    return srv.kubectl("-n", ns, "get", "svc", name, "-o", "jsonpath={.spec.clusterIP}").out.strip()


def reverse(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def fqdn(name: str) -> str:
    return f"{name}.{NS}.svc.{ZONE}"


@pytest.fixture(scope="module")
def cluster(kubectl_bin: str) -> Iterator[tuple[ServerProcess, StandInUpstream]]:
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb"])
    upstream = None
    try:
        srv.node = NodeAddress.create(srv.ident)   # the stand-in listens where --resolv-conf points
        upstream = StandInUpstream(srv.node.ip)
        srv.start(timeout=90)
        srv.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=120s", timeout=130)
        srv.kubectl("apply", "-f", "-", input=MANIFEST)
        srv.kubectl("-n", NS, "wait", "--for=condition=Ready", "pod/web-0", "pod/db-0", "pod/db-1",
                    "--timeout=90s", timeout=100)
        srv.wait_for(lambda: values(ask(srv, fqdn("db")), T.A) == sorted([pod_ip(srv, "db-0"), pod_ip(srv, "db-1")]),
                     timeout=30, what="headless service answers with both ready pods")
        yield srv, upstream
    finally:
        if upstream is not None:
            upstream.close()
        srv.cleanup()


def test_packaged_deployment_ready_and_service(cluster) -> None:  # noqa: ANN001
    srv, _ = cluster
    dep = srv.kubectl("-n", "kube-system", "get", "deployment", "coredns", "-o", "json").json()
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"].split(":")[0].endswith("rancher/mirrored-coredns-coredns")
    assert c["readinessProbe"]["httpGet"]["port"] == 8181 and c["livenessProbe"]["httpGet"]["port"] == 8080
    assert dep["status"].get("readyReplicas") == 1
    assert svc_ip(srv, "kube-dns", "kube-system") == srv.nets.cluster_dns
    pods = srv.kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json").json()["items"]
    assert [cond["status"] for p in pods for cond in p["status"]["conditions"] if cond["type"] == "Ready"] == ["True"]
    # the packaged Deployment sets PYK3S_DNS_WORKERS=auto: one worker per CPU the pod may use
    logs = srv.kubectl("-n", "kube-system", "logs", pods[0]["metadata"]["name"]).out
    assert "CoreDNS-1.13.1 (pyk3s)" in logs
    if len(os.sched_getaffinity(0)) > 1:
        assert f"{len(os.sched_getaffinity(0))} workers" in logs, logs
    # K3s wiring (K1-K4): kubernetes.default resolves, the answer is authoritative with TTL 5
    r = ask(srv, f"kubernetes.default.svc.{ZONE}")
    assert values(r, T.A) == [srv.nets.kubernetes_ip] and r.flags & dns.flags.AA and r.answer[0].ttl == 5


def test_clusterip_a_srv_ptr(cluster) -> None:  # noqa: ANN001
    srv, _ = cluster
    ip = svc_ip(srv, "web")
    assert values(ask(srv, fqdn("web")), T.A) == [ip]                                # S6
    assert values(ask(srv, fqdn("web"), tcp=True), T.A) == [ip]
    r = ask(srv, f"_http._tcp.{fqdn('web')}", "SRV")                                 # S7, P14, P15
    assert values(r, T.SRV) == [f"0 100 80 {fqdn('web')}."]
    assert values(r, T.A, "additional") == [ip]
    assert values(ask(srv, reverse(ip), "PTR"), T.PTR) == [f"{fqdn('web')}."]        # S8, P21
    web0 = pod_ip(srv, "web-0")                                                      # P10, P22
    dashed = web0.replace(".", "-")
    assert values(ask(srv, f"{dashed}.{fqdn('web')}"), T.A) == [web0]
    assert values(ask(srv, reverse(web0), "PTR"), T.PTR) == [f"{dashed}.{fqdn('web')}."]
    out = subprocess.run(["dig", f"@{srv.nets.cluster_dns}", "+short", "+time=2", "+tries=2", fqdn("web")],
                         capture_output=True, text=True, timeout=20).stdout.split()
    assert out == [ip]
    out = subprocess.run(["dig", f"@{srv.nets.cluster_dns}", "+short", "+time=2", "+tries=2", "SRV",
                          f"_http._tcp.{fqdn('web')}"], capture_output=True, text=True, timeout=20).stdout.strip()
    assert out == f"0 100 80 {fqdn('web')}."


def test_headless_hostnames_srv_ptr(cluster) -> None:  # noqa: ANN001
    srv, _ = cluster
    ip0, ip1 = pod_ip(srv, "db-0"), pod_ip(srv, "db-1")
    assert values(ask(srv, fqdn("db")), T.A) == sorted([ip0, ip1])                    # S9
    assert values(ask(srv, f"db-0.{fqdn('db')}"), T.A) == [ip0]                        # S10, S16
    assert values(ask(srv, f"db-1.{fqdn('db')}"), T.A) == [ip1]
    r = ask(srv, f"_pg._tcp.{fqdn('db')}", "SRV")                                     # S11, P14
    assert values(r, T.SRV) == [f"0 50 5432 db-0.{fqdn('db')}.", f"0 50 5432 db-1.{fqdn('db')}."]
    assert values(ask(srv, reverse(ip0), "PTR"), T.PTR) == [f"db-0.{fqdn('db')}."]    # S12
    # the dashed-IP form does not exist when a hostname is set (P9)
    assert ask(srv, f"{ip0.replace('.', '-')}.{fqdn('db')}").rcode() == dns.rcode.NXDOMAIN
    out = subprocess.run(["dig", f"@{srv.nets.cluster_dns}", "+short", "+time=2", "+tries=2", f"db-1.{fqdn('db')}"],
                         capture_output=True, text=True, timeout=20).stdout.split()
    assert out == [ip1]


def test_externalname_txt_negative_and_pods(cluster) -> None:  # noqa: ANN001
    srv, upstream = cluster
    r = ask(srv, fqdn("ext"), "CNAME")                                                # P11, P12
    assert values(r, T.CNAME) == [f"{EXTERNAL}."]
    r = ask(srv, fqdn("ext"))                                                         # S13: target resolved upstream
    assert values(r, T.CNAME) == [f"{EXTERNAL}."] and values(r, T.A) == [EXTERNAL_IP]
    r = ask(srv, f"dns-version.{ZONE}", "TXT")                                        # S1, P25
    assert values(r, T.TXT) == ['"1.1.0"']
    r = ask(srv, fqdn("nothing"))                                                     # NXDOMAIN with SOA (P29)
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
    assert [rr.rdtype for rr in r.authority] == [T.SOA] and r.authority[0].name.to_text() == f"{ZONE}."
    r = ask(srv, fqdn("web"), "AAAA")                                                 # NODATA with SOA (P6)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and [rr.rdtype for rr in r.authority] == [T.SOA]
    r = ask(srv, f"web.pk-no-such-ns.svc.{ZONE}")                                     # P5
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert values(ask(srv, f"10-42-9-99.{NS}.pod.{ZONE}"), T.A) == ["10.42.9.99"]      # P31 pods insecure
    assert ask(srv, f"10-42-9-99.{NS}.pod.{ZONE}", "AAAA").answer == []
    assert ask(srv, f"1-2-3.{NS}.pod.{ZONE}").rcode() == dns.rcode.NXDOMAIN           # P32
    assert f"{EXTERNAL}." in upstream.seen and not any(n.endswith(f"{ZONE}.") for n in upstream.seen)


def test_forward_to_upstream_and_cache(cluster) -> None:  # noqa: ANN001
    srv, upstream = cluster
    before = len(upstream.seen)
    r = ask(srv, "www2.example.test")
    assert r.rcode() == dns.rcode.NXDOMAIN and "www2.example.test." in upstream.seen[before:]
    r = ask(srv, EXTERNAL)
    assert values(r, T.A) == [EXTERNAL_IP] and r.answer[0].ttl <= 30                  # O8/O9 cache 30
    out = subprocess.run(["dig", f"@{srv.nets.cluster_dns}", "+short", "+time=2", "+tries=2", EXTERNAL],
                         capture_output=True, text=True, timeout=20).stdout.split()
    assert out == [EXTERNAL_IP]


def test_node_name_from_nodehosts(cluster) -> None:  # noqa: ANN001
    srv, _ = cluster
    hosts = srv.wait_for(lambda: srv.kubectl("-n", "kube-system", "get", "configmap", "coredns", "-o",
                                             "jsonpath={.data.NodeHosts}").out, what="NodeHosts written")
    assert f"{srv.node.ip} {srv.node_name}" in hosts
    # the hosts plugin re-reads the mounted file every 15s (K1), the volume refresh adds a few seconds
    srv.wait_for(lambda: values(ask(srv, srv.node_name), T.A) == [srv.node.ip], timeout=45,
                 what="the node's name answered from NodeHosts")
    r = ask(srv, srv.node_name)
    assert r.answer[0].ttl <= 30                                                      # hosts ttl 60, cache 30
    # K7(a): hosts answers the node IP's PTR (every name of its NodeHosts line, e.g. also the OS hostname)
    assert f"{srv.node_name}." in values(ask(srv, reverse(srv.node.ip), "PTR"), T.PTR)


def test_pod_resolves_through_search_path(cluster) -> None:  # noqa: ANN001
    srv, _ = cluster
    srv.kubectl("apply", "-f", "-", input=CLIENT_POD)
    srv.wait_for(lambda: srv.kubectl("-n", NS, "get", "pod", "resolver", "-o", "jsonpath={.status.phase}").out
                 in ("Succeeded", "Failed"), timeout=60, what="resolver pod finished")
    logs = srv.kubectl("-n", NS, "logs", "resolver").out
    got = {line.split()[1]: line.split()[2] for line in logs.splitlines() if line.startswith("RESOLVED")}
    assert got == {"kubernetes.default": srv.nets.kubernetes_ip, "web": svc_ip(srv, "web"),
                   f"web.{NS}": svc_ip(srv, "web"), "db-0.db": pod_ip(srv, "db-0")}, logs
    assert f"nameserver {srv.nets.cluster_dns}" in logs and f"search {NS}.svc.{ZONE}" in logs


def test_new_service_answered_quickly(cluster) -> None:  # noqa: ANN001
    """Every worker (the packaged Deployment runs one per CPU) must see a new Service within seconds."""
    srv, _ = cluster
    srv.kubectl("-n", NS, "create", "service", "clusterip", "late", "--tcp=81:8081")
    ip = svc_ip(srv, "late")
    start = time.monotonic()
    srv.wait_for(lambda: values(ask(srv, fqdn("late")), T.A) == [ip], timeout=10, interval=0.05,
                 what="new service answered")
    first = time.monotonic() - start
    time.sleep(1.0)
    # new sockets use new source ports, which SO_REUSEPORT spreads over the workers
    answers = [values(ask(srv, fqdn("late")), T.A) for _ in range(24)]
    assert answers == [[ip]] * 24, answers
    assert first < 5, first
    srv.kubectl("-n", NS, "delete", "service", "late")
    srv.wait_for(lambda: all(ask(srv, fqdn("late")).rcode() == dns.rcode.NXDOMAIN for _ in range(12)),
                 timeout=10, interval=0.1, what="deleted service gone from every worker")


def test_broken_corefile_keeps_serving_and_warns(cluster) -> None:  # noqa: ANN001
    srv, _ = cluster
    cm = srv.kubectl("-n", "kube-system", "get", "configmap", "coredns", "-o", "json").json()
    good = cm["data"]["Corefile"]
    broken = good.replace("    loadbalance\n", "    loadbalance\n    pk-no-such-plugin\n", 1)
    assert broken != good
    patch = json.dumps({"data": {"Corefile": broken}})
    srv.kubectl("-n", "kube-system", "patch", "configmap", "coredns", "--type=merge", "-p", patch)
    try:
        def warned() -> bool:
            ev = srv.kubectl("-n", "kube-system", "get", "events", "--field-selector",
                             "involvedObject.kind=ConfigMap,involvedObject.name=coredns,type=Warning",
                             "-o", "json").json()["items"]
            return [e for e in ev if "pk-no-such-plugin" in e.get("message", "")]
        # reload checks every 30s +-15s (O11), the kubelet refreshes the volume every few seconds
        events = srv.wait_for(warned, timeout=90, interval=1.0, what="Warning event on the coredns ConfigMap")
        assert events[0]["reason"] and events[0]["source"].get("component") == "coredns"
        assert values(ask(srv, fqdn("web")), T.A) == [svc_ip(srv, "web")]
        assert values(ask(srv, EXTERNAL), T.A) == [EXTERNAL_IP]
    finally:
        srv.kubectl("-n", "kube-system", "patch", "configmap", "coredns", "--type=merge", "-p",
                    json.dumps({"data": {"Corefile": good}}))
