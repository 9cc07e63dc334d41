"""`pyk3s server` start-up: readiness time, kubeconfig, certificates reused, `pyk3s kubectl`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest
import yaml
from pyk3s_server import REPO, ServerProcess


@pytest.mark.timing_sensitive
def test_ready_fast_prints_kubeconfig_and_reuses_certificates() -> None:
    srv = ServerProcess(extra_args=["--disable", "coredns,traefik,servicelb", "--write-kubeconfig-mode", "0640"])
    try:
        t0 = time.monotonic()
        srv.start()
        elapsed = time.monotonic() - t0
        log = srv.log()
        assert f"kubeconfig written to {srv.kubeconfig}" in log
        # The server reports its own start time; the harness adds kubectl start-up on top.
        reported = float(log.split("API server ready at ")[1].split(" in ")[1].split("s")[0])
        assert reported < 2.0, log
        assert elapsed < 15
        assert stat.S_IMODE(srv.kubeconfig.stat().st_mode) == 0o640
        kc = yaml.safe_load(srv.kubeconfig.read_text())
        assert [c["name"] for c in kc["clusters"]] == ["default"]
        assert kc["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{srv.port}"
        ca_before = kc["clusters"][0]["cluster"]["certificate-authority-data"]
        token_before = (srv.data_dir / "server" / "token").read_text()
        assert token_before.startswith("K10")
        srv.restart()
        kc2 = yaml.safe_load(srv.kubeconfig.read_text())
        assert kc2["clusters"][0]["cluster"]["certificate-authority-data"] == ca_before
        assert (srv.data_dir / "server" / "token").read_text() == token_before
        assert srv.kubectl("get", "ns", "kube-system", "-o", "name").out.strip() == "namespace/kube-system"
        version = srv.kubectl("version", "-o", "yaml").out
        assert 'minor: "32"' in version
    finally:
        srv.cleanup()


def test_pyk3s_kubectl_uses_the_server_kubeconfig(api_server: ServerProcess) -> None:
    env = {**os.environ, "KUBECONFIG": str(api_server.kubeconfig)}
    out = subprocess.run([sys.executable, "-m", "pyk3s", "kubectl", "get", "ns", "default", "-o", "name"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "namespace/default"


def test_pyk3s_kubectl_without_kubectl_says_so(tmp_path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "pyk3s", "kubectl", "get", "pods"], capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=60)
    assert out.returncode == 1
    assert "no `kubectl` found on PATH" in out.stderr


def test_invalid_flag_values_stop_start_up_naming_the_flag(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pyk3s", "server", "--data-dir", str(tmp_path), "--config", str(tmp_path / "none"),
         "--cluster-cidr", "10.42.0.0/99"],
        capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 1
    assert "invalid cluster-cidr 10.42.0.0/99" in out.stderr
