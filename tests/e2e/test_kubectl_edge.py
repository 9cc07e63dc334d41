"""The API server's edge against the real kubectl 1.32: TLS client certs, bearer tokens, 401/403,
RBAC, auth can-i / whoami, protobuf create bodies, server-side tables, exec/logs error paths."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pyk3s_server import KubectlResult

pytestmark = pytest.mark.e2e

# The API server alone (start_api_server on a SQLite store), without controllers or an agent, so these
# tests exercise only the API edge and the core.
_SERVER_SCRIPT = """
import asyncio, signal, sys
from pathlib import Path
from pyk3s.api.server import ServerApiSettings, start_api_server
from pyk3s.api.store import open_store

async def main():
    data = Path(sys.argv[1])
    store = open_store("", data)
    await store.start()
    run = await start_api_server(ServerApiSettings(data_dir=data, bind_address="127.0.0.1", https_port=0,
                                                   node_name="pk-edge-node", token="pk-edge-token"), store)
    run.write_admin_kubeconfig(Path(sys.argv[2]))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await run.stop()
    await store.close()

asyncio.run(main())
"""


class EdgeServer:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pyk3s-edge-e2e-"))
        self.data_dir = self.tmp / "data"
        self.kubeconfig = self.tmp / "kubeconfig.yaml"
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> EdgeServer:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER_SCRIPT, str(self.data_dir), str(self.kubeconfig)],
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"API server exited: {self.log_path.read_text()[-4000:]}")
            if self.kubeconfig.exists() and self.kubectl("get", "--raw", "/readyz", check=False).rc == 0:
                return self
            time.sleep(0.2)
        raise TimeoutError(f"API server not ready: {self.log_path.read_text()[-4000:]}")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0,
                env: dict[str, str] | None = None) -> KubectlResult:
        cache = self.tmp / f"kcache-{secrets.token_hex(4)}"
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(cache), *args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})})
        res = KubectlResult(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return res

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
        subprocess.run(["rm", "-rf", str(self.tmp)], capture_output=True)


@pytest.fixture(scope="module")
def api_server(kubectl_bin: str) -> Iterator[EdgeServer]:
    srv = EdgeServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


def _kubeconfig(srv) -> dict:
    return yaml.safe_load(Path(srv.kubeconfig).read_text())


def _server_url(srv) -> str:
    return _kubeconfig(srv)["clusters"][0]["cluster"]["server"]


def _ca_context(srv) -> ssl.SSLContext:
    ca = base64.b64decode(_kubeconfig(srv)["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    return ssl.create_default_context(cadata=ca)


def _raw_get(srv, path: str, token: str | None = None) -> tuple[int, dict | str]:
    req = urllib.request.Request(_server_url(srv) + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=_ca_context(srv), timeout=10) as resp:
            body = resp.read().decode()
            code = resp.status
    except urllib.error.HTTPError as err:
        body, code = err.read().decode(), err.code
    try:
        return code, json.loads(body)
    except ValueError:
        return code, body


def _user_kubeconfig(srv, tmp_path: Path, user: str, groups: list[str]) -> Path:
    """A kubeconfig for another identity, with a client cert signed by the server's client CA."""
    from pyk3s.api.certs import ClusterCerts, write_kubeconfig

    certs = ClusterCerts.load(srv.data_dir / "server" / "tls")
    cert, key = certs.issue_client_cert(user, groups)
    path = tmp_path / f"{user}.yaml"
    ca = base64.b64decode(_kubeconfig(srv)["clusters"][0]["cluster"]["certificate-authority-data"])
    write_kubeconfig(path, _server_url(srv), ca, cert, key)
    return path


def test_unauthenticated_requests_get_401_but_health_is_public(api_server):
    code, body = _raw_get(api_server, "/api/v1/namespaces")
    assert code == 401
    assert body["reason"] == "Unauthorized" and body["kind"] == "Status"
    assert _raw_get(api_server, "/healthz") == (200, "ok")
    code, version = _raw_get(api_server, "/version")
    assert code == 200 and version["minor"] == "32"
    code, _ = _raw_get(api_server, "/version", token="not-a-token")
    assert code == 401


def test_kubectl_with_a_bad_token_is_unauthorized(api_server):
    r = api_server.kubectl("get", "pods", "--token", "bogus", "--user", "", check=False, input="")
    assert r.rc != 0
    assert "Unauthorized" in r.err or "must be logged in" in r.err


def test_whoami_and_can_i_as_admin(api_server):
    r = api_server.kubectl("auth", "whoami")
    assert "system:admin" in r.out and "system:masters" in r.out
    assert api_server.kubectl("auth", "can-i", "create", "pods").out.strip() == "yes"
    assert api_server.kubectl("auth", "can-i", "delete", "nodes").out.strip() == "yes"
    listed = api_server.kubectl("auth", "can-i", "--list").out
    assert "*.*" in listed


def test_protobuf_creates_round_trip(api_server):
    k = api_server.kubectl
    k("create", "namespace", "pk-edge")
    k("create", "configmap", "cfg", "-n", "pk-edge", "--from-literal=a=b", "--from-literal=empty=")
    k("create", "secret", "generic", "s1", "-n", "pk-edge", "--from-literal=user=admin")
    k("create", "deployment", "web", "-n", "pk-edge", "--image=pyk3s/whoami", "--replicas=0", "--port=80")
    k("create", "serviceaccount", "builder", "-n", "pk-edge")
    assert k("get", "ns", "pk-edge", "-o", "json").json()["metadata"]["name"] == "pk-edge"
    assert k("get", "cm", "cfg", "-n", "pk-edge", "-o", "json").json()["data"] == {"a": "b", "empty": ""}
    secret = k("get", "secret", "s1", "-n", "pk-edge", "-o", "json").json()
    assert base64.b64decode(secret["data"]["user"]) == b"admin"
    deploy = k("get", "deploy", "web", "-n", "pk-edge", "-o", "json").json()
    assert deploy["spec"]["replicas"] == 0
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "pyk3s/whoami" and container["ports"][0]["containerPort"] == 80


def test_tables_for_get(api_server):
    k = api_server.kubectl
    k("create", "namespace", "pk-tables")
    k("create", "configmap", "cfg", "-n", "pk-tables", "--from-literal=a=b")
    k("run", "p1", "-n", "pk-tables", "--image=pyk3s/whoami")
    header = k("get", "pods", "-n", "pk-tables", "-o", "wide").out.splitlines()[0].split()
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                      "READINESS", "GATES"]
    row = k("get", "pods", "-n", "pk-tables").out.splitlines()[1].split()
    assert row[:4] == ["p1", "0/1", "Pending", "0"]
    cm = k("get", "cm", "cfg", "-n", "pk-tables").out.splitlines()
    assert cm[0].split() == ["NAME", "DATA", "AGE"] and cm[1].split()[:2] == ["cfg", "1"]
    svc = k("get", "svc", "kubernetes", "-n", "default").out.splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1].split()[1:4] == ["ClusterIP", "10.43.0.1", "<none>"]
    described = k("describe", "pod", "p1", "-n", "pk-tables").out
    assert "Name:" in described and "p1" in described


def test_rbac_for_a_limited_user(api_server, tmp_path):
    k = api_server.kubectl
    k("create", "namespace", "pk-rbac")
    alice = _user_kubeconfig(api_server, tmp_path, "alice", ["devs"])

    def as_alice(*args):
        return k("--kubeconfig", str(alice), *args, check=False)

    denied = as_alice("get", "pods", "-n", "pk-rbac")
    assert denied.rc != 0
    assert ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace '
            '"pk-rbac"') in denied.err
    no = as_alice("auth", "can-i", "list", "pods", "-n", "pk-rbac")
    assert (no.rc, no.out.strip()) == (1, "no")
    who = as_alice("auth", "whoami")
    assert who.rc == 0 and "alice" in who.out and "devs" in who.out
    k("create", "rolebinding", "devs-view", "-n", "pk-rbac", "--clusterrole=view", "--group=devs")
    yes = as_alice("auth", "can-i", "list", "pods", "-n", "pk-rbac")
    assert (yes.rc, yes.out.strip()) == (0, "yes")
    assert as_alice("get", "pods", "-n", "pk-rbac").rc == 0
    assert as_alice("get", "pods", "-n", "default").rc != 0
    assert as_alice("auth", "can-i", "get", "secrets", "-n", "pk-rbac").out.strip() == "no"


def test_service_account_token(api_server):
    k = api_server.kubectl
    k("create", "namespace", "pk-sa")
    k("create", "serviceaccount", "robot", "-n", "pk-sa")
    token = k("create", "token", "robot", "-n", "pk-sa").out.strip()
    assert token.count(".") == 2
    code, review = _raw_get(api_server, "/api/v1/namespaces/pk-sa/pods", token=token)
    assert code == 403 and "system:serviceaccount:pk-sa:robot" in review["message"]
    who = k("auth", "whoami", "--token", token, "--user", "", "-o", "json", check=False, input="")
    assert who.rc == 0, who.err
    info = json.loads(who.out)["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:pk-sa:robot"
    assert "system:serviceaccounts:pk-sa" in info["groups"]


def test_logs_and_exec_report_why_without_a_node(api_server):
    k = api_server.kubectl
    k("create", "namespace", "pk-exec")
    k("run", "lonely", "-n", "pk-exec", "--image=pyk3s/whoami")
    logs = k("logs", "lonely", "-n", "pk-exec", check=False)
    assert logs.rc != 0 and "does not have a host assigned" in logs.err
    ex = k("exec", "lonely", "-n", "pk-exec", "--", "true", check=False, timeout=30)
    assert ex.rc != 0 and "does not have a host assigned" in ex.err
    spdy = k("exec", "lonely", "-n", "pk-exec", "--", "true", check=False, timeout=30,
             env={"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"})
    assert spdy.rc != 0 and "SPDY is not supported" in spdy.err


def test_port_forward_to_a_pod_without_a_node_is_refused(api_server):
    k = api_server.kubectl
    k("create", "namespace", "pk-pf")
    k("run", "pf", "-n", "pk-pf", "--image=pyk3s/whoami")
    k("patch", "pod", "pf", "-n", "pk-pf", "--subresource=status", "--type=merge", "-p",
      '{"status":{"phase":"Running"}}')  # kubectl refuses to forward to a pod it does not see running
    r = k("port-forward", "-n", "pk-pf", "pod/pf", "18999:80", check=False, timeout=30)
    assert r.rc != 0 and 'pod "pf" does not have a host assigned' in r.err
