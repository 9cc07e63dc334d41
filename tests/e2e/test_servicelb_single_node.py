"""ServiceLB end to end on one node: a real `pyk3s server` with its agent, real kubectl, real packets.

The server runs with Traefik and CoreDNS disabled (Traefik's LoadBalancer Service would hold 80/443;
the support helper picks pod/service CIDRs no other test cluster on this machine routes). A client network namespace `pkc<id>` hangs off the
node link with an address of its own, so source-range checks see a real outside client.
Every Service port is a random free port: other clusters on this machine hook the same node-local
addresses.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from pyk3s_server import ServerProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

LB = "svccontroller.k3s.cattle.io"
CONDITION = "pyk3s.io/LoadBalancerReady"

WHOAMI = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: whoami}
spec:
  replicas: 1
  selector: {matchLabels: {app: whoami}}
  template:
    metadata: {labels: {app: whoami}}
    spec:
      containers:
      - name: whoami
        image: traefik/whoami
        args: ["--port", "8888"]
        ports: [{containerPort: 8888, name: web}, {containerPort: 8888, protocol: UDP, name: echo}]
        readinessProbe: {tcpSocket: {port: 8888}, periodSeconds: 1}
"""


def lb_service(name: str, port: int, *, udp: bool = False, extra_spec: dict | None = None) -> str:
    ports = [{"name": "http", "port": port, "targetPort": 8888, "protocol": "TCP"}]
    if udp:
        ports.append({"name": "echo", "port": port, "targetPort": 8888, "protocol": "UDP"})
    spec = {"type": "LoadBalancer", "selector": {"app": "whoami"}, "ports": ports, **(extra_spec or {})}
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})


class Client:
    """A network namespace on the node link: an outside client with an address of its own."""

    def __init__(self, ident: str, node_link: str, node_ip: str) -> None:
        self.netns, self.host_end = f"pkc{ident}", f"pkx{ident}"
        self.ip = str(ipaddress.ip_address(node_ip) + 49)
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        run("ip", "netns", "add", self.netns)
        run("ip", "link", "add", self.host_end, "type", "veth", "peer", "name", f"pky{ident}")
        run("ip", "link", "set", f"pky{ident}", "netns", self.netns)
        run("ip", "link", "set", self.host_end, "master", node_link, "up")
        run("ip", "-n", self.netns, "link", "set", f"pky{ident}", "name", "eth0")
        run("ip", "-n", self.netns, "addr", "add", f"{self.ip}/24", "dev", "eth0")
        run("ip", "-n", self.netns, "link", "set", "eth0", "up")
        run("ip", "-n", self.netns, "link", "set", "lo", "up")

    def curl(self, url: str) -> subprocess.CompletedProcess[str]:
        return curl(url, netns=self.netns)

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)


def curl(url: str, netns: str | None = None, timeout: float = 3) -> subprocess.CompletedProcess[str]:
    argv = (["ip", "netns", "exec", netns] if netns else []) + ["curl", "-s", "-m", str(timeout), url]
    return subprocess.run(argv, capture_output=True, text=True)


def udp_echo(ip: str, port: int, payload: bytes = b"pk-udp-probe") -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(payload, (ip, port))
        try:
            return s.recvfrom(2048)[0]
        except TimeoutError:
            return b""


@pytest.fixture(scope="module")
def lb(kubectl_bin: str) -> Iterator[tuple[ServerProcess, Client]]:
    base = ["--disable", "traefik,coredns"]
    srv = ServerProcess(agent=True, extra_args=base)
    srv.base_args = base  # type: ignore[attr-defined]
    client = None
    try:
        srv.start(timeout=60)
        assert srv.node is not None
        client = Client(srv.ident, srv.node.link, srv.node.ip)
        srv.wait_for(lambda: "True" in srv.kubectl(
            "get", "node", srv.node_name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}").out,
            timeout=60, what="node Ready")
        srv.kubectl("apply", "-f", "-", input=WHOAMI)
        yield srv, client
    finally:
        if client is not None:
            client.remove()
        srv.cleanup()
    left = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left += subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left += subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert srv.ident not in left, f"leftovers of test cluster {srv.ident}:\n{left}"


def svc_json(srv: ServerProcess, name: str) -> dict:
    return srv.kubectl("get", "svc", name, "-o", "json").json()  # type: ignore[return-value]


def external_ip_column(srv: ServerProcess, name: str) -> str:
    line = srv.kubectl("get", "svc", name, "--no-headers").out.split()
    return line[3]


def svclb_pods(srv: ServerProcess, name: str) -> list[dict]:
    return srv.kubectl("get", "pods", "-n", "kube-system", "-l", f"{LB}/svcname={name}", "-o", "json").json()["items"]


def daemonsets(srv: ServerProcess, name: str) -> list[dict]:
    return srv.kubectl("get", "ds", "-n", "kube-system", "-l", f"{LB}/svcname={name}", "-o", "json").json()["items"]


def events(srv: ServerProcess, name: str) -> list[tuple[str, str, str]]:
    items = srv.kubectl("get", "events", "-n", "default", "-o", "json").json()["items"]
    return [(e["type"], e["reason"], e.get("message", "")) for e in items
            if e["involvedObject"].get("kind") == "Service" and e["involvedObject"].get("name") == name]


def lb_condition(svc: dict) -> dict:
    return next((c for c in (svc.get("status") or {}).get("conditions") or [] if c["type"] == CONDITION), {})


def served_at(srv: ServerProcess, name: str, ip: str, timeout: float = 60) -> None:
    srv.wait_for(lambda: external_ip_column(srv, name) == ip, timeout=timeout, what=f"{name} EXTERNAL-IP {ip}")


@pytest.fixture(scope="module")
def whoami(lb: tuple[ServerProcess, Client]) -> int:
    srv, _ = lb
    port = free_port()
    srv.kubectl("apply", "-f", "-", input=lb_service("whoami", port, udp=True))
    assert srv.node is not None
    served_at(srv, "whoami", srv.node.ip)
    return port


def test_serves_tcp_and_udp_on_the_node_address(lb: tuple[ServerProcess, Client], whoami: int) -> None:
    srv, client = lb
    assert srv.node is not None
    port = whoami
    r = srv.wait_for(lambda: curl(f"http://{srv.node.ip}:{port}/").stdout, what="curl node:port")
    assert r.startswith("Hostname: whoami-") and f"Host: {srv.node.ip}:{port}" in r
    assert client.curl(f"http://{srv.node.ip}:{port}/").stdout.startswith("Hostname: whoami-")
    assert srv.wait_for(lambda: udp_echo(srv.node.ip, port), what="UDP echo") == b"pk-udp-probe"
    # The klipper-lb data plane itself: the svclb pod forwards its port to the ClusterIP, and the
    # node's hostPort (any node-local address that is not the LB address) reaches the svclb pod.
    pod = svclb_pods(srv, "whoami")[0]
    assert [c["name"] for c in pod["spec"]["containers"]] == [f"lb-tcp-{port}", f"lb-udp-{port}"]
    pod_ip = pod["status"]["podIP"]
    r = srv.wait_for(lambda: curl(f"http://{pod_ip}:{port}/").stdout, what="curl svclb pod")
    assert r.startswith("Hostname: whoami-") and f"RemoteAddr: {pod_ip}:" in r
    assert srv.wait_for(lambda: udp_echo(pod_ip, port), what="UDP through svclb pod") == b"pk-udp-probe"
    assert srv.wait_for(lambda: curl(f"http://127.0.0.1:{port}/").stdout, what="hostPort").startswith("Hostname:")


# A client in its own netns: one HTTP/1.1 request with "Connection: close" from a fixed source port, the
# server closing first (so the client keeps no TIME_WAIT and may bind the port again at once); prints
# whoami's answer.
_FIXED_PORT_REQUEST = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[3])))
s.settimeout(5)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(b"GET / HTTP/1.1\\r\\nHost: lb\\r\\nConnection: close\\r\\n\\r\\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
print(data.decode())
"""


def _foreign_random_masquerade(own_table: str) -> str:
    """Another cluster's table in this netns that masquerades marked TCP with random ports: its NAT may
    take this cluster's packets first (same mark, same hook), so port preservation cannot be observed."""
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split("\n")
    for line in tables:
        parts = line.split()
        if len(parts) == 3 and parts[1] == "inet" and parts[2].startswith("pyk3s-") and parts[2] != own_table:
            chain = subprocess.run(["nft", "list", "chain", "inet", parts[2], "nat-postrouting"],
                                   capture_output=True, text=True).stdout
            if "0x00004000 masquerade fully-random" in chain and "l4proto tcp masquerade" not in chain:
                return parts[2]
    return ""


def test_lb_tcp_masquerade_keeps_the_client_port(lb: tuple[ServerProcess, Client], whoami: int) -> None:
    # A client that reuses its source port must reach the endpoint on the same 4-tuple as before: the
    # endpoint's TIME_WAIT for that tuple then accepts the SYN by timestamp. A random SNAT port would
    # put it on another client's TIME_WAIT tuple, whose timestamps are unrelated (PAWS refuses the SYN).
    srv, client = lb
    assert srv.node is not None
    post = subprocess.run(["nft", "list", "chain", "inet", srv.nft_table, "nat-postrouting"],
                          capture_output=True, text=True, check=True).stdout
    assert "meta mark & 0x00004000 == 0x00004000 meta l4proto tcp masquerade\n" in post
    assert "meta mark & 0x00004000 == 0x00004000 masquerade fully-random" in post  # UDP and the rest
    foreign = _foreign_random_masquerade(srv.nft_table)
    if foreign:
        pytest.skip(f"table {foreign} of another cluster in this netns masquerades marked TCP with random ports")
    fixed = free_port()
    seen = []
    for _ in range(2):
        r = subprocess.run(["ip", "netns", "exec", client.netns, "python3", "-c", _FIXED_PORT_REQUEST,
                            srv.node.ip, str(whoami), str(fixed)], capture_output=True, text=True, timeout=20)
        remote = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("RemoteAddr:")]
        assert remote, r.stdout + r.stderr
        seen.append(remote[0])
    assert seen[0] == seen[1] and seen[0].endswith(f":{fixed}"), seen


def test_status_events_and_daemonset(lb: tuple[ServerProcess, Client], whoami: int) -> None:
    srv, _ = lb
    assert srv.node is not None
    port = whoami
    assert srv.node.ip in srv.kubectl("get", "svc", "whoami").out
    svc = svc_json(srv, "whoami")
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == srv.node.ip
    assert "service.kubernetes.io/load-balancer-cleanup" in svc["metadata"]["finalizers"]
    cond = lb_condition(svc)
    assert cond["status"] == "True" and srv.node.ip in cond["message"]
    described = srv.wait_for(lambda: (d := srv.kubectl("describe", "svc", "whoami").out)
                             and "UpdatedLoadBalancer" in d and d, what="describe events")
    for reason in ("EnsuringLoadBalancer", "AppliedDaemonSet", "UpdatedLoadBalancer"):
        assert reason in described
    updated = [e for e in events(srv, "whoami") if e[1] == "UpdatedLoadBalancer"]
    assert len(updated) == 1, updated
    assert not [e for e in events(srv, "whoami") if e[0] == "Warning"]
    (ds,) = daemonsets(srv, "whoami")
    name = f"svclb-whoami-{svc['metadata']['uid'][:8]}"
    assert ds["metadata"]["name"] == name and ds["metadata"]["namespace"] == "kube-system"
    assert ds["metadata"]["labels"][f"{LB}/nodeselector"] == "false"
    assert ds["metadata"]["labels"][f"{LB}/svcnamespace"] == "default"
    assert not ds["metadata"].get("ownerReferences")
    assert ds["spec"]["selector"]["matchLabels"] == {"app": name}
    pod_spec = ds["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "svclb" and pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["priorityClassName"] == "system-node-critical"
    assert pod_spec["securityContext"]["sysctls"] == [{"name": "net.ipv4.ip_forward", "value": "1"}]
    tcp, udp = pod_spec["containers"]
    assert tcp["ports"] == [{"name": f"lb-tcp-{port}", "containerPort": port, "hostPort": port, "protocol": "TCP"}]
    assert udp["ports"][0]["protocol"] == "UDP" and udp["ports"][0]["hostPort"] == port
    env = {e["name"]: e.get("value") for e in tcp["env"]}
    assert list(env) == ["SRC_PORT", "SRC_RANGES", "DEST_PROTO", "DEST_PORT", "DEST_IPS"]
    assert env == {"SRC_PORT": str(port), "SRC_RANGES": "0.0.0.0/0", "DEST_PROTO": "TCP",
                   "DEST_PORT": str(port), "DEST_IPS": svc["spec"]["clusterIP"]}
    assert tcp["securityContext"] == {"capabilities": {"add": ["NET_ADMIN"]}}


def test_two_services_share_the_node(lb: tuple[ServerProcess, Client], whoami: int) -> None:
    srv, client = lb
    assert srv.node is not None
    other = free_port()
    srv.kubectl("apply", "-f", "-", input=lb_service("whoami-two", other))
    served_at(srv, "whoami-two", srv.node.ip)
    for port in (whoami, other):
        r = srv.wait_for(lambda p=port: client.curl(f"http://{srv.node.ip}:{p}/").stdout, what=f"port {port}")
        assert r.startswith("Hostname: whoami-")


def test_taken_port_stays_pending_and_explains(lb: tuple[ServerProcess, Client]) -> None:
    srv, client = lb
    assert srv.node is not None
    port = free_port()
    srv.kubectl("apply", "-f", "-", input=lb_service("holder", port))
    served_at(srv, "holder", srv.node.ip)
    holder_pod = svclb_pods(srv, "holder")[0]["metadata"]["name"]
    srv.kubectl("apply", "-f", "-", input=lb_service("late", port))

    def pending_pod() -> dict | None:
        pods = svclb_pods(srv, "late")
        cond = next((c for p in pods for c in p["status"].get("conditions") or [] if c["type"] == "PodScheduled"), {})
        return pods[0] if pods and cond.get("status") == "False" else None

    pod = srv.wait_for(pending_pod, timeout=30, what="late svclb pod Pending")
    assert pod["status"]["phase"] == "Pending"
    scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert "didn't have free ports" in scheduled["message"]
    cond = srv.wait_for(lambda: (c := lb_condition(svc_json(srv, "late"))) and holder_pod in c.get("message", "")
                        and c, timeout=30, what="LoadBalancerReady condition naming the holder")
    assert cond["status"] == "False" and srv.node_name in cond["message"] and f"{port}/TCP" in cond["message"]
    warn = srv.wait_for(lambda: [e for e in events(srv, "late") if e[1] == "LoadBalancerPending"], what="warning")
    assert warn[0][0] == "Warning" and holder_pod in warn[0][2]
    assert external_ip_column(srv, "late") == "<pending>"
    assert "<pending>" in srv.kubectl("get", "svc", "late").out
    srv.kubectl("delete", "svc", "holder")
    served_at(srv, "late", srv.node.ip)
    r = srv.wait_for(lambda: client.curl(f"http://{srv.node.ip}:{port}/").stdout, what="late serves")
    assert r.startswith("Hostname: whoami-")
    srv.kubectl("delete", "svc", "late")


def test_source_ranges_refuse_other_clients(lb: tuple[ServerProcess, Client]) -> None:
    srv, client = lb
    assert srv.node is not None
    port = free_port()
    srv.kubectl("apply", "-f", "-", input=lb_service(
        "ranged", port, extra_spec={"loadBalancerSourceRanges": ["10.99.250.0/24"]}))
    served_at(srv, "ranged", srv.node.ip)
    url = f"http://{srv.node.ip}:{port}/"
    env = {e["name"]: e.get("value") for e in daemonsets(srv, "ranged")[0]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["SRC_RANGES"] == "10.99.250.0/24"
    time.sleep(1)
    for _ in range(3):
        assert client.curl(url).returncode != 0
    srv.kubectl("patch", "svc", "ranged", "--type", "merge",
                "-p", json.dumps({"spec": {"loadBalancerSourceRanges": [f"{client.ip}/32"]}}))
    r = srv.wait_for(lambda: client.curl(url).stdout, timeout=30, what="allowed client served")
    assert r.startswith("Hostname: whoami-") and "Host: " in r
    # The svclb pod enforces the same ranges on the hostPort path.
    env = {e["name"]: e.get("value") for e in daemonsets(srv, "ranged")[0]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["SRC_RANGES"] == f"{client.ip}/32"
    srv.kubectl("delete", "svc", "ranged")


def test_bad_input_is_named_and_harmless(lb: tuple[ServerProcess, Client], whoami: int) -> None:
    srv, client = lb
    assert srv.node is not None
    port = free_port()
    sctp = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sctp"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "whoami"},
                     "ports": [{"name": "s", "port": port, "protocol": "SCTP"}]}}
    srv.kubectl("apply", "-f", "-", input=json.dumps(sctp))
    warn = srv.wait_for(lambda: [e for e in events(srv, "sctp") if e[0] == "Warning"], what="SCTP warning")
    assert "spec.ports[0].protocol" in warn[0][2] and "SCTP" in warn[0][2]
    assert daemonsets(srv, "sctp") == []
    assert external_ip_column(srv, "sctp") == "<pending>"

    # A served Service edited into a bad source range keeps its DaemonSet as it was.
    srv.kubectl("apply", "-f", "-", input=lb_service("edited", port))
    served_at(srv, "edited", srv.node.ip)
    before = daemonsets(srv, "edited")[0]
    srv.kubectl("annotate", "svc", "edited", "service.beta.kubernetes.io/load-balancer-source-ranges=10.0.0.0/99")
    warn = srv.wait_for(lambda: [e for e in events(srv, "edited") if e[0] == "Warning"], what="bad range warning")
    assert "load-balancer-source-ranges" in warn[0][2] and "10.0.0.0/99" in warn[0][2]
    after = daemonsets(srv, "edited")[0]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    cond = lb_condition(svc_json(srv, "edited"))
    assert cond["status"] == "False" and cond["reason"] == "InvalidService"
    assert client.curl(f"http://{srv.node.ip}:{whoami}/").stdout.startswith("Hostname: whoami-")
    assert client.curl(f"http://{srv.node.ip}:{port}/").stdout.startswith("Hostname: whoami-")
    srv.kubectl("delete", "svc", "sctp", "edited")


def test_delete_removes_daemonset_and_finalizer(lb: tuple[ServerProcess, Client]) -> None:
    srv, _ = lb
    assert srv.node is not None
    srv.kubectl("apply", "-f", "-", input=lb_service("doomed", free_port()))
    served_at(srv, "doomed", srv.node.ip)
    assert daemonsets(srv, "doomed")
    srv.kubectl("delete", "svc", "doomed", "--wait=true", timeout=30)
    assert srv.kubectl("get", "svc", "doomed", check=False).rc != 0
    srv.wait_for(lambda: not daemonsets(srv, "doomed"), what="DaemonSet gone")
    srv.wait_for(lambda: not svclb_pods(srv, "doomed"), what="svclb pods gone")
    reasons = [e[1] for e in events(srv, "doomed")]
    for reason in ("DeletingLoadBalancer", "DeletedDaemonSet", "DeletedLoadBalancer"):
        assert reason in reasons
    assert reasons.index("DeletingLoadBalancer") < reasons.index("DeletedDaemonSet") < reasons.index(
        "DeletedLoadBalancer")


def test_node_external_ip_is_advertised(lb: tuple[ServerProcess, Client], whoami: int) -> None:
    srv, client = lb
    assert srv.node is not None
    external = str(ipaddress.ip_address(srv.node.ip) + 1)
    subprocess.run(["ip", "addr", "add", f"{external}/24", "dev", srv.node.link], check=True)
    srv.restart([*srv.base_args, "--node-external-ip", external], timeout=60)  # type: ignore[attr-defined]
    served_at(srv, "whoami", external, timeout=90)
    assert [i["ip"] for i in svc_json(srv, "whoami")["status"]["loadBalancer"]["ingress"]] == [external]
    r = srv.wait_for(lambda: client.curl(f"http://{external}:{whoami}/").stdout, timeout=30, what="external ip")
    assert r.startswith("Hostname: whoami-")


def test_disable_servicelb(lb: tuple[ServerProcess, Client], whoami: int) -> None:
    srv, _ = lb
    assert daemonsets(srv, "whoami")
    srv.restart([*srv.base_args, "--disable", "servicelb"], timeout=60)  # type: ignore[attr-defined]
    srv.wait_for(lambda: not srv.kubectl("get", "ds", "-n", "kube-system", "-l", f"{LB}/nodeselector",
                                         "-o", "name").out.strip(), timeout=30, what="svclb DaemonSets removed")
    srv.wait_for(lambda: external_ip_column(srv, "whoami") == "<pending>", timeout=30, what="whoami pending")
    assert "service.kubernetes.io/load-balancer-cleanup" not in (svc_json(srv, "whoami")["metadata"]
                                                                 .get("finalizers") or [])
    srv.kubectl("apply", "-f", "-", input=lb_service("after", free_port()))
    time.sleep(3)
    assert external_ip_column(srv, "after") == "<pending>"
    assert daemonsets(srv, "after") == []
    assert not svc_json(srv, "after")["metadata"].get("finalizers")
    srv.kubectl("delete", "svc", "after", "whoami", "whoami-two", "--wait=true", timeout=30)
    assert "whoami" not in srv.kubectl("get", "svc", "-o", "name").out
