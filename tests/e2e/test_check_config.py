"""`pyk3s check-config` on this machine, and the start-up checks of `pyk3s server` / `pyk3s agent`: without
`nft` on PATH they exit within seconds with the check's message and fix, not a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyk3s_server import REPO, ClusterNets, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not shutil.which("nft") or not shutil.which("ip"),
                                                  reason="needs nft and ip")]


def pyk3s(*args: str, path: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"PATH": path} if path is not None else {})}
    return subprocess.run([sys.executable, "-m", "pyk3s", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)


def common_flags(tmp_path: Path) -> list[str]:
    nets = ClusterNets.pick()      # CIDRs no other cluster on this machine routes
    return ["--data-dir", str(tmp_path / "data"), "--config", str(tmp_path / "none.yaml"),
            "--https-listen-port", str(free_port()), "--kubelet-port", str(free_port()),
            "--write-kubeconfig", str(tmp_path / "kubeconfig.yaml"),
            "--cluster-cidr", nets.cluster_cidr, "--service-cidr", nets.service_cidr,
            "--cluster-dns", nets.cluster_dns, "--bridge-name", "pkbcheck"]


def path_without_nft(tmp_path: Path) -> str:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("ip", "ss", "nsenter", "unshare"):
        found = shutil.which(name)
        if found:
            (bindir / name).symlink_to(found)
    return str(bindir)


def test_check_config_passes_on_this_machine(tmp_path: Path) -> None:
    res = pyk3s("check-config", *common_flags(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 failed" in res.stdout


def test_server_without_nft_exits_at_once_naming_the_fix(tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = pyk3s("server", *common_flags(tmp_path), path=path_without_nft(tmp_path), timeout=30)
    took = time.monotonic() - t0
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL  binary nft" in res.stderr and "fix: apt-get install nftables" in res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert not (tmp_path / "kubeconfig.yaml").exists()          # nothing started
    assert took < 15, f"took {took:.1f}s"


def test_agent_without_nft_exits_at_once_naming_the_fix(tmp_path: Path) -> None:
    res = pyk3s("agent", "--server", "https://127.0.0.1:1", "--token", "K10x::server:y",
                "--data-dir", str(tmp_path / "data"), "--kubelet-port", str(free_port()),
                "--lb-server-port", str(free_port()), path=path_without_nft(tmp_path), timeout=30)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "pyk3s agent: this machine cannot run it" in res.stderr
    assert "fix: apt-get install nftables" in res.stderr and "Traceback" not in res.stderr


def test_check_config_without_nft_fails_naming_the_fix(tmp_path: Path) -> None:
    res = pyk3s("check-config", *common_flags(tmp_path), path=path_without_nft(tmp_path))
    assert res.returncode == 1
    assert "FAIL  binary nft" in res.stdout and "fix: apt-get install nftables" in res.stdout
