"""containerd beside the process runtime, on one real `pyk3s server` (embedded agent) with its own
containerd, driven with the real kubectl. Images are built here (a static busybox packed as OCI
archives): one through the air-gap folder, others pushed to a local registry (loopback, htpasswd) and
pulled through a registries.yaml mirror with auth (the registry's own and the ``"*"`` one). The tests
run in file order on one module-scoped cluster: late ones restart the server (its containerd pods are
adopted, image GC runs with its thresholds turned up), the last one kills it with SIGKILL and checks
that `pyk3s killall` removes containerd, its shims, containers and mounts."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from images import LocalRegistry, busybox_image, have_tools
from pyk3s_server import ServerProcess

from pyk3s.agent.cri.settings import ContainerdPaths

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not have_tools("containerd", "runc", "ctr", "nft", "curl",
                                                                     "docker-registry", "skopeo"),
                                 reason="needs root, containerd, runc, docker-registry, skopeo, nft and curl"),
              pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="needs busybox-static")]

WEB_IMAGE = "pyk3s.test/web:1"
BOX_IMAGE = "pyk3s.test/busybox:1"
MIRRORED = "registry.pyk3s.test"
ELSEWHERE = "elsewhere.pyk3s.test"     # no mirror of its own: pulled through the "*" mirror
GC_ARGS = ["--kubelet-arg", "image-gc-high-threshold=1", "--kubelet-arg", "image-gc-low-threshold=0",
           "--kubelet-arg", "image-minimum-gc-age=0s"]


def apply(srv: ServerProcess, *docs: dict) -> None:
    srv.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def pod(name: str, containers: list[dict], **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"pk": name}},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 2, **spec}}


def get(srv: ServerProcess, name: str) -> dict:
    return srv.kubectl("get", "pod", name, "-o", "json").json()


def ready(srv: ServerProcess, name: str, timeout: float = 60) -> dict:
    def check() -> dict | None:
        p = get(srv, name)
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
        return p if ok else None
    return srv.wait_for(check, timeout=timeout, what=f"pod {name} ready")


def waiting_reason(srv: ServerProcess, name: str) -> tuple[str, str]:
    st = (get(srv, name)["status"].get("containerStatuses") or [{}])[0]
    w = (st.get("state") or {}).get("waiting") or {}
    return w.get("reason", ""), w.get("message", "")


def curl(url: str, *headers: str, timeout: float = 3) -> str:
    argv = ["curl", "-s", "-m", str(timeout), *(a for h in headers for a in ("-H", h)), url]
    return subprocess.run(argv, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    reg = LocalRegistry().start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def cluster(registry: LocalRegistry) -> Iterator[ServerProcess]:
    srv = ServerProcess(agent=True)
    images = srv.data_dir / "agent" / "images"
    busybox_image(WEB_IMAGE, images / "web.tar", index_html="served by containerd\n")
    box = busybox_image(BOX_IMAGE, srv.tmp / "busybox.tar")
    subprocess.run(["gzip", "-1", str(box)], check=True)
    (srv.tmp / "busybox.tar.gz").rename(images / "busybox.tar.gz")
    app = busybox_image(f"{MIRRORED}/app:1", srv.tmp / "app.tar", index_html="pulled through the mirror\n")
    registry.push(app, "app:1")
    registry.push(busybox_image(f"{MIRRORED}/gc-me:1", srv.tmp / "gc-me.tar", index_html="soon collected\n"),
                  "gc-me:1")
    reg_file = srv.tmp / "registries.yaml"
    reg_file.write_text(yaml.safe_dump({
        "mirrors": {MIRRORED: {"endpoint": [f"http://{registry.host}"]},
                    "*": {"endpoint": [f"http://{registry.host}"]}},
        "configs": {registry.host: {"auth": {"username": registry.user, "password": registry.password}}}}))
    srv.extra_args = ["--container-runtime", "containerd", "--private-registry", str(reg_file),
                      "--disable-default-registry-endpoint"]
    try:
        srv.start()
        srv.wait_for(lambda: "containerd: ready:" in srv.log(), timeout=60, what="containerd ready")
        yield srv
    finally:
        srv.cleanup()


def ctr(srv: ServerProcess, *args: str) -> str:
    sock = ContainerdPaths(srv.data_dir).socket
    return subprocess.run(["ctr", "--address", str(sock), "--namespace", "k8s.io", *args],
                          capture_output=True, text=True, timeout=30).stdout


# -- tests ----------------------------------------------------------------------------------------------------

def test_airgap_images_are_imported_and_pinned(cluster: ServerProcess) -> None:
    listing = ctr(cluster, "images", "ls")
    for name in (WEB_IMAGE, BOX_IMAGE, "docker.io/pyk3s/pause:3.10"):
        line = next((ln for ln in listing.splitlines() if ln.startswith(name + " ")), "")
        assert "io.cri-containerd.pinned=pinned" in line, listing + cluster.log()


def test_deployment_answers_through_clusterip_nodeport_servicelb_and_ingress(cluster: ServerProcess) -> None:
    labels = {"app": "ctr-web"}
    apply(cluster,
          {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ctr-web"},
           "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
               "metadata": {"labels": labels},
               "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
                   "name": "web", "image": WEB_IMAGE, "imagePullPolicy": "Never",
                   "command": ["httpd", "-f", "-p", "8080", "-h", "/www"], "ports": [{"containerPort": 8080}],
                   "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}}}},
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ctr-web"},
           "spec": {"type": "LoadBalancer", "selector": labels,
                    "ports": [{"port": 8088, "targetPort": 8080, "protocol": "TCP"}]}},
          {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ctr-web"},
           "spec": {"rules": [{"host": "ctr-web.pyk3s.test", "http": {"paths": [{
               "path": "/", "pathType": "Prefix",
               "backend": {"service": {"name": "ctr-web", "port": {"number": 8088}}}}]}}]}})
    pods = cluster.wait_for(lambda: [p for p in cluster.kubectl("get", "pods", "-l", "app=ctr-web", "-o", "json")
                                     .json()["items"] if p["status"].get("podIP") and all(
                                         c.get("ready") for c in p["status"].get("containerStatuses") or [{}])],
                            timeout=90, what="ctr-web pods ready")
    assert all(c["containerID"].startswith("containerd://") for p in pods for c in p["status"]["containerStatuses"])
    svc = cluster.kubectl("get", "svc", "ctr-web", "-o", "json").json()
    want = "served by containerd\n"
    node = cluster.node
    assert node is not None
    cluster.wait_for(lambda: curl(f"http://{svc['spec']['clusterIP']}:8088/") == want, what="ClusterIP")
    cluster.wait_for(lambda: curl(f"http://{node.ip}:{svc['spec']['ports'][0]['nodePort']}/") == want,
                     what="NodePort")
    cluster.wait_for(lambda: curl(f"http://{node.ip}:8088/") == want, timeout=90, what="ServiceLB")
    cluster.wait_for(lambda: curl(f"http://{node.ip}/", "Host: ctr-web.pyk3s.test") == want, timeout=120,
                     what="ingress")


def test_image_pulled_through_a_mirror_with_auth(cluster: ServerProcess) -> None:
    apply(cluster, pod("mirrored", [{"name": "c", "image": f"{MIRRORED}/app:1",
                                     "command": ["sh", "-c", "cat /www/index.html; sleep 3600"]}]))
    ready(cluster, "mirrored", timeout=90)
    assert cluster.kubectl("logs", "mirrored").out == "pulled through the mirror\n"
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=mirrored").out
    assert "Successfully pulled image" in events


def test_missing_image_gives_err_image_pull_then_back_off(cluster: ServerProcess) -> None:
    apply(cluster, pod("missing", [{"name": "c", "image": f"{MIRRORED}/nope:1"}]))
    reason, message = cluster.wait_for(lambda: (r := waiting_reason(cluster, "missing"))[0] == "ErrImagePull" and r,
                                       timeout=60, what="ErrImagePull")
    assert "not found" in message, message
    reason, message = cluster.wait_for(
        lambda: (r := waiting_reason(cluster, "missing"))[0] == "ImagePullBackOff" and r, what="ImagePullBackOff")
    assert message.startswith(f'Back-off pulling image "{MIRRORED}/nope:1"') and "not found" in message
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=missing").out
    assert "Failed to pull image" in events and "Back-off pulling image" in events


def _tty(srv: ServerProcess, *args: str, send: str, expect: str, timeout: float = 30) -> str:
    argv = ["kubectl", "--kubeconfig", str(srv.kubeconfig), *args]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    out = b""
    try:
        deadline = time.monotonic() + timeout
        sent = False
        while expect.encode() not in out and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
            if not sent and (b"$ " in out or b"# " in out):  # the shell's prompt (ash then asks where the cursor is)
                os.write(fd, b"\x1b[1;1R" + send.encode())
                sent = True
        return out.decode(errors="replace")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def test_logs_follow_exec_tty_and_port_forward(cluster: ServerProcess) -> None:
    apply(cluster,
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ticker"}, "data": {"greeting": "hello"}},
          pod("ticker", [{"name": "c", "image": BOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                          "command": ["sh", "-c", "httpd -p 8080 -h /etc; i=0; "
                                      "while true; do i=$((i+1)); echo tick $i; sleep 0.5; done"],
                          "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                          "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
                          "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}, {"name": "scratch", "mountPath": "/scratch"}]}],
              volumes=[{"name": "cfg", "configMap": {"name": "ticker"}}, {"name": "scratch", "emptyDir": {}}]))
    ready(cluster, "ticker")
    probe = cluster.kubectl("exec", "ticker", "--", "sh", "-c",
                            "id -u; echo $POD_NAME; cat /cfg/greeting; echo; "
                            "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; hostname").out
    assert probe.split() == ["1000", "ticker", "hello", "default", "ticker"], probe



    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "logs", "-f", "ticker"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(4)]  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    assert lines[0] == "tick 1\n" and lines[3] == "tick 4\n", lines
    res = cluster.kubectl("exec", "ticker", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert res.rc == 3 and res.out == "out\n" and "err" in res.err
    assert cluster.kubectl("exec", "-i", "ticker", "--", "cat", input="via stdin\n").out == "via stdin\n"
    screen = _tty(cluster, "exec", "-it", "ticker", "--", "sh", send="echo $((6*7)); tty\n", expect="/dev/pts/")
    assert "42" in screen and "/dev/pts/" in screen, screen
    port = 18000 + os.getpid() % 1000
    pf = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "port-forward", "pod/ticker",
                           f"{port}:8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        body = cluster.wait_for(lambda: curl(f"http://127.0.0.1:{port}/passwd"), what="port-forward")
        assert body.startswith("root:x:0:0")
    finally:
        pf.terminate()
        pf.wait(10)


def test_probes_and_restarts(cluster: ServerProcess) -> None:
    work = [{"name": "work", "mountPath": "/work"}]
    apply(cluster, pod("probed", [{
        "name": "c", "image": BOX_IMAGE, "imagePullPolicy": "IfNotPresent", "volumeMounts": work,
        "command": ["sh", "-c", "cat /work/marker; touch /tmp/alive; httpd -p 8080 -h /etc; sleep 3600"],
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
        "livenessProbe": {"exec": {"command": ["test", "-e", "/tmp/alive"]}, "periodSeconds": 1,
                          "failureThreshold": 2}}],
        initContainers=[{"name": "init", "image": BOX_IMAGE, "imagePullPolicy": "IfNotPresent", "volumeMounts": work,
                         "command": ["sh", "-c", "echo init ran > /work/marker"]}],
        volumes=[{"name": "work", "emptyDir": {}}]))
    ready(cluster, "probed")
    assert get(cluster, "probed")["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert cluster.kubectl("logs", "probed").out == "init ran\n"
    cluster.kubectl("exec", "probed", "--", "rm", "/tmp/alive")

    def restarted() -> dict | None:
        st = get(cluster, "probed")["status"]["containerStatuses"][0]
        return st if st["restartCount"] >= 1 and st.get("ready") else None
    st = cluster.wait_for(restarted, timeout=60, what="liveness restart")
    assert st["lastState"]["terminated"]["exitCode"] in (137, 143)
    assert cluster.kubectl("logs", "probed", "--previous").out == "init ran\n"
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=probed").out
    assert "Liveness probe failed" in events


def test_pods_of_both_runtimes_reach_each_other_by_service_name(cluster: ServerProcess) -> None:
    apply(cluster,
          pod("proc-who", [{"name": "c", "image": "pyk3s/whoami", "args": ["--port", "8081"]}]),
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "proc-who"},
           "spec": {"selector": {"pk": "proc-who"}, "ports": [{"port": 80, "targetPort": 8081}]}})
    who = ready(cluster, "proc-who")
    assert who["status"]["containerStatuses"][0]["containerID"].startswith("pyk3s://")
    cluster.wait_for(lambda: cluster.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o",
                                             "jsonpath={.items[*].status.containerStatuses[*].ready}").out == "true",
                     timeout=60, what="cluster DNS ready")
    apply(cluster,
          pod("ctr-client", [{"name": "c", "image": BOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                              "command": ["sh", "-c", "until wget -qO- http://proc-who/; do sleep 1; done"]}],
              restartPolicy="Never"),
          pod("proc-client", [{"name": "c", "image": "pyk3s/whoami",
                               "command": ["sh", "-c", "until curl -sf http://ctr-web.default.svc.cluster.local:8088/;"
                                                       " do sleep 1; done"]}], restartPolicy="Never"))
    for name in ("ctr-client", "proc-client"):
        cluster.wait_for(lambda n=name: get(cluster, n)["status"].get("phase") == "Succeeded", timeout=60,
                         what=f"{name} done")
    assert "Hostname: proc-who" in cluster.kubectl("logs", "ctr-client").out
    assert cluster.kubectl("logs", "proc-client").out == "served by containerd\n"
    assert get(cluster, "proc-client")["status"]["containerStatuses"][0]["containerID"].startswith("pyk3s://")


def test_memory_limit_is_enforced_and_oomkilled_reported(cluster: ServerProcess) -> None:
    apply(cluster, pod("hog", [{"name": "c", "image": BOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                                "command": ["tail", "/dev/zero"],
                                "resources": {"limits": {"memory": "24Mi"}}}], restartPolicy="Never"))

    def terminated() -> dict | None:
        st = get(cluster, "hog")["status"].get("containerStatuses") or [{}]
        return (st[0].get("state") or {}).get("terminated")
    t = cluster.wait_for(terminated, timeout=60, what="hog terminated")
    assert t["reason"] == "OOMKilled" and t["exitCode"] == 137, t
    assert get(cluster, "hog")["status"]["phase"] == "Failed"


def test_runtime_class_picks_the_runtime(cluster: ServerProcess) -> None:
    classes = cluster.kubectl("get", "runtimeclass", "-o", "json").json()["items"]
    assert {c["metadata"]["name"]: c["handler"] for c in classes} == {"pyk3s-process": "pyk3s-process",
                                                                       "runc": "runc"}
    apply(cluster,
          pod("as-process", [{"name": "c", "image": BOX_IMAGE, "command": ["sleep", "3600"]}],
              runtimeClassName="pyk3s-process"),
          pod("as-runc", [{"name": "c", "image": BOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                           "command": ["sleep", "3600"]}], runtimeClassName="runc"))
    assert ready(cluster, "as-process")["status"]["containerStatuses"][0]["containerID"].startswith("pyk3s://")
    assert ready(cluster, "as-runc")["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")


def test_image_pulled_through_the_wildcard_mirror(cluster: ServerProcess) -> None:
    """registries.yaml's "*" mirror is containerd's ``_default`` host directory, which containerd 1.6
    reads for a registry that has no directory of its own."""
    certs_d = ContainerdPaths(cluster.data_dir).certs_d
    assert (certs_d / "_default" / "hosts.toml").exists() and not (certs_d / ELSEWHERE).exists()
    apply(cluster, pod("wildcard", [{"name": "c", "image": f"{ELSEWHERE}/app:1",
                                     "command": ["sh", "-c", "cat /www/index.html; sleep 3600"]}]))
    ready(cluster, "wildcard", timeout=90)
    assert cluster.kubectl("logs", "wildcard").out == "pulled through the mirror\n"


def _tasks(srv: ServerProcess) -> dict[str, str]:
    """containerd task (container) id -> its PID."""
    rows = [ln.split() for ln in ctr(srv, "tasks", "ls").splitlines()[1:]]
    return {r[0]: r[1] for r in rows if len(r) >= 3 and r[2] == "RUNNING"}


def _full_log(srv: ServerProcess) -> str:
    return srv.log_path.read_text(errors="replace")


def _cid(p: dict) -> str:
    return p["status"]["containerStatuses"][0]["containerID"]


def test_agent_restart_keeps_containerd_pods_running(cluster: ServerProcess) -> None:
    """Stopping the server leaves containerd's containers running (as K3s does); the restarted agent adopts
    each pod's sandbox and containers instead of making new ones. (The restart also turns image GC all the
    way up, for the next test: an image pulled for a pod that is gone by then is unused.)"""
    apply(cluster, pod("gc-me", [{"name": "c", "image": f"{MIRRORED}/gc-me:1", "command": ["sleep", "3600"]}]))
    ready(cluster, "gc-me", timeout=90)
    cluster.kubectl("delete", "pod", "gc-me", "--wait=true", "--timeout=60s")
    names = ("ticker", "wildcard", "probed")
    before = {n: get(cluster, n) for n in names}
    web = cluster.kubectl("get", "pods", "-l", "app=ctr-web", "-o", "json").json()["items"]
    tasks = _tasks(cluster)
    last_tick = int(cluster.kubectl("logs", "ticker").out.split()[-1])
    starts = _full_log(cluster).count("containerd: ready:")
    cluster.restart(extra_args=[*cluster.extra_args, *GC_ARGS], timeout=60)
    assert "pod(s) keep running under containerd" in _full_log(cluster)
    cluster.wait_for(lambda: _full_log(cluster).count("containerd: ready:") > starts, timeout=90,
                     what="containerd again")
    for n in names:
        after = ready(cluster, n, timeout=90)
        assert _cid(after) == _cid(before[n]), n
        assert after["status"]["containerStatuses"][0]["restartCount"] == \
            before[n]["status"]["containerStatuses"][0]["restartCount"]
        cid = _cid(after).split("://")[1]
        assert _tasks(cluster).get(cid) == tasks[cid], f"{n}: its process was started again"
    assert "adopted sandbox" in _full_log(cluster)
    # the same process went on ticking, its log continues, and exec reaches it
    ticks = cluster.kubectl("logs", "ticker").out.split("\n")
    assert ticks.count("tick 1") == 1 and int(ticks[-2].split()[-1]) > last_tick
    assert cluster.kubectl("exec", "ticker", "--", "echo", "adopted").out == "adopted\n"
    for p in web:
        cluster.wait_for(lambda p=p: _cid(get(cluster, p["metadata"]["name"])) == _cid(p), what="ctr-web kept")
    svc = cluster.kubectl("get", "svc", "ctr-web", "-o", "json").json()
    cluster.wait_for(lambda: curl(f"http://{svc['spec']['clusterIP']}:8088/") == "served by containerd\n",
                     what="ClusterIP after the restart")


def test_image_gc_removes_unused_images_and_keeps_pinned_and_used_ones(cluster: ServerProcess) -> None:
    """With the thresholds at 1 % / 0 % the first pass at agent start removes every image it may: the
    unused pulled one goes; the air-gap and pause images (pinned) and the images of running pods stay, and
    the Node says that not enough could be freed, in the kubelet's words."""
    gone = f"{MIRRORED}/gc-me:1"
    cluster.wait_for(lambda: gone not in ctr(cluster, "images", "ls", "-q").split(), timeout=90,
                     what=f"{gone} collected")
    left = ctr(cluster, "images", "ls", "-q").split()
    for kept in (WEB_IMAGE, BOX_IMAGE, "docker.io/pyk3s/pause:3.10", f"{ELSEWHERE}/app:1"):
        assert kept in left, (kept, left)
    assert "image garbage collection removed" in _full_log(cluster)
    events = cluster.wait_for(lambda: cluster.kubectl(
        "get", "events", "-A", "--field-selector", "involvedObject.kind=Node,reason=FreeDiskSpaceFailed",
        "-o", "jsonpath={.items[*].message}").out, what="FreeDiskSpaceFailed")
    assert "Failed to garbage collect required amount of images. Attempted to free" in events


def test_killall_removes_containerd_shims_containers_and_mounts(cluster: ServerProcess) -> None:
    paths = ContainerdPaths(cluster.data_dir)
    state = str(paths.state)
    cluster.kill9()

    def ours() -> list[str]:
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                with contextlib.suppress(OSError):
                    cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    if state in cmd:
                        out.append(cmd)
        return out
    assert any("containerd-shim" in c for c in ours()), "shims outlive a killed server, as with K3s"
    res = cluster.killall()
    assert res.returncode == 0, res.stderr
    assert "removed containerd" in res.stdout and "removed runtime-mounts" in res.stdout
    assert ours() == []
    assert not [ln for ln in Path("/proc/self/mounts").read_text().splitlines() if state in ln]
    assert not Path(state).exists()
