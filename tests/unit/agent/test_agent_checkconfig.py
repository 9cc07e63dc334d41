"""`pyk3s check-config`: the checks against this machine (read-only where not root), a PATH without
nft, which must FAIL with the fix named, and the container runtime's programs (containerd, runc, ctr)
or the socket of --container-runtime-endpoint."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pyk3s.agent.checkconfig import CheckSettings, Status, format_results, run_checks
from pyk3s.agent.checkconfig.checks import check_cidrs, check_data_dir, check_ports, host_routes

REPO = Path(__file__).resolve().parents[3]


def by_name(results: list) -> dict:
    return {r.name: r for r in results}


def test_data_dir_writable_creatable_and_not(tmp_path: Path) -> None:
    assert check_data_dir(CheckSettings(data_dir=tmp_path))[0].status is Status.PASS
    assert "can be created" in check_data_dir(CheckSettings(data_dir=tmp_path / "a" / "b"))[0].detail
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = check_data_dir(CheckSettings(data_dir=blocker / "data"))[0]
    assert res.status is Status.FAIL and "not a directory" in res.detail and "--data-dir" in res.fix


def test_port_in_use_fails_for_the_api_and_warns_for_the_ingress() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        s = CheckSettings(data_dir=Path("/nonexistent"), bind_address="127.0.0.1", https_port=port,
                          kubelet_port=0, agent=False)
        res = by_name(check_ports(s))[f"port {port}"]
        assert res.status is Status.FAIL and "in use" in res.detail and "--https-listen-port" in res.detail


def test_cidr_overlapping_a_host_route_fails_with_the_flag() -> None:
    if not shutil.which("ip"):
        pytest.skip("ip not installed")
    routed = [r["dst"] for r in host_routes() if r.get("dst") not in (None, "default") and "/" in r["dst"]
              and r.get("type") not in ("local", "broadcast")]
    if not routed:
        pytest.skip("this machine has no IPv4 route but the default one")
    nets = [ipaddress.ip_network(r, strict=False) for r in routed]
    free = next(c for c in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "100.127.255.0/24")
                if not any(ipaddress.ip_network(c).overlaps(n) for n in nets))
    s = CheckSettings(data_dir=Path("/tmp"), cluster_cidrs=(routed[0],), service_cidrs=(free,))
    res = by_name(check_cidrs(s))
    assert res[f"free CIDR {routed[0]}"].status is Status.FAIL
    assert "--cluster-cidr" in res[f"free CIDR {routed[0]}"].fix
    assert res[f"free CIDR {free}"].status is Status.PASS


def test_blocking_only_runs_the_start_up_checks(tmp_path: Path) -> None:
    s = CheckSettings(data_dir=tmp_path, agent=False, https_port=0)
    names = [r.name for r in run_checks(s, blocking_only=True)]
    assert names == ["port 0", "data dir"]            # no root, binaries or kernel checks without an agent


def test_format_names_the_fix_only_when_not_passing(tmp_path: Path) -> None:
    from pyk3s.agent.checkconfig import CheckResult
    text = format_results([CheckResult("a", Status.PASS, "ok", "never shown"), CheckResult("bb", Status.FAIL, "bad", "do x")])
    assert "never shown" not in text and "fix: do x" in text and text.startswith("PASS  a ")


def _path_without(tmp_path: Path, hidden: str) -> str:
    """A PATH holding every binary the checks use except ``hidden``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("ip", "ss", "nsenter", "unshare", "nft"):
        found = shutil.which(name)
        if found and name != hidden:
            (bindir / name).symlink_to(found)
    return str(bindir)


def test_check_config_fails_without_nft_and_names_the_fix(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without(tmp_path, "nft")}
    res = subprocess.run([sys.executable, "-m", "pyk3s", "check-config", "--data-dir", str(tmp_path / "d"),
                          "--config", str(tmp_path / "none.yaml")],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL  binary nft" in res.stdout
    assert "fix: apt-get install nftables" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr


def test_check_config_on_this_machine_runs_every_check(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "pyk3s", "check-config", "--data-dir", str(tmp_path / "d"),
                          "--config", str(tmp_path / "none.yaml")],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    for name in ("root", "binary nft", "binary ip", "binary containerd", "binary runc", "kernel: network namespaces", "kernel: veth", "kernel: bridge",
                 "kernel: vxlan", "kernel: br_netfilter", "kernel: nf_tables with nat", "ip forwarding",
                 "port 6443", "port 10250", "port 80", "port 443", "free CIDR 10.42.0.0/16",
                 "free CIDR 10.43.0.0/16", "data dir"):
        assert f"  {name} " in res.stdout, (name, res.stdout)
    assert "passed," in res.stdout and "Traceback" not in res.stderr


def _fake_tools(tmp_path: Path, *names: str) -> str:
    """A PATH with only these programs, each answering --version as the real one does."""
    bindir = tmp_path / "rt-bin"
    bindir.mkdir()
    versions = {"containerd": "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1",
                "runc": "runc version 1.1.5+ds1", "ctr": "ctr github.com/containerd/containerd 1.6.20~ds1"}
    for name in names:
        tool = bindir / name
        tool.write_text(f"#!/bin/sh\necho '{versions[name]}'\n")
        tool.chmod(0o755)
    return str(bindir)


def test_container_runtime_reports_containerd_runc_and_ctr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyk3s.agent.checkconfig.checks import check_container_runtime

    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "containerd", "runc", "ctr"))
    res = by_name(check_container_runtime(CheckSettings(data_dir=tmp_path)))
    assert res["binary containerd"].status is Status.PASS and "(1.6.20~ds1)" in res["binary containerd"].detail
    assert res["binary runc"].status is Status.PASS and "(1.1.5+ds1)" in res["binary runc"].detail
    assert res["binary ctr"].status is Status.PASS


def test_missing_runc_warns_and_fails_only_when_containerd_is_required(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from pyk3s.agent.checkconfig.checks import check_container_runtime

    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "containerd", "ctr"))
    auto = by_name(check_container_runtime(CheckSettings(data_dir=tmp_path)))["binary runc"]
    assert auto.status is Status.WARN and "stay Waiting" in auto.detail and "apt-get install runc" in auto.fix
    required = check_container_runtime(CheckSettings(data_dir=tmp_path, container_runtime="containerd"))
    assert by_name(required)["binary runc"].status is Status.FAIL
    none = check_container_runtime(CheckSettings(data_dir=tmp_path, container_runtime="none"))
    assert [(r.name, r.status) for r in none] == [("container runtime", Status.PASS)]


def test_an_external_endpoint_is_checked_for_its_socket(tmp_path: Path) -> None:
    from pyk3s.agent.checkconfig.checks import check_container_runtime

    missing = check_container_runtime(CheckSettings(data_dir=tmp_path, runtime_endpoint=f"unix://{tmp_path}/c.sock"))
    assert missing[0].status is Status.WARN and "--container-runtime-endpoint" in missing[0].fix
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "c.sock"))
        present = check_container_runtime(CheckSettings(data_dir=tmp_path,
                                                        runtime_endpoint=f"unix://{tmp_path}/c.sock"))
    assert present[0].status is Status.PASS


def test_cgroups_warn_when_the_mount_namespace_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyk3s.agent.checkconfig.checks import check_cgroups

    monkeypatch.setenv("PATH", _fake_tools(tmp_path, "containerd", "runc", "ctr"))
    with_cgroups = tmp_path / "mountinfo-host"
    with_cgroups.write_text(
        "22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
        "30 22 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n")
    ok = check_cgroups(CheckSettings(data_dir=tmp_path), with_cgroups)
    assert ok[0].status is Status.PASS and "/sys/fs/cgroup" in ok[0].detail
    # what `ip netns exec` leaves: a fresh sysfs on /sys and no cgroup filesystem under it
    without = tmp_path / "mountinfo-netns-exec"
    without.write_text("400 399 0:80 / /sys rw,relatime - sysfs pk-x rw\n")
    warn = check_cgroups(CheckSettings(data_dir=tmp_path), without)[0]
    assert warn.status is Status.WARN and "FailedCreatePodSandBox" in warn.detail and "nsenter --net" in warn.fix
    assert check_cgroups(CheckSettings(data_dir=tmp_path, container_runtime="none"), without) == []
