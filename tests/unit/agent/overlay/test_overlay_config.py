"""Address families a node serves, the IPv6 check, node IP order (pure or on a scratch folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyk3s.agent.overlay.config import OverlaySettings, ipv6_available, node_families, order_node_ips


def test_ipv6_available_reads_the_kernel_switch(tmp_path: Path) -> None:
    assert "no /proc/sys/net/ipv6" in ipv6_available(tmp_path / "nope")
    flag = tmp_path / "conf" / "all" / "disable_ipv6"
    flag.parent.mkdir(parents=True)
    flag.write_text("1\n")
    assert "disable_ipv6=1" in ipv6_available(tmp_path)
    flag.write_text("0\n")
    assert ipv6_available(tmp_path) == ""


def test_a_node_without_ipv6_serves_the_ipv4_half_and_says_why() -> None:
    assert node_families(["10.42.0.0/16", "fd42::/56"], "") == ((4, 6), "")
    assert node_families(["10.42.0.0/16", "fd42::/56"], "IPv6 is disabled") == ((4,), "IPv6 is disabled")
    assert node_families(["fd42::/56"], "IPv6 is disabled") == ((), "IPv6 is disabled")


def test_node_ips_follow_the_first_cluster_cidr_family() -> None:
    assert order_node_ips(["172.31.1.1", "fd31::1"], ["fd42::/56", "10.42.0.0/16"]) == ["fd31::1", "172.31.1.1"]
    assert order_node_ips(["172.31.1.1", "fd31::1"], ["10.42.0.0/16"]) == ["172.31.1.1", "fd31::1"]


def test_unknown_backend_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="wireguard-native"):
        OverlaySettings(backend="wireguard-native").check()
