# ruff: noqa: ASYNC221, ASYNC240
"""Root e2e of the node data path without an API server: real pod workers (netns, veth, launcher,
probes, restarts, logs), real nftables service rules, real curl. The API's status writes are captured."""

import asyncio
import ipaddress
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from pyk3s_server import ClusterNets, _cidr_lock

from pyk3s.agent.cni.bridge import BridgeConfig, ensure_bridge
from pyk3s.agent.cni.ipam import HostLocalIpam
from pyk3s.agent.killall import killall
from pyk3s.agent.kubelet.volumes import VolumeSources
from pyk3s.agent.kubelet.worker import KubeletContext, PodWorker
from pyk3s.agent.proxy.apply import NftApplier
from pyk3s.agent.proxy.compile import FAMILY, ProxyConfig, compile_ruleset

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

BRIDGE, TABLE, NODE = "pkbrrt", "pyk3s-pkbrrt", "pkrt1"
NODE_PORT = 30777
# set by the fixture: K3s's default CIDRs unless another cluster on this machine already routes them
NETS, POD_CIDR, CLUSTER_IP, UNKNOWN_IP, SOLO_IP = ClusterNets(), "", "", "", ""


def _pick_nets() -> None:
    global NETS, POD_CIDR, CLUSTER_IP, UNKNOWN_IP, SOLO_IP
    NETS = ClusterNets.pick()
    POD_CIDR = str(next(ipaddress.ip_network(NETS.cluster_cidr).subnets(new_prefix=24)))
    CLUSTER_IP, UNKNOWN_IP, SOLO_IP = (str(ipaddress.ip_network(NETS.service_cidr)[i]) for i in (77, 78, 79))


def curl(url, netns=None, timeout=3):
    argv = (["ip", "netns", "exec", netns] if netns else []) + ["curl", "-s", "-m", str(timeout), url]
    return subprocess.run(argv, capture_output=True, text=True)


async def until(pred, timeout=15.0):
    for _ in range(int(timeout / 0.1)):
        if pred():
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.fixture
async def node(tmp_path):
    with _cidr_lock():  # until our bridge routes the CIDRs, so a concurrent pick sees them
        _pick_nets()
        cfg = BridgeConfig(BRIDGE, POD_CIDR, (NETS.cluster_cidr,), (NETS.service_cidr,))
        await ensure_bridge(cfg)
    ipam = HostLocalIpam(tmp_path / "ipam", cfg.pod_cidr)
    statuses: dict[str, dict] = {}

    async def none(*_a):
        return None

    async def token(*_a):
        return "token"

    async def write_status(pod, st):
        statuses[pod["metadata"]["name"]] = st

    async def delete(_pod):
        return None

    # The node address is the bridge's own gateway address: never the machine's interface.
    ctx = KubeletContext(NODE, tmp_path / "agent" / "pods", cfg.gateway, cfg, ipam, (NETS.cluster_dns,), "cluster.local",
                         "nameserver 192.0.2.53\n", VolumeSources(none, none, token, "CA"), list, none, none,
                         write_status, delete)
    applier = NftApplier(FAMILY, TABLE)
    workers: list[PodWorker] = []
    try:
        yield ctx, statuses, workers, applier
    finally:
        for w in workers:
            await w.stop()
        await applier.delete()
        killall(tmp_path, (BRIDGE,), kill_processes=False)
        assert BRIDGE not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
        assert not [n for n in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout.split()
                    if n.startswith("pk-") and any(n == f"pk-{w.uid.replace('-', '')[:12]}" for w in workers)]


def whoami_pod(name, host_port, readiness_path="/health"):
    return {"metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
            "spec": {"nodeName": NODE, "containers": [{
                "name": "w", "image": "traefik/whoami", "args": ["--port", "8080"],
                "env": [{"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "ports": [{"containerPort": 8080, "hostPort": host_port}],
                "readinessProbe": {"httpGet": {"path": readiness_path, "port": 8080}, "periodSeconds": 1}}]}}


def ready(statuses, name):
    cs = (statuses.get(name) or {}).get("containerStatuses") or [{}]
    return bool(cs[0].get("ready"))


async def test_services_hostports_restarts_logs(node):
    ctx, statuses, workers, applier = node
    for i in range(2):
        w = PodWorker(ctx, whoami_pod(f"who{i}", 18090 + i))
        w.start()
        workers.append(w)
    bad = PodWorker(ctx, whoami_pod("unready", 18095, readiness_path="/missing-is-fine-but-port-wrong"))
    bad.pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 9999
    bad.start()
    workers.append(bad)
    assert await until(lambda: ready(statuses, "who0") and ready(statuses, "who1"))
    assert statuses["unready"]["phase"] == "Running" and not ready(statuses, "unready")

    ips = [statuses[f"who{i}"]["podIP"] for i in range(2)]
    # endpoints as the EndpointSlice controller would publish them: readiness gates membership
    endpoints = [{"addresses": [statuses[n]["podIP"]], "nodeName": NODE, "conditions": {"ready": ready(statuses, n)}}
                 for n in ("who0", "who1", "unready")]
    svc = {"metadata": {"namespace": "default", "name": "who"},
           "spec": {"type": "NodePort", "clusterIP": CLUSTER_IP, "ports": [{"port": 80, "nodePort": NODE_PORT}]}}
    sl = {"metadata": {"namespace": "default", "name": "who-1", "labels": {"kubernetes.io/service-name": "who"}},
          "ports": [{"port": 8080, "protocol": "TCP", "name": ""}], "endpoints": endpoints}
    # who0 alone behind a second Service: who0 reaching it reaches itself (hairpin)
    solo = {"metadata": {"namespace": "default", "name": "solo"},
            "spec": {"type": "ClusterIP", "clusterIP": SOLO_IP, "ports": [{"port": 80}]}}
    solo_sl = {"metadata": {"namespace": "default", "name": "solo-1", "labels": {"kubernetes.io/service-name": "solo"}},
               "ports": [{"port": 8080, "protocol": "TCP", "name": ""}], "endpoints": endpoints[:1]}
    pods = [dict(w.pod, status=statuses[w.pod["metadata"]["name"]]) for w in workers]
    text = compile_ruleset(ProxyConfig(NODE, (NETS.cluster_cidr,), (NETS.service_cidr,), bridge_name=BRIDGE,
                                       table=TABLE, pod_gateways=(ctx.bridge.gateway,)),
                           [svc, solo], [sl, solo_sl], pods)
    assert statuses["unready"]["podIP"] not in text.split("chain hostports")[0]
    await applier.apply(text)

    seen = set()
    for _ in range(12):
        r = curl(f"http://{CLUSTER_IP}/")
        assert r.returncode == 0, r.stderr
        seen.add(r.stdout.splitlines()[0])
    assert seen == {"Hostname: who0", "Hostname: who1"}
    assert curl(f"http://{ctx.host_ip}:{NODE_PORT}/").stdout.startswith("Hostname: who")
    assert curl(f"http://127.0.0.1:{NODE_PORT}/").stdout.startswith("Hostname: who")
    assert curl("http://127.0.0.1:18091/").stdout.startswith("Hostname: who1")
    assert curl(f"http://{UNKNOWN_IP}/").returncode == 7            # unknown ClusterIP: rejected, never leaves
    from_pod = curl(f"http://{CLUSTER_IP}/", netns=f"pk-{workers[0].uid.replace('-', '')[:12]}")
    assert from_pod.returncode == 0 and from_pod.stdout.startswith("Hostname: who")
    assert ips[0] in from_pod.stdout or ips[1] in from_pod.stdout
    # pods are routed links, not bridge ports: pod to pod on one node crosses the node's forward hook
    pod_to_pod = curl(f"http://{ips[1]}:8080/", netns=f"pk-{workers[0].uid.replace('-', '')[:12]}")
    assert pod_to_pod.stdout.startswith("Hostname: who1") and f"RemoteAddr: {ips[0]}:" in pod_to_pod.stdout
    hairpin = curl(f"http://{SOLO_IP}/", netns=f"pk-{workers[0].uid.replace('-', '')[:12]}")
    assert hairpin.stdout.startswith("Hostname: who0"), hairpin
    assert f"RemoteAddr: {ctx.bridge.gateway}:" in hairpin.stdout  # masqueraded to the pod gateway
    routes = subprocess.run(["ip", "-4", "route", "show", "proto", "202"], capture_output=True, text=True).stdout
    assert f"{ips[0]} dev pkv" in routes and f"src {ctx.bridge.gateway}" in routes
    assert "master" not in subprocess.run(["ip", "-o", "link", "show", "group",
                                           str(ctx.bridge.link_group)], capture_output=True, text=True).stdout

    proc = workers[0].procs["w"]
    env = Path(f"/proc/{proc.pid}/environ").read_bytes()
    assert b"MY_POD=who0" in env
    os.kill(proc.pid, signal.SIGKILL)
    assert await until(lambda: statuses["who0"]["containerStatuses"][0]["restartCount"] == 1
                       and ready(statuses, "who0"))
    last = statuses["who0"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137
    assert curl(f"http://{statuses['who0']['podIP']}:8080/").stdout.startswith("Hostname: who0")
    previous = workers[0].container_proc("w", previous=True)
    assert previous is not None and previous.log_path.name == "0.log"


async def test_unknown_image_waits_with_clear_reason(node):
    ctx, statuses, workers, _ = node
    pod = {"metadata": {"name": "nginx", "namespace": "default", "uid": str(uuid.uuid4())},
           "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "nginx:1.27"}]}}
    w = PodWorker(ctx, pod)
    w.start()
    workers.append(w)
    assert await until(lambda: "nginx" in statuses
                       and statuses["nginx"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason")
                       == "ErrImageNeverPull")
    assert "nginx:1.27" in statuses["nginx"]["containerStatuses"][0]["state"]["waiting"]["message"]


async def test_command_logs_and_exit(node, tmp_path):
    ctx, statuses, workers, _ = node
    pod = {"metadata": {"name": "job", "namespace": "default", "uid": str(uuid.uuid4())},
           "spec": {"nodeName": NODE, "restartPolicy": "Never",
                    "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "echo init"]}],
                    "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c"],
                                    "args": ["cat /etc/resolv.conf; hostname -i >/dev/null; ip -4 -o addr show eth0; exit 3"]}]}}
    w = PodWorker(ctx, pod)
    w.start()
    workers.append(w)
    assert await until(lambda: statuses.get("job", {}).get("phase") == "Failed")
    term = statuses["job"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3
    log = w.container_proc("c").log_path.read_text()
    assert f" stdout F nameserver {NETS.cluster_dns}" in log
    assert "search default.svc.cluster.local" in log
    assert statuses["job"]["podIP"] in log


async def test_missing_mount_points_exist_in_the_container_alone(node, tmp_path):
    """Volumes whose mountPath the node lacks (a top-level directory as the Traefik chart's /data, one in
    /etc as CoreDNS's /etc/coredns, one nested in another volume) and a missing workingDir: the
    container sees them, the node's filesystem stays as it was, and the rest of the node's tree (files in
    the covered /etc, the data dir under /tmp, /proc) stays visible to the container."""
    ctx, statuses, workers, _ = node
    tag = uuid.uuid4().hex[:8]
    top, etc, workdir = f"/pk-view-{tag}", f"/etc/pk-view-{tag}", f"/pk-view-{tag}-wd"
    script = (f"pwd; echo hi > {top}/data/f; touch {etc}/custom/g; ls {etc}; "
              f"test -s /etc/os-release && echo etc-kept; test -d {tmp_path} && echo data-dir-kept; "
              "test -r /proc/self/status && echo proc-kept; grep -c . /etc/resolv.conf >/dev/null && echo resolv")
    pod = {"metadata": {"name": "view", "namespace": "default", "uid": str(uuid.uuid4())},
           "spec": {"nodeName": NODE, "restartPolicy": "Never",
                    "volumes": [{"name": n, "emptyDir": {}} for n in ("data", "conf", "custom")],
                    "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                                    "workingDir": workdir,
                                    "volumeMounts": [{"name": "custom", "mountPath": f"{etc}/custom"},
                                                     {"name": "data", "mountPath": f"{top}/data"},
                                                     {"name": "conf", "mountPath": etc}]}]}}
    w = PodWorker(ctx, pod)
    w.start()
    workers.append(w)
    assert await until(lambda: statuses.get("view", {}).get("phase") in ("Succeeded", "Failed"))
    log = w.container_proc("c").log_path.read_text()
    out = [line.split(" ", 3)[3] for line in log.splitlines()]
    assert statuses["view"]["phase"] == "Succeeded", log
    assert out == [workdir, "custom", "etc-kept", "data-dir-kept", "proc-kept", "resolv"], log
    for path in (top, etc, workdir):
        assert not os.path.lexists(path), f"{path} was made on the node"
    assert (w.volumes["data"] / "f").read_text() == "hi\n"
    assert (w.volumes["custom"] / "g").exists()
    assert (w.volumes["conf"] / "custom").is_dir()  # the nested mount point is made in the pod's own volume
    assert f"pk-view-{tag}" not in Path("/proc/self/mountinfo").read_text()


async def test_nodes_sharing_a_namespace_leave_each_other_s_addresses_alone(tmp_path):
    """Two pyk3s nodes in one network namespace (as test clusters on one machine): a hostPort of node A
    must not answer on node B's address once A reads the addresses B's table publishes."""
    import http.server
    import secrets
    import threading

    from pyk3s.agent.proxy.apply import claimed_addresses, run_nft
    from pyk3s.agent.proxy.compile import NODE_ADDRESS_SETS, TABLE

    tag = secrets.token_hex(3)
    links, addrs = [f"pkda{tag}", f"pkdb{tag}"], []
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    thirds = [t for t in range(200, 250) if f"172.31.{t}." not in used][:2]
    tables = [f"pyk3s-pkta{tag}", f"pyk3s-pktb{tag}"]
    server = None
    try:
        for link, third in zip(links, thirds, strict=True):
            addrs.append(f"172.31.{third}.1")
            subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", f"{addrs[-1]}/24", "dev", link], check=True)
            subprocess.run(["ip", "link", "set", link, "up"], check=True)
        class Answer(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                self.send_response(200)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"node a\n")

            def log_message(self, *_args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer((addrs[0], 0), Answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        backend_port = server.server_address[1]
        host_port = 18000 + secrets.randbelow(900)
        pod = {"metadata": {"name": "a", "namespace": "default"},
               "spec": {"nodeName": "na", "containers": [{"name": "c", "ports": [
                   {"containerPort": backend_port, "hostPort": host_port}]}]},
               "status": {"podIP": addrs[0]}}
        cfg_a = ProxyConfig("na", table=tables[0], node_addresses=(addrs[0],))
        cfg_b = ProxyConfig("nb", table=tables[1], node_addresses=(addrs[1],))
        await run_nft(compile_ruleset(cfg_b, [], [], []))
        await run_nft(compile_ruleset(cfg_a, [], [], [pod]))
        # unaware of B, A's hostPort answers on every local address, B's included (CNI portmap's rule)
        assert curl(f"http://{addrs[1]}:{host_port}/").stdout == "node a\n"
        foreign = await claimed_addresses(FAMILY, tables[0], TABLE, NODE_ADDRESS_SETS)
        assert addrs[1] in foreign and addrs[0] not in foreign
        await run_nft(compile_ruleset(cfg_a, [], [], [pod], foreign))
        assert curl(f"http://{addrs[0]}:{host_port}/").stdout == "node a\n"
        assert curl(f"http://{addrs[1]}:{host_port}/").returncode == 7  # refused: B has nothing there
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        for t in tables:
            subprocess.run(["nft", "delete", "table", "inet", t], capture_output=True)
        for link in links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
