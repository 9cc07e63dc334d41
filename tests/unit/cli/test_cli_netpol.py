"""`pyk3s netpol` argument parsing."""

import pytest

from pyk3s.cli.netpol import main, parse_port


@pytest.mark.parametrize(("text", "want"), [("80", ("TCP", 80)), ("53/udp", ("UDP", 53)), ("9000/SCTP", ("SCTP", 9000)),
                                            ("icmp", ("ICMP", 0))])
def test_parse_port(text: str, want: tuple[str, int]) -> None:
    assert parse_port(text) == want


@pytest.mark.parametrize("text", ["0", "70000", "http", "80/icmp", "80/"])
def test_parse_port_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected PORT"):
        parse_port(text)


def test_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "a/b", "c/d", "80/xyz", "--kubeconfig", "/nonexistent"]) == 2
    assert "expected PORT" in capsys.readouterr().err
