"""Interactive pod access through a real `pyk3s server` with its embedded agent and the real kubectl:
``exec -it`` with a terminal (driven through a pty of the test), resize, the client's disconnect,
``attach`` / ``run -i`` with stdin, logs after a pod is recreated under the same name, and the pod's
host name (UTS namespace).

One module-scoped cluster (coredns, traefik and servicelb off); teardown asserts nothing of it is left.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyk3s_server import ServerProcess

from pyk3s.agent.cni.podnet import netns_name

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")]

SEEN_UIDS: set[str] = set()

SHELL_POD = """
apiVersion: v1
kind: Pod
metadata: {name: pkshell}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: pyk3s/whoami
    command: ["sh", "-c", "echo host=$(hostname); exec sleep 3600"]
"""


# -- helpers -----------------------------------------------------------------------------------------------

def _apply(srv: ServerProcess, manifest: str) -> None:
    srv.kubectl("apply", "-f", "-", input=manifest)


def _pod(srv: ServerProcess, name: str) -> dict:
    obj = srv.kubectl("get", "pod", name, "-o", "json").json()
    SEEN_UIDS.add(obj["metadata"]["uid"])
    return obj


def _running(srv: ServerProcess, name: str) -> dict:
    def check() -> dict | None:
        p = _pod(srv, name)
        sts = (p.get("status") or {}).get("containerStatuses") or []
        return p if sts and all("running" in (s.get("state") or {}) for s in sts) else None
    return srv.wait_for(check, timeout=60, what=f"pod {name} running")


def _delete(srv: ServerProcess, *names: str) -> None:
    srv.kubectl("delete", "pod", *names, "--ignore-not-found", "--wait=true", "--timeout=60s")


def _cmdline_procs(marker: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(d.name))
            except OSError:
                continue
    return found


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, comm) of the live children of ``pid``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                comm, rest = (d / "stat").read_text().rsplit(")", 1)
            except (OSError, ValueError):
                continue
            fields = rest.split()
            if fields[1] == str(pid) and fields[0] != "Z":
                out.append((int(d.name), comm.split("(", 1)[1]))
    return out


class Terminal:
    """kubectl on a pty of ours, as a user at a terminal runs it."""

    def __init__(self, srv: ServerProcess, *args: str, rows: int = 24, cols: int = 80) -> None:
        argv = ["kubectl", "--kubeconfig", str(srv.kubeconfig), "--cache-dir", str(srv.tmp / "kcache-tty"), *args]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a session leader on the pty
            try:
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        self.resize(rows, cols)
        self.output = b""
        self.status: int | None = None

    def resize(self, rows: int, cols: int) -> None:
        # setting the size of our side signals SIGWINCH to kubectl, which sends a resize message
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def read_until(self, needle: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.output:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"no {needle!r} from kubectl; got {self.output.decode(errors='replace')!r}")
        return self.output.decode(errors="replace")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], min(timeout, 0.5))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return False
        self.output += data
        return bool(data)

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                os.close(self.fd)
                return self.status
        raise AssertionError(f"kubectl still running; output {self.output.decode(errors='replace')!r}")

    def kill(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -9
            os.close(self.fd)


def _exec_children(srv: ServerProcess) -> list[tuple[int, str]]:
    """Exec'd commands still running as children of the server (the embedded agent runs them)."""
    assert srv.proc is not None
    return [(p, c) for p, c in _children(srv.proc.pid) if c in ("sh", "nsenter", "setsid", "sleep", "hostname")]


# -- fixtures ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(kubectl_bin: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb,coredns"])
    try:
        srv.start(timeout=60)
        srv.wait_for(lambda: "True" in srv.kubectl(
            "get", "node", srv.node_name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}").out,
            timeout=60, what="node Ready")
        yield srv
    finally:
        srv.cleanup()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [u for u in SEEN_UIDS if netns_name(u) in netns], "pod network namespaces left behind"
    assert not _cmdline_procs(str(srv.data_dir)), "processes of the cluster left behind"


@pytest.fixture(scope="module")
def shell_pod(cluster: ServerProcess) -> dict:
    _apply(cluster, SHELL_POD)
    return _running(cluster, "pkshell")


# -- exec with a terminal -----------------------------------------------------------------------------------

def test_exec_tty_gives_a_terminal_and_exit_code(cluster, shell_pod):
    term = Terminal(cluster, "exec", "-it", "pkshell", "--", "sh")
    try:
        term.read_until("# ")
        term.send("test -t 0 && test -t 1 && echo TTY-$((40+2)); echo hi; exit 3\n")
        rc = term.wait()
    finally:
        term.kill()
    out = term.output.decode(errors="replace")
    assert "TTY-42" in out, out
    assert "\nhi" in out.replace("\r", ""), out
    assert rc == 3, out
    cluster.wait_for(lambda: not _exec_children(cluster), timeout=10, what="no exec'd process left")


def test_exec_tty_resize(cluster, shell_pod):
    term = Terminal(cluster, "exec", "-it", "pkshell", "--", "sh", rows=33, cols=111)
    try:
        term.read_until("# ")
        term.send("stty size\n")
        term.read_until("33 111")
        term.resize(44, 120)
        time.sleep(0.5)
        term.send("stty size; exit 0\n")
        term.read_until("44 120")
        assert term.wait() == 0
    finally:
        term.kill()


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "plain"])
def test_exec_client_disconnect_kills_the_command(cluster, shell_pod, tty):
    marker = "765432" + ("1" if tty else "2")
    flags = ["-it"] if tty else ["-i"]
    term = Terminal(cluster, "exec", *flags, "pkshell", "--", "sh", "-c", f"sleep {marker}; echo never")
    try:
        cluster.wait_for(lambda: _cmdline_procs(marker), timeout=20, what=f"sleep {marker} running")
    finally:
        term.kill()
    cluster.wait_for(lambda: not _cmdline_procs(marker), timeout=10, what=f"sleep {marker} killed")
    cluster.wait_for(lambda: not _exec_children(cluster), timeout=10, what="no exec'd process left")


def test_exec_plain_stdout_stderr_and_exit_code(cluster, shell_pod):
    r = cluster.kubectl("exec", "-i", "pkshell", "--", "sh", "-c", "read x; echo out-$x; echo err-$x >&2; exit 5",
                        input="v\n", check=False)
    assert (r.rc, r.out, "err-v" in r.err) == (5, "out-v\n", True), r


def test_exec_hostname_is_the_pod_name(cluster, shell_pod):
    assert cluster.kubectl("exec", "pkshell", "--", "hostname").out.strip() == "pkshell"
    assert "host=pkshell" in cluster.kubectl("logs", "pkshell").out


def test_spec_hostname_and_host_network(cluster):
    _apply(cluster, """
apiVersion: v1
kind: Pod
metadata: {name: pknamed}
spec:
  hostname: pk-custom
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: pyk3s/whoami, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: pkhostnet}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: pyk3s/whoami, command: ["sleep", "3600"]}]
""")
    try:
        _running(cluster, "pknamed")
        _running(cluster, "pkhostnet")
        assert cluster.kubectl("exec", "pknamed", "--", "hostname").out.strip() == "pk-custom"
        assert cluster.kubectl("exec", "pkhostnet", "--", "hostname").out.strip() == socket.gethostname()
    finally:
        _delete(cluster, "pknamed", "pkhostnet")


def test_exec_error_from_kubelet_is_shown(cluster):
    """The kubelet's refusal (container not running: crash-looping) reaches kubectl as its own text."""
    _apply(cluster, """
apiVersion: v1
kind: Pod
metadata: {name: pkcrash}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: pyk3s/whoami, command: ["sh", "-c", "exit 1"]}]
""")
    try:
        def refused() -> str | None:
            r = cluster.kubectl("exec", "pkcrash", "--", "true", check=False)
            return r.err if r.rc != 0 and "container c is not running" in r.err else None
        err = cluster.wait_for(refused, timeout=40, interval=0.5, what="kubelet's refusal")
        assert "Invalid response status" not in err
    finally:
        _delete(cluster, "pkcrash")


# -- attach -------------------------------------------------------------------------------------------------

def test_run_attach_with_piped_stdin(cluster):
    r = cluster.kubectl("run", "-i", "--rm", "pkrun", "--image=pyk3s/whoami", "--restart=Never", "--command", "--",
                        "python3", "-c", "print('got', input())", input="hello-attach\n", check=False, timeout=90)
    assert r.rc == 0, r
    assert "got hello-attach" in r.out, r
    assert cluster.kubectl("get", "pod", "pkrun", "--ignore-not-found", "-o", "name").out == ""


def test_attach_tty_container(cluster):
    _apply(cluster, """
apiVersion: v1
kind: Pod
metadata: {name: pkattach}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: pyk3s/whoami, command: ["sh"], stdin: true, tty: true}]
""")
    try:
        _running(cluster, "pkattach")
        term = Terminal(cluster, "attach", "-it", "pkattach")
        try:
            time.sleep(1.0)
            term.send("test -t 0 && echo ATT-$((2+3)); exit 4\n")
            term.read_until("ATT-5")
            assert term.wait() == 0
        finally:
            term.kill()

        def terminated() -> dict | None:
            st = _pod(cluster, "pkattach")["status"]["containerStatuses"][0]["state"]
            return st.get("terminated")
        assert cluster.wait_for(terminated, timeout=20, what="attached shell ended")["exitCode"] == 4
    finally:
        _delete(cluster, "pkattach")


def test_attach_streams_output_of_a_non_stdin_container(cluster):
    _apply(cluster, """
apiVersion: v1
kind: Pod
metadata: {name: pkticker}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: pyk3s/whoami
    command: ["sh", "-c", "i=0; while [ $i -lt 30 ]; do echo tick-$i; echo tock-$i >&2; i=$((i+1)); sleep 0.2; done"]
""")
    try:
        _running(cluster, "pkticker")
        r = cluster.kubectl("attach", "pkticker", check=False, timeout=30)
        assert r.rc == 0, r
        assert "tick-29" in r.out and "tock-29" in r.err, r
    finally:
        _delete(cluster, "pkticker")


# -- logs of a recreated pod --------------------------------------------------------------------------------

def test_logs_after_same_name_recreation(cluster):
    manifest = """
apiVersion: v1
kind: Pod
metadata: {name: pkrecreate}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: pyk3s/whoami, command: ["sh", "-c", "echo %s-pod; exec sleep 3600"]}]
"""
    pods_dir = cluster.data_dir / "agent" / "pods"
    _apply(cluster, manifest % "first")
    first = _running(cluster, "pkrecreate")["metadata"]["uid"]
    cluster.wait_for(lambda: "first-pod" in cluster.kubectl("logs", "pkrecreate").out, what="first pod's log")
    _delete(cluster, "pkrecreate")
    try:
        _apply(cluster, manifest % "second")
        second = _running(cluster, "pkrecreate")["metadata"]["uid"]
        assert second != first
        cluster.wait_for(lambda: "second-pod" in cluster.kubectl("logs", "pkrecreate").out, what="second pod's log")
        assert "first-pod" not in cluster.kubectl("logs", "pkrecreate").out
        cluster.wait_for(lambda: not (pods_dir / first).exists(), timeout=15, what="deleted pod's directory removed")
        assert (pods_dir / second).is_dir()
    finally:
        _delete(cluster, "pkrecreate")
    cluster.wait_for(lambda: not (pods_dir / second).exists(), timeout=15, what="pod directory removed")


def test_shell_pod_deleted_cleanly(cluster, shell_pod):
    uid = shell_pod["metadata"]["uid"]
    _delete(cluster, "pkshell")
    cluster.wait_for(lambda: not (cluster.data_dir / "agent" / "pods" / uid).exists(), timeout=15,
                     what="pod directory removed")
    assert not _exec_children(cluster)
    assert json.loads(cluster.kubectl("get", "pods", "-o", "json").out)["items"] == []
