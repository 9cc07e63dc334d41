import pytest

from pyk3s.addons.lb.rules import LbConfigError, parse_env, ruleset, table_name

ENV = {"SRC_PORT": "8000", "SRC_RANGES": "0.0.0.0/0", "DEST_PROTO": "TCP", "DEST_PORT": "8000",
       "DEST_IPS": "10.43.0.50"}


def test_cluster_policy_ruleset() -> None:
    text = ruleset(parse_env(ENV))
    assert "table ip pyk3s_klipper_tcp_8000 {" in text
    assert "tcp dport 8000 dnat to 10.43.0.50:8000" in text
    assert "ip daddr 10.43.0.50 tcp dport 8000 masquerade\n" in text  # port-preserving, as klipper-lb's
    assert "random" not in text
    assert "ip saddr { 0.0.0.0/0 } ip daddr 10.43.0.50 tcp dport 8000 accept" in text
    assert text.index("accept") < text.index("drop")
    assert "ip6" not in text


def test_dual_stack_and_udp_and_last_destination_wins() -> None:
    env = {**ENV, "DEST_PROTO": "UDP", "DEST_IPS": "10.43.0.50,10.43.0.51 fd00:43::5",
           "SRC_RANGES": "10.0.0.0/8,::/0"}
    text = ruleset(parse_env(env))
    assert "udp dport 8000 dnat to 10.43.0.51:8000" in text
    assert "udp dport 8000 dnat to [fd00:43::5]:8000" in text
    assert "ip6 saddr { ::/0 }" in text and "ip saddr { 10.0.0.0/8 }" in text


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"SRC_PORT": "0"}, "SRC_PORT=0 is outside"),
        ({"DEST_PORT": "x"}, "DEST_PORT='x' is not a port"),
        ({"DEST_PROTO": "SCTP"}, "DEST_PROTO='SCTP' is not supported"),
        ({"DEST_IPS": ""}, "DEST_IPS is empty"),
        ({"DEST_IPS": "nope"}, "not an IP address"),
        ({"SRC_RANGES": "10.0.0.0/99"}, "not a CIDR"),
    ],
)
def test_bad_environment_is_named(change: dict, fragment: str) -> None:
    with pytest.raises(LbConfigError, match="klipper-lb") as err:
        parse_env({**ENV, **change})
    assert fragment in str(err.value)


def test_each_container_owns_its_table() -> None:
    tcp = parse_env(ENV)
    udp = parse_env({**ENV, "DEST_PROTO": "UDP"})
    other = parse_env({**ENV, "SRC_PORT": "9000"})
    assert len({table_name(tcp), table_name(udp), table_name(other)}) == 3
    assert "table ip pyk3s_klipper_udp_8000 {" in ruleset(udp)
