"""The rest of the agent on one real `pyk3s server` (embedded agent), driven with the real kubectl.

Container environment and volumes, the service-account token used against the API through the
`kubernetes` Service, resolv.conf/hosts, probes, init containers, restart policies, back-off, graceful
termination, waiting reasons (unknown image, missing ConfigMap), Deployment rollouts, DaemonSets,
cascading deletion, Service proxy extras (externalTrafficPolicy Local, ClientIP affinity, externalIPs,
UDP), and the clean-up of a crashed server's leftovers. The tests run in file order on one
module-scoped cluster; the last one is `pyk3s killall`, and teardown checks that nothing is left.

An "outside" client lives in a network namespace of our own (``pkc<id>``) attached to the node link, so
NodePort and externalIP traffic arrives from off the node without touching the machine's interfaces.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pyk3s_server import ServerProcess

from pyk3s.agent.cni.podnet import netns_name, veth_name

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

PY = sys.executable
TAG = secrets.token_hex(3)
BASE = f"/tmp/pk-wl-{TAG}"  # container mount points live under here (created by the launcher, removed by killall)
SEEN_UIDS: set[str] = set()
SLEEP = ["sleep", "3600"]


# -- helpers ---------------------------------------------------------------------------------------------

def apply(srv: ServerProcess, *docs: dict) -> None:
    srv.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def pod_doc(name: str, containers: list[dict], labels: dict | None = None, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"pk": name}},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 2, **spec}}


def get_pod(srv: ServerProcess, name: str, namespace: str = "default") -> dict:
    obj = srv.kubectl("get", "pod", name, "-n", namespace, "-o", "json").json()
    SEEN_UIDS.add(obj["metadata"]["uid"])
    return obj


def list_pods(srv: ServerProcess, selector: str | None = None, namespace: str = "default") -> list[dict]:
    args = ["get", "pods", "-n", namespace, "-o", "json"] + (["-l", selector] if selector else [])
    items = srv.kubectl(*args).json()["items"]
    SEEN_UIDS.update(p["metadata"]["uid"] for p in items)
    return items


def is_ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def wait_ready(srv: ServerProcess, *names: str, timeout: float = 45) -> None:
    for n in names:
        srv.wait_for(lambda n=n: is_ready(get_pod(srv, n)), timeout=timeout, what=f"pod {n} ready")


def live(items: list[dict]) -> list[dict]:
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def cstatus(p: dict, init: bool = False) -> dict:
    return ((p.get("status") or {}).get("initContainerStatuses" if init else "containerStatuses") or [{}])[0]


def status_column(srv: ServerProcess, name: str) -> str:
    return srv.kubectl("get", "pod", name, "--no-headers").out.split()[2]


def events(srv: ServerProcess, name: str, kind: str = "Pod") -> list[dict]:
    out = srv.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").json()
    return [e for e in out["items"] if e["involvedObject"].get("kind") == kind]


def has_event(srv: ServerProcess, name: str, reason: str, contains: str = "", kind: str = "Pod") -> dict | None:
    return next((e for e in events(srv, name, kind) if e["reason"] == reason and contains in e.get("message", "")),
                None)


def exec_out(srv: ServerProcess, pod: str, *cmd: str) -> str:
    return srv.kubectl("exec", pod, "--", *cmd).out


def delete(srv: ServerProcess, *what: str) -> None:
    srv.kubectl("delete", *what, "--ignore-not-found", "--wait=false")


def curl(url: str, netns: str | None = None, timeout: float = 3, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    argv = (["ip", "netns", "exec", netns] if netns else []) + ["curl", "-sS", "-m", str(timeout), *extra, url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)


def hostname(body: str) -> str:
    return (body.splitlines() or [""])[0].removeprefix("Hostname: ")


def remote_addr(body: str) -> str:
    line = next((ln for ln in body.splitlines() if ln.startswith("RemoteAddr: ")), "")
    return line.removeprefix("RemoteAddr: ").rsplit(":", 1)[0]


def svc_field(srv: ServerProcess, name: str, path: str) -> str:
    return srv.kubectl("get", "svc", name, "-o", f"jsonpath={path}").out


def pid_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def container_pid(p: dict) -> int:
    return int(cstatus(p)["containerID"].removeprefix("pyk3s://"))


def netns_list() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {ln.split()[0] for ln in out.splitlines() if ln.split()}


def link_names() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
    return {lk["ifname"] for lk in json.loads(out or "[]")}


def leftovers(srv: ServerProcess, outside: bool = True) -> dict[str, list[str]]:
    links = link_names()
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split()
    procs = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(srv.data_dir).encode() in (d / "cmdline").read_bytes():
                    procs.append(d.name)
            except OSError:
                continue
    return {
        "netns": sorted(netns_list() & ({netns_name(u) for u in SEEN_UIDS} | ({f"pkc{srv.ident}"} if outside else set()))),
        "veths": sorted(links & ({veth_name(u) for u in SEEN_UIDS} | ({f"pkc{srv.ident}h"} if outside else set()))),
        "bridge": [srv.bridge] if srv.bridge in links else [],
        "nft": [srv.nft_table] if srv.nft_table in tables else [],
        "processes": procs,
    }


class OutsideClient:
    """A network namespace on the node link: traffic from it reaches the node from "outside"."""

    def __init__(self, srv: ServerProcess) -> None:
        assert srv.node is not None
        self.ns, self.host_end = f"pkc{srv.ident}", f"pkc{srv.ident}h"
        prefix = srv.node.ip.rsplit(".", 1)[0]
        self.ip = f"{prefix}.9"
        self.external_ip = f"{prefix}.200"  # a second address on the node link, used as a Service externalIP
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        run("ip", "netns", "add", self.ns)
        run("ip", "link", "add", self.host_end, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        run("ip", "link", "set", self.host_end, "master", srv.node.link, "up")
        run("ip", "netns", "exec", self.ns, "ip", "addr", "add", f"{self.ip}/24", "dev", "eth0")
        run("ip", "netns", "exec", self.ns, "ip", "link", "set", "eth0", "up")
        run("ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
        run("ip", "netns", "exec", self.ns, "ip", "route", "add", "default", "via", srv.node.ip)
        run("ip", "addr", "add", f"{self.external_ip}/32", "dev", srv.node.link)

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


# -- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(kubectl_bin: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb,coredns"])
    client = None
    try:
        srv.start(timeout=60)
        srv.wait_for(lambda: "True" in srv.kubectl(
            "get", "node", srv.node_name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}").out,
            timeout=30, what="node Ready")
        srv.wait_for(lambda: srv.kubectl("get", "sa", "default", check=False).rc == 0, what="default ServiceAccount")
        client = OutsideClient(srv)
        srv.outside = client  # type: ignore[attr-defined]
        yield srv
    finally:
        if client is not None:
            client.remove()
        srv.cleanup()
        shutil.rmtree(BASE, ignore_errors=True)
    left = leftovers(srv)
    assert not any(left.values()), f"left behind: {left}"


# -- 1. environment, volumes, the service-account token -------------------------------------------------

ENV_SCRIPT = """
import json, os, sys, time
open("hello.txt", "w").write("from-container")
open(os.environ["HOST_OUT"], "w").write("via-hostpath")
print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd()}), flush=True)
time.sleep(3600)
"""

API_SCRIPT = """
import os, ssl, sys, urllib.request, urllib.error
d = "/var/run/secrets/kubernetes.io/serviceaccount"
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
base = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
for path in sys.argv[1:]:
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + open(d + "/token").read()})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            print(path, r.status, r.read(300).decode().replace("\\n", " "), flush=True)
    except urllib.error.HTTPError as e:
        print(path, e.code, e.read().decode().replace("\\n", " "), flush=True)
"""


@pytest.fixture(scope="module")
def envpod(cluster: ServerProcess) -> dict:
    apply(cluster,
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "pk-links"},
           "spec": {"selector": {"app": "nothing"}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080},
                                                              {"name": "dns", "port": 53, "protocol": "UDP"}]}},
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"},
           "data": {"color": "blue", "size": "3", "app.conf": "listen 80\n"}},
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secret"},
           "stringData": {"password": "s3cret", "token": "abc"}})
    time.sleep(0.5)  # the agent's Service informer sees pk-links before the container starts
    mounts = {"cm": "cm", "sec": "sec", "scratch": "work", "host": "hostmnt", "info": "info"}
    container = {
        "name": "main", "image": "pyk3s/tools", "command": [PY, "-c", ENV_SCRIPT], "workingDir": f"{BASE}/work",
        "env": [
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "color"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "GREETING", "value": "hi $(POD_NAME)"},
            {"name": "HOST_OUT", "value": f"{BASE}/hostmnt/out.txt"},
        ],
        "envFrom": [{"configMapRef": {"name": "app-config"}, "prefix": "CFG_"},
                    {"secretRef": {"name": "app-secret"}, "prefix": "SEC_"}],
        "volumeMounts": [{"name": v, "mountPath": f"{BASE}/{p}"} for v, p in mounts.items()],
    }
    volumes = [
        {"name": "cm", "configMap": {"name": "app-config"}},
        {"name": "sec", "secret": {"secretName": "app-secret"}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "host", "hostPath": {"path": f"{BASE}/host", "type": "DirectoryOrCreate"}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
    ]
    apply(cluster, pod_doc("envpod", [container], labels={"app": "env", "tier": "test"}, volumes=volumes))
    wait_ready(cluster, "envpod")
    line = cluster.wait_for(lambda: cluster.kubectl("logs", "envpod").out.splitlines()[0], what="envpod output")
    return {"pod": get_pod(cluster, "envpod"), **json.loads(line)}


def test_env_value_from_env_from_and_field_refs(cluster, envpod):
    env, p = envpod["env"], envpod["pod"]
    assert env["COLOR"] == "blue" and env["PASSWORD"] == "s3cret"
    assert env["POD_NAME"] == "envpod" and env["POD_NS"] == "default"
    assert env["POD_IP"] == p["status"]["podIP"] and env["NODE"] == cluster.node_name
    assert env["GREETING"] == "hi envpod"
    assert {k: v for k, v in env.items() if k.startswith(("CFG_", "SEC_"))} == {
        "CFG_color": "blue", "CFG_size": "3", "CFG_app.conf": "listen 80\n", "SEC_password": "s3cret", "SEC_token": "abc"}
    assert envpod["cwd"] == f"{BASE}/work"


def test_service_environment_variables(cluster, envpod):
    env = envpod["env"]
    kip, lip = cluster.nets.kubernetes_ip, svc_field(cluster, "pk-links", "{.spec.clusterIP}")
    assert env["KUBERNETES_SERVICE_HOST"] == kip and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == f"tcp://{kip}:443" and env["KUBERNETES_PORT_443_TCP_ADDR"] == kip
    assert env["PK_LINKS_SERVICE_HOST"] == lip and env["PK_LINKS_SERVICE_PORT"] == "8080"
    assert env["PK_LINKS_SERVICE_PORT_HTTP"] == "8080" and env["PK_LINKS_SERVICE_PORT_DNS"] == "53"
    assert env["PK_LINKS_PORT"] == f"tcp://{lip}:8080"
    assert env["PK_LINKS_PORT_53_UDP"] == f"udp://{lip}:53" and env["PK_LINKS_PORT_53_UDP_PROTO"] == "udp"
    assert env["PK_LINKS_PORT_8080_TCP_PORT"] == "8080" and env["PK_LINKS_PORT_8080_TCP_ADDR"] == lip


def test_volumes_at_their_mount_paths(cluster, envpod):
    assert exec_out(cluster, "envpod", "cat", f"{BASE}/cm/color") == "blue"
    assert exec_out(cluster, "envpod", "cat", f"{BASE}/cm/app.conf") == "listen 80\n"
    assert exec_out(cluster, "envpod", "cat", f"{BASE}/sec/password") == "s3cret"
    assert exec_out(cluster, "envpod", "cat", f"{BASE}/work/hello.txt") == "from-container"  # emptyDir, cwd
    assert exec_out(cluster, "envpod", "cat", f"{BASE}/info/name") == "envpod"
    assert exec_out(cluster, "envpod", "cat", f"{BASE}/info/labels") == 'app="env"\ntier="test"'
    assert Path(f"{BASE}/host/out.txt").read_text() == "via-hostpath"  # hostPath: the host's directory
    # the pod's mounts are its own: the host sees only empty mount points
    assert not Path(f"{BASE}/cm/color").exists()


def test_service_account_files(cluster, envpod):
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert sorted(exec_out(cluster, "envpod", "ls", sa).split()) == ["ca.crt", "namespace", "token"]
    assert exec_out(cluster, "envpod", "cat", f"{sa}/namespace") == "default"
    assert exec_out(cluster, "envpod", "cat", f"{sa}/ca.crt").startswith("-----BEGIN CERTIFICATE-----")
    assert exec_out(cluster, "envpod", "cat", f"{sa}/token").count(".") == 2  # a JWT


def test_pod_reaches_the_api_through_the_kubernetes_service(cluster, envpod):
    pods_path = "/api/v1/namespaces/default/pods?limit=1"
    apply(cluster, pod_doc("api-client", [{"name": "c", "image": "pyk3s/tools",
                                           "command": [PY, "-c", API_SCRIPT, "/api", pods_path]}],
                           restartPolicy="Never"))
    cluster.wait_for(lambda: get_pod(cluster, "api-client")["status"]["phase"] == "Succeeded", timeout=45,
                     what="api-client done")
    out = cluster.kubectl("logs", "api-client").out.splitlines()
    assert out[0].startswith('/api 200 {"kind":"APIVersions"') or out[0].startswith("/api 200 {"), out
    assert '"versions"' in out[0]
    assert out[1].startswith(f"{pods_path} 403 "), out
    assert ('pods is forbidden: User \\"system:serviceaccount:default:default\\" cannot list resource \\"pods\\" '
            'in API group \\"\\" in the namespace \\"default\\"') in out[1] or \
           ('pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" '
            'in API group "" in the namespace "default"') in out[1], out[1]
    cluster.kubectl("create", "rolebinding", "default-view", "--clusterrole=view",
                    "--serviceaccount=default:default")
    got = cluster.wait_for(lambda: (o := exec_out(cluster, "envpod", PY, "-c", API_SCRIPT, pods_path))
                           .startswith(f"{pods_path} 200 ") and o, what="200 after the RoleBinding")
    assert '"kind":"PodList"' in got.replace(" ", "")
    delete(cluster, "pod", "api-client")


# -- 2. resolv.conf and hosts -----------------------------------------------------------------------------

def test_resolv_conf_and_hosts(cluster, envpod):
    dns = cluster.nets.cluster_dns
    assert exec_out(cluster, "envpod", "cat", "/etc/resolv.conf") == (
        f"nameserver {dns}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")
    ip = envpod["pod"]["status"]["podIP"]
    hosts = exec_out(cluster, "envpod", "cat", "/etc/hosts").splitlines()
    assert "127.0.0.1\tlocalhost" in hosts and f"{ip}\tenvpod" in hosts

    cfg = {"nameservers": ["10.99.77.53"], "searches": ["pk.example"],
           "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    apply(cluster,
          pod_doc("dns-default", [{"name": "c", "image": "pyk3s/tools", "command": SLEEP}], dnsPolicy="Default",
                  dnsConfig=cfg),
          pod_doc("dns-merged", [{"name": "c", "image": "pyk3s/tools", "command": SLEEP}], dnsConfig=cfg,
                  hostname="web-0", subdomain="pk-sub",
                  hostAliases=[{"ip": "10.99.9.9", "hostnames": ["foo.local", "bar.local"]}]),
          pod_doc("dns-none", [{"name": "c", "image": "pyk3s/tools", "command": SLEEP}], dnsPolicy="None",
                  dnsConfig={"nameservers": ["10.99.77.54"]}))
    wait_ready(cluster, "dns-default", "dns-merged", "dns-none")
    assert exec_out(cluster, "dns-default", "cat", "/etc/resolv.conf") == (
        f"nameserver {cluster.node.ip}\nnameserver 10.99.77.53\nsearch pk.example\noptions ndots:2 edns0\n")
    assert exec_out(cluster, "dns-merged", "cat", "/etc/resolv.conf") == (
        f"nameserver {dns}\nnameserver 10.99.77.53\n"
        "search default.svc.cluster.local svc.cluster.local cluster.local pk.example\noptions ndots:2 edns0\n")
    assert exec_out(cluster, "dns-none", "cat", "/etc/resolv.conf") == "nameserver 10.99.77.54\n"
    merged_ip = get_pod(cluster, "dns-merged")["status"]["podIP"]
    hosts = exec_out(cluster, "dns-merged", "cat", "/etc/hosts").splitlines()
    assert f"{merged_ip}\tweb-0.pk-sub.default.svc.cluster.local\tweb-0" in hosts
    assert "10.99.9.9\tfoo.local\tbar.local" in hosts
    assert exec_out(cluster, "dns-merged", "hostname").strip() in ("web-0", cluster.node_name, socket.gethostname())
    delete(cluster, "pod", "dns-default", "dns-merged", "dns-none")


# -- 3. probes, init containers, restart policies, termination, waiting reasons -------------------------

STARTUP_SCRIPT = """
import os, socket, sys, time
while not os.path.exists(sys.argv[1]):  # "starting up" until the test says so
    time.sleep(0.2)
s = socket.socket()
s.bind(("0.0.0.0", 8081))
s.listen()
time.sleep(3600)
"""


TERM_SCRIPT = """
import os, signal, sys, time
def on_term(signum, frame):
    open(sys.argv[1], "w").write("SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print("waiting", flush=True)
time.sleep(3600)
"""

IGNORE_SCRIPT = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(3600)
"""


@pytest.fixture(scope="module")
def probe_pods(cluster: ServerProcess) -> None:
    def tool(name: str, command: list[str], **extra: object) -> dict:
        return {"name": name, "image": "pyk3s/tools", "command": command, **extra}

    flags = {"name": "flags", "emptyDir": {}}
    apply(cluster,
          pod_doc("live-http", [{"name": "c", "image": "traefik/whoami", "args": ["--port", "8080"],
                                 "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 1,
                                                   "failureThreshold": 2}}]),
          pod_doc("startup", [tool("c", [PY, "-c", STARTUP_SCRIPT, f"{BASE}/flags/listen"],
                                   startupProbe={"tcpSocket": {"port": 8081}, "periodSeconds": 1, "failureThreshold": 120},
                                   readinessProbe={"exec": {"command": ["cat", f"{BASE}/flags/ready"]},
                                                   "periodSeconds": 1},
                                   livenessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1},
                                   volumeMounts=[{"name": "flags", "mountPath": f"{BASE}/flags"}])],
                  volumes=[flags]),
          pod_doc("startup-fail", [tool("c", SLEEP, startupProbe={"tcpSocket": {"port": 9}, "periodSeconds": 1,
                                                                  "failureThreshold": 2})]),
          pod_doc("init", [tool("c", ["sh", "-c", f"cat {BASE}/shared/order; exec sleep 3600"],
                                volumeMounts=[{"name": "shared", "mountPath": f"{BASE}/shared"}])],
                  initContainers=[tool(n, ["sh", "-c", f"sleep 0.5; echo {n} >> {BASE}/shared/order"],
                                       volumeMounts=[{"name": "shared", "mountPath": f"{BASE}/shared"}])
                                  for n in ("one", "two")],
                  volumes=[{"name": "shared", "emptyDir": {}}]),
          pod_doc("init-fail-never", [tool("c", SLEEP)], initContainers=[tool("i", ["sh", "-c", "exit 2"])],
                  restartPolicy="Never"),
          pod_doc("init-fail", [tool("c", SLEEP)], initContainers=[tool("i", ["sh", "-c", "exit 1"])]),
          pod_doc("never", [tool("c", ["sh", "-c", "echo bye; exit 3"])], restartPolicy="Never"),
          pod_doc("onfailure", [tool("c", ["sh", "-c", f"test -f {BASE}/of/ran && exit 0; touch {BASE}/of/ran; exit 1"],
                                     volumeMounts=[{"name": "of", "mountPath": f"{BASE}/of"}])],
                  restartPolicy="OnFailure", volumes=[{"name": "of", "emptyDir": {}}]),
          pod_doc("crashloop", [tool("c", ["sh", "-c", "echo crash; exit 1"])]),
          pod_doc("unknown-image", [{"name": "c", "image": "docker.io/library/nginx:1.27"}]),
          pod_doc("late-config", [tool("c", SLEEP, env=[{"name": "X", "valueFrom": {
              "configMapKeyRef": {"name": "late-config", "key": "x"}}}])]),
          pod_doc("term-handler", [tool("c", [PY, "-c", TERM_SCRIPT, f"{BASE}/term/term.txt"],
                                        volumeMounts=[{"name": "t", "mountPath": f"{BASE}/term"}])],
                  volumes=[{"name": "t", "hostPath": {"path": f"{BASE}/term-host", "type": "DirectoryOrCreate"}}],
                  terminationGracePeriodSeconds=30),
          pod_doc("term-ignore", [tool("c", [PY, "-c", IGNORE_SCRIPT])], terminationGracePeriodSeconds=3))


def test_liveness_http_failure_restarts_with_events(cluster, probe_pods):
    wait_ready(cluster, "live-http")
    ip = get_pod(cluster, "live-http")["status"]["podIP"]
    assert curl(f"http://{ip}:8080/health", extra=("-X", "POST", "-d", "500")).returncode == 0
    cluster.wait_for(lambda: cstatus(get_pod(cluster, "live-http"))["restartCount"] >= 1, timeout=20,
                     what="restart after liveness failures")
    assert has_event(cluster, "live-http", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500")
    assert has_event(cluster, "live-http", "Killing", "Container c failed liveness probe, will be restarted")
    wait_ready(cluster, "live-http")  # the new process answers /health with 200 again


def test_startup_probe_gates_liveness_and_readiness_exec(cluster, probe_pods):
    p = cluster.wait_for(lambda: (q := get_pod(cluster, "startup")) and cstatus(q).get("state", {}).get("running")
                         and q, what="startup container running")
    time.sleep(1.5)
    p = get_pod(cluster, "startup")
    assert cstatus(p)["started"] is False and not is_ready(p) and cstatus(p)["restartCount"] == 0
    cluster.kubectl("exec", "startup", "--", "touch", f"{BASE}/flags/listen")
    cluster.wait_for(lambda: cstatus(get_pod(cluster, "startup"))["started"] is True, timeout=20, what="started")
    time.sleep(1.5)
    p = get_pod(cluster, "startup")
    assert not is_ready(p) and cstatus(p)["restartCount"] == 0  # the exec readiness probe still fails
    cluster.kubectl("exec", "startup", "--", "touch", f"{BASE}/flags/ready")
    wait_ready(cluster, "startup", timeout=10)
    assert cstatus(get_pod(cluster, "startup"))["restartCount"] == 0


def test_failing_startup_probe_restarts(cluster, probe_pods):
    cluster.wait_for(lambda: cstatus(get_pod(cluster, "startup-fail"))["restartCount"] >= 1, timeout=20,
                     what="restart after the startup probe failed")
    assert has_event(cluster, "startup-fail", "Unhealthy", "Startup probe failed:")
    assert has_event(cluster, "startup-fail", "Killing", "Container c failed startup probe, will be restarted")


def test_init_containers_run_in_order(cluster, probe_pods):
    wait_ready(cluster, "init")
    assert cluster.kubectl("logs", "init").out == "one\ntwo\n"
    p = get_pod(cluster, "init")
    for st in p["status"]["initContainerStatuses"]:
        assert st["state"]["terminated"]["reason"] == "Completed" and st["state"]["terminated"]["exitCode"] == 0
    one, two = (st["state"]["terminated"] for st in p["status"]["initContainerStatuses"])
    assert one["finishedAt"] <= two["startedAt"]


def test_init_container_failure(cluster, probe_pods):
    p = cluster.wait_for(lambda: (q := get_pod(cluster, "init-fail-never"))["status"]["phase"] == "Failed" and q,
                         what="init-fail-never Failed")
    assert cstatus(p, init=True)["state"]["terminated"]["exitCode"] == 2
    assert cstatus(p)["state"]["waiting"]["reason"] == "PodInitializing"
    assert status_column(cluster, "init-fail-never") == "Init:Error"
    # restartPolicy Always: the init container is retried and the pod never starts its containers
    cluster.wait_for(lambda: cstatus(get_pod(cluster, "init-fail"), init=True)["restartCount"] >= 1,
                     timeout=20, what="init container restarted")
    assert status_column(cluster, "init-fail") in ("Init:Error", "Init:CrashLoopBackOff")
    assert get_pod(cluster, "init-fail")["status"]["phase"] == "Pending"


def test_restart_policy_never_and_on_failure(cluster, probe_pods):
    p = cluster.wait_for(lambda: (q := get_pod(cluster, "never"))["status"]["phase"] == "Failed" and q,
                         what="never Failed")
    assert cstatus(p)["state"]["terminated"]["exitCode"] == 3 and cstatus(p)["restartCount"] == 0
    assert cluster.kubectl("logs", "never").out == "bye\n"
    p = cluster.wait_for(lambda: (q := get_pod(cluster, "onfailure"))["status"]["phase"] == "Succeeded" and q,
                         timeout=30, what="onfailure Succeeded")
    assert cstatus(p)["restartCount"] == 1
    assert cstatus(p)["state"]["terminated"]["reason"] == "Completed"
    assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 1
    assert status_column(cluster, "onfailure") == "Completed"
    time.sleep(1)
    assert cstatus(get_pod(cluster, "never"))["restartCount"] == 0


def test_crash_loop_back_off(cluster, probe_pods):
    def backing_off():
        p = get_pod(cluster, "crashloop")
        w = cstatus(p)["state"].get("waiting") or {}
        return w.get("reason") == "CrashLoopBackOff" and (p, w)
    p, w = cluster.wait_for(backing_off, timeout=20, what="CrashLoopBackOff")
    uid = p["metadata"]["uid"]
    assert re.fullmatch(rf"back-off (10|20|40)s restarting failed container=c pod=crashloop_default\({uid}\)",
                        w["message"]), w["message"]
    assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 1
    assert status_column(cluster, "crashloop") == "CrashLoopBackOff"
    assert cluster.wait_for(lambda: has_event(cluster, "crashloop", "BackOff", "Back-off restarting failed container c"),
                            what="BackOff event")["type"] == "Warning"
    count = cstatus(p)["restartCount"]
    time.sleep(3)
    assert cstatus(get_pod(cluster, "crashloop"))["restartCount"] <= count + 1  # backing off, not spinning


def test_unknown_image_waits_with_a_reason(cluster, probe_pods):
    def waiting():
        w = cstatus(get_pod(cluster, "unknown-image"))["state"].get("waiting") or {}
        return w.get("reason") == "ErrImageNeverPull" and w
    w = cluster.wait_for(waiting, what="ErrImageNeverPull")
    assert 'Container image "docker.io/library/nginx:1.27"' in w["message"] and "no command" in w["message"]
    ev = cluster.wait_for(lambda: has_event(cluster, "unknown-image", "ErrImageNeverPull"), what="event")
    assert ev["type"] == "Warning" and "nginx:1.27" in ev["message"]
    assert status_column(cluster, "unknown-image") == "ErrImageNeverPull"
    wait_ready(cluster, "live-http", "term-handler")  # other pods on the node are unaffected


def test_missing_config_map_then_created(cluster, probe_pods):
    def waiting():
        w = cstatus(get_pod(cluster, "late-config"))["state"].get("waiting") or {}
        return w.get("reason") == "CreateContainerConfigError" and w
    w = cluster.wait_for(waiting, what="CreateContainerConfigError")
    assert w["message"] == 'configmap "late-config" not found'
    ev = cluster.wait_for(lambda: has_event(cluster, "late-config", "Failed", 'Error: configmap "late-config" not found'),
                          what="Failed event")
    assert ev["type"] == "Warning"
    cluster.kubectl("create", "configmap", "late-config", "--from-literal=x=42")
    wait_ready(cluster, "late-config", timeout=20)
    assert exec_out(cluster, "late-config", "printenv", "X") == "42\n"


@pytest.mark.timing_sensitive
def test_graceful_termination(cluster, probe_pods):
    wait_ready(cluster, "term-handler", "term-ignore")
    handler_pid = container_pid(get_pod(cluster, "term-handler"))
    t0 = time.monotonic()
    cluster.kubectl("delete", "pod", "term-handler", "--timeout=30s")
    assert time.monotonic() - t0 < 10, "a process that exits on SIGTERM does not wait out the grace period"
    assert Path(f"{BASE}/term-host/term.txt").read_text() == "SIGTERM"
    assert not pid_alive(handler_pid)

    ignore_pid = container_pid(get_pod(cluster, "term-ignore"))
    t0 = time.monotonic()
    cluster.kubectl("delete", "pod", "term-ignore", "--timeout=30s")
    took = time.monotonic() - t0
    assert 2.5 <= took < 12, f"SIGKILL after the 3 s grace period, took {took:.1f}s"
    assert not pid_alive(ignore_pid)
    assert has_event(cluster, "term-ignore", "Killing", "Stopping container c")


def test_probe_pods_cleaned_up(cluster, probe_pods):
    names = ["live-http", "startup", "startup-fail", "init", "init-fail-never", "init-fail", "never", "onfailure",
             "crashloop", "unknown-image", "late-config"]
    for n in names:
        get_pod(cluster, n)
    cluster.kubectl("delete", "pod", *names, "--timeout=60s", timeout=90)
    assert not [p for p in list_pods(cluster) if p["metadata"]["name"] in names]


# -- 4. workloads ----------------------------------------------------------------------------------------

def deployment(name: str, replicas: int, image: str = "traefik/whoami") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 2,
                         "containers": [{"name": "web", "image": image, "args": ["--port", "8080"],
                                         "ports": [{"containerPort": 8080, "name": "web"}],
                                         "readinessProbe": {"httpGet": {"path": "/health", "port": "web"},
                                                            "periodSeconds": 1}}]}}}}


def rollout_status(srv: ServerProcess, name: str) -> str:
    return srv.kubectl("rollout", "status", f"deployment/{name}", "--timeout=60s", timeout=70).out


def ready_pods(srv: ServerProcess, selector: str) -> list[dict]:
    return [p for p in live(list_pods(srv, selector)) if is_ready(p)]


def images_of(srv: ServerProcess, selector: str) -> set[str]:
    return {p["spec"]["containers"][0]["image"] for p in live(list_pods(srv, selector))}


def test_deployment_scale_up_and_down(cluster):
    apply(cluster, deployment("web", 1))
    assert "successfully rolled out" in rollout_status(cluster, "web")
    cluster.kubectl("scale", "deployment/web", "--replicas=3")
    cluster.wait_for(lambda: len(ready_pods(cluster, "app=web")) == 3, timeout=45, what="3 ready")
    d = cluster.wait_for(lambda: (o := cluster.kubectl("get", "deploy", "web", "-o", "json").json())
                         ["status"].get("availableReplicas") == 3 and o, what="status 3")
    assert d["status"]["readyReplicas"] == 3 and d["status"]["updatedReplicas"] == 3
    cluster.kubectl("scale", "deployment/web", "--replicas=1")
    cluster.wait_for(lambda: len(live(list_pods(cluster, "app=web"))) == 1, timeout=45, what="1 pod left")


def test_rollout_undo_and_restart(cluster):
    cluster.kubectl("set", "image", "deployment/web", "web=traefik/whoami:v2")
    assert "successfully rolled out" in rollout_status(cluster, "web")
    cluster.wait_for(lambda: images_of(cluster, "app=web") == {"traefik/whoami:v2"}, what="v2 pods only")
    history = cluster.kubectl("rollout", "history", "deployment/web").out
    assert "1 " in history and "2 " in history
    cluster.kubectl("rollout", "undo", "deployment/web")
    assert "successfully rolled out" in rollout_status(cluster, "web")
    cluster.wait_for(lambda: images_of(cluster, "app=web") == {"traefik/whoami"}, what="v1 pods again")
    d = cluster.kubectl("get", "deploy", "web", "-o", "json").json()
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"

    before = {p["metadata"]["name"] for p in live(list_pods(cluster, "app=web"))}
    cluster.kubectl("rollout", "restart", "deployment/web")
    assert "successfully rolled out" in rollout_status(cluster, "web")
    cluster.wait_for(lambda: (now := {p["metadata"]["name"] for p in live(list_pods(cluster, "app=web"))})
                     and not now & before and len(ready_pods(cluster, "app=web")) == 1, timeout=45,
                     what="pods replaced by the restart")
    tmpl = cluster.kubectl("get", "deploy", "web", "-o", "json").json()["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in tmpl["metadata"]["annotations"]


def test_delete_deployment_cascades(cluster):
    uid = cluster.kubectl("get", "deploy", "web", "-o", "jsonpath={.metadata.uid}").out
    assert cluster.kubectl("get", "rs", "-l", "app=web", "-o", "name").out.strip()
    cluster.kubectl("delete", "deployment", "web", "--timeout=60s", timeout=70)
    cluster.wait_for(lambda: not cluster.kubectl("get", "rs", "-l", "app=web", "-o", "name").out.strip(),
                     what="ReplicaSets gone")
    cluster.wait_for(lambda: not list_pods(cluster, "app=web"), timeout=30, what="pods gone")
    rs = cluster.kubectl("get", "rs", "-A", "-o", "json").json()["items"]
    assert not [r for r in rs if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])]


def test_daemonset_one_pod_per_node_and_unmatched_selector(cluster):
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent-ds"},
          "spec": {"selector": {"matchLabels": {"app": "agent-ds"}},
                   "template": {"metadata": {"labels": {"app": "agent-ds"}}, "spec": {
                       "terminationGracePeriodSeconds": 2,
                       "containers": [{"name": "c", "image": "pyk3s/tools", "command": SLEEP}]}}}}
    none = json.loads(json.dumps(ds))
    none["metadata"]["name"] = none["spec"]["selector"]["matchLabels"]["app"] = "none-ds"
    none["spec"]["template"]["metadata"]["labels"]["app"] = "none-ds"
    none["spec"]["template"]["spec"]["nodeSelector"] = {"pk-no-such-label": "x"}
    apply(cluster, ds, none)

    def settled():
        st = cluster.kubectl("get", "ds", "agent-ds", "-o", "json").json().get("status") or {}
        return st.get("numberReady") == 1 and st
    st = cluster.wait_for(settled, timeout=45, what="DaemonSet ready")
    assert st["desiredNumberScheduled"] == 1 and st["currentNumberScheduled"] == 1
    assert st["numberAvailable"] == 1 and st["updatedNumberScheduled"] == 1 and st["numberMisscheduled"] == 0
    ps = live(list_pods(cluster, "app=agent-ds"))
    assert len(ps) == 1 and ps[0]["spec"]["nodeName"] == cluster.node_name
    st = cluster.wait_for(lambda: (cluster.kubectl("get", "ds", "none-ds", "-o", "json").json().get("status")
                                   or {}).get("observedGeneration") and
                          cluster.kubectl("get", "ds", "none-ds", "-o", "json").json()["status"], what="none-ds status")
    assert st["desiredNumberScheduled"] == 0 and st["currentNumberScheduled"] == 0 and st.get("numberReady", 0) == 0
    assert not list_pods(cluster, "app=none-ds")
    cluster.kubectl("delete", "ds", "agent-ds", "none-ds", "--timeout=60s", timeout=70)
    cluster.wait_for(lambda: not list_pods(cluster, "app=agent-ds"), timeout=30, what="DaemonSet pods gone")


def test_service_target_port_name_not_in_pod(cluster):
    apply(cluster, deployment("named", 1),
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "named"},
           "spec": {"selector": {"app": "named"}, "ports": [{"name": "ok", "port": 80, "targetPort": "web"},
                                                            {"name": "bad", "port": 81, "targetPort": "nope"}]}})
    cluster.wait_for(lambda: len(ready_pods(cluster, "app=named")) == 1, timeout=45, what="named ready")

    def slices():
        out = cluster.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=named", "-o", "json").json()
        by_port = {}
        for s in out["items"]:
            for port in s.get("ports") or []:
                by_port.setdefault(port.get("name"), []).extend(s.get("endpoints") or [])
        return by_port.get("ok") and by_port
    by_port = cluster.wait_for(slices, what="slices for named")
    assert not by_port.get("bad")
    ev = cluster.wait_for(lambda: has_event(cluster, "named", "FailedToResolvePort", kind="Service"), what="warning")
    assert ev["type"] == "Warning" and '"nope"' in ev["message"]
    ip = svc_field(cluster, "named", "{.spec.clusterIP}")
    assert hostname(curl(f"http://{ip}/").stdout).startswith("named-")
    assert curl(f"http://{ip}:81/", timeout=2).returncode != 0  # no endpoints: rejected


# -- 5. service proxy extras -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def echo(cluster: ServerProcess) -> dict:
    ident = int(cluster.ident, 16)
    np_local, np_cluster = 30000 + ident % 1300, 31400 + ident % 1300
    out = cluster.outside  # type: ignore[attr-defined]
    svc = lambda name, **spec: {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},  # noqa: E731
                                "spec": {"selector": {"app": "echo"}, **spec}}
    apply(cluster, deployment("echo", 2),
          svc("echo-local", type="NodePort", externalTrafficPolicy="Local",
              ports=[{"port": 80, "targetPort": 8080, "nodePort": np_local}]),
          svc("echo-cluster", type="NodePort", ports=[{"port": 80, "targetPort": 8080, "nodePort": np_cluster}]),
          svc("echo-sticky", sessionAffinity="ClientIP", ports=[{"port": 80, "targetPort": 8080}]),
          svc("echo-ext", externalIPs=[out.external_ip], ports=[{"port": 8088, "targetPort": 8080}]),
          svc("echo-udp", ports=[{"port": 5353, "targetPort": 8080, "protocol": "UDP"}]))
    cluster.wait_for(lambda: len(ready_pods(cluster, "app=echo")) == 2, timeout=45, what="2 echo pods")
    names = {p["metadata"]["name"] for p in ready_pods(cluster, "app=echo")}
    cluster.wait_for(lambda: hostname(curl(f"http://{svc_field(cluster, 'echo-sticky', '{.spec.clusterIP}')}/")
                                      .stdout) in names, what="echo through the proxy")
    return {"np_local": np_local, "np_cluster": np_cluster, "names": names, "outside": out}


def test_external_traffic_policy_local_keeps_the_client_address(cluster, echo):
    out, node_ip = echo["outside"], cluster.node.ip
    r = cluster.wait_for(lambda: (c := curl(f"http://{node_ip}:{echo['np_local']}/", netns=out.ns)).returncode == 0
                         and c, what="Local NodePort from outside")
    assert hostname(r.stdout) in echo["names"]
    assert remote_addr(r.stdout) == out.ip, r.stdout  # not masqueraded
    r = curl(f"http://{node_ip}:{echo['np_cluster']}/", netns=out.ns)
    assert r.returncode == 0, r.stderr
    assert remote_addr(r.stdout) != out.ip  # Cluster policy: SNAT to the node
    assert curl(f"http://{node_ip}:{echo['np_local']}/").returncode == 0  # and from the node itself


def test_session_affinity_client_ip(cluster, echo):
    ip = svc_field(cluster, "echo-sticky", "{.spec.clusterIP}")
    for ns in (None, echo["outside"].ns):
        if ns is not None:  # the outside client reaches the ClusterIP through the node
            subprocess.run(["ip", "netns", "exec", ns, "ip", "route", "replace", f"{ip}/32", "via",
                            cluster.node.ip], check=True)
        seen = {hostname(curl(f"http://{ip}/", netns=ns).stdout) for _ in range(12)}
        assert len(seen) == 1 and seen <= echo["names"], seen
    # the same backends without affinity are both used
    plain = svc_field(cluster, "echo-cluster", "{.spec.clusterIP}")
    assert {hostname(curl(f"http://{plain}/").stdout) for _ in range(20)} == echo["names"]


def test_external_ip_on_the_node_link(cluster, echo):
    out = echo["outside"]
    for ns in (out.ns, None):
        r = curl(f"http://{out.external_ip}:8088/", netns=ns)
        assert r.returncode == 0, (ns, r.stderr)
        assert hostname(r.stdout) in echo["names"]


def test_udp_service_by_cluster_ip(cluster, echo):
    ip = svc_field(cluster, "echo-udp", "{.spec.clusterIP}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"pk-udp-ping", (ip, 5353))
        data, peer = s.recvfrom(2048)
    assert b"pk-udp-ping" in data and peer == (ip, 5353)


def test_echo_cleanup(cluster, echo):
    cluster.kubectl("delete", "deployment", "echo", "--timeout=60s", timeout=70)
    delete(cluster, "svc", "echo-local", "echo-cluster", "echo-sticky", "echo-ext", "echo-udp", "named", "pk-links")
    delete(cluster, "deployment", "named")


# -- 6. a crashed server's leftovers ---------------------------------------------------------------------

def test_restart_after_kill_9_cleans_leftovers(cluster, envpod):
    apply(cluster, deployment("survivor", 2))
    cluster.wait_for(lambda: len(ready_pods(cluster, "app=survivor")) == 2, timeout=45, what="survivors ready")
    before = {p["metadata"]["uid"]: container_pid(p) for p in live(list_pods(cluster))}
    assert len(before) >= 3
    ns_before = netns_list() & {netns_name(u) for u in before}
    assert len(ns_before) == len(before)

    cluster.kill9()
    assert all(pid_alive(pid) for pid in before.values())  # containers outlive the crashed server
    cluster.start(timeout=60)

    def back():  # re-reported by the new kubelet: the old status still says Ready with the old pid
        ps = live(list_pods(cluster))
        return (len(ps) == len(before) and all(is_ready(p) and container_pid(p) not in before.values() for p in ps)
                and ps)
    ps = cluster.wait_for(back, timeout=60, what="pods back after the restart")
    assert {p["metadata"]["uid"] for p in ps} == set(before)
    assert not [pid for pid in before.values() if pid_alive(pid) and pid not in {container_pid(p) for p in ps}]
    ours = {netns_name(u) for u in SEEN_UIDS}
    assert netns_list() & ours == {netns_name(u) for u in before}  # one namespace per live pod, none stale
    assert link_names() & {veth_name(u) for u in SEEN_UIDS} == {veth_name(u) for u in before}
    ip = svc_field(cluster, "kubernetes", "{.spec.clusterIP}")
    assert ip == cluster.nets.kubernetes_ip
    pod_ips = [p["status"]["podIP"] for p in ps]
    assert len(set(pod_ips)) == len(pod_ips)
    for p in ps:
        if p["metadata"]["labels"].get("app") == "survivor":
            assert curl(f"http://{p['status']['podIP']}:8080/").stdout.startswith(f"Hostname: {p['metadata']['name']}")


def test_killall_leaves_nothing(cluster):
    list_pods(cluster)
    list_pods(cluster, namespace="kube-system")
    r = cluster.killall()
    assert r.returncode == 0, r.stderr
    assert cluster.proc.wait(10) is not None
    left = leftovers(cluster, outside=False)
    assert not any(left.values()), left
