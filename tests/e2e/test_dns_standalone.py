"""End-to-end: `pyk3s coredns` as a separate process against a real pyk3s API server via kubeconfig.

Needs a running pyk3s server: set PYK3S_E2E_KUBECONFIG to its kubeconfig. The test creates a namespace
`pk-dns-e2e` with a Service, queries the server with dig, and deletes what it created.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.e2e
KUBECONFIG = os.environ.get("PYK3S_E2E_KUBECONFIG")


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.skipif(not KUBECONFIG or not shutil.which("kubectl") or not shutil.which("dig"),
                    reason="needs PYK3S_E2E_KUBECONFIG, kubectl and dig")
def test_standalone_server_against_kubeconfig(tmp_path) -> None:  # noqa: ANN001
    port = free_port()
    corefile = tmp_path / "Corefile"
    corefile.write_text(f".:{port} {{\n  bind 127.0.0.1\n  errors\n  kubernetes cluster.local\n  cache 30\n}}\n")
    kc = ["kubectl", "--kubeconfig", KUBECONFIG]
    subprocess.run(kc + ["create", "namespace", "pk-dns-e2e"], check=True)
    subprocess.run(kc + ["-n", "pk-dns-e2e", "create", "service", "clusterip", "pk-web", "--tcp=80:8080"],
                   check=True)
    proc = subprocess.Popen([sys.executable, "-m", "pyk3s", "coredns", "-conf", str(corefile),
                             "--kubeconfig", KUBECONFIG])
    try:
        ip = subprocess.run(kc + ["-n", "pk-dns-e2e", "get", "svc", "pk-web", "-o", "jsonpath={.spec.clusterIP}"],
                            check=True, capture_output=True, text=True).stdout.strip()
        answer = ""
        for _ in range(50):
            out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=1", "+tries=1",
                                  "pk-web.pk-dns-e2e.svc.cluster.local"], capture_output=True, text=True)
            answer = out.stdout.strip()
            if answer == ip:
                break
            time.sleep(0.2)
        assert answer == ip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        subprocess.run(kc + ["delete", "namespace", "pk-dns-e2e", "--wait=false"], check=False)
