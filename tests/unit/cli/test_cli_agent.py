"""`pyk3s agent` refuses what cannot work before it touches the machine; errors name the flag."""

from __future__ import annotations

import pytest

from pyk3s.cli.agent import main


@pytest.mark.parametrize(("argv", "message"), [
    ([], "--server is required"),
    (["--server", "http://10.0.0.1:6443", "--token", "t"], "--server 'http://10.0.0.1:6443'"),
    (["--server", "https://10.0.0.1:6443"], "--token is required"),
    (["--server", "https://10.0.0.1:6443", "--token", "K10abc::server"], "--token: expected K10"),
    (["--server", "https://10.0.0.1:6443", "--token-file", "/nonexistent/t"], "--token-file /nonexistent/t"),
], ids=["no-server", "http", "no-token", "bad-token", "token-file"])
def test_join_flags_are_checked_first(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("K3S_URL", "K3S_TOKEN", "K3S_TOKEN_FILE", "PYK3S_URL", "PYK3S_TOKEN", "PYK3S_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--config", "/nonexistent/pyk3s.yaml", *argv]) == 1
    assert message in capsys.readouterr().err


def test_kubeconfig_mode_takes_no_join_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--kubeconfig", "/nonexistent/kubeconfig", "--server", "https://10.0.0.1:6443"])
    assert "unrecognized arguments: --server" in capsys.readouterr().err
