"""`pyk3s map` arguments and where its kubeconfig comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyk3s.cli.map import main
from pyk3s.netmap import run
from pyk3s.netmap.run import _url, resolve_kubeconfig


def test_kubeconfig_flag_then_environment_then_the_servers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server = tmp_path / "pyk3s.yaml"
    monkeypatch.setattr(run, "default_kubeconfig_path", lambda: str(server))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path}/a.yaml:{tmp_path}/b.yaml")
    assert resolve_kubeconfig("given.yaml") == "given.yaml"
    assert resolve_kubeconfig(None) == f"{tmp_path}/a.yaml"
    monkeypatch.delenv("KUBECONFIG")
    assert resolve_kubeconfig(None) is None
    server.write_text("apiVersion: v1\n")
    assert resolve_kubeconfig(None) == str(server)


def test_printed_url_names_an_address_a_browser_can_open() -> None:
    assert _url("127.0.0.1", 8001) == "http://127.0.0.1:8001/"
    assert _url("0.0.0.0", 8001) == "http://127.0.0.1:8001/"
    assert _url("::", 9000) == "http://[::1]:9000/"
    assert _url("fd00::1", 9000) == "http://[fd00::1]:9000/"


def test_bad_port_and_missing_kubeconfig_are_usage_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--port", "70000"])
    assert exc.value.code == 2 and "expected 0-65535" in capsys.readouterr().err
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(run, "default_kubeconfig_path", lambda: str(tmp_path / "none.yaml"))
    assert main([]) == 1
    assert "no kubeconfig" in capsys.readouterr().err
