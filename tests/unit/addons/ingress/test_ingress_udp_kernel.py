"""The kernel relay of UDP routers: which entry points it takes, session shares, and the nftables script."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from dataclasses import replace
from fractions import Fraction

import pytest

from pyk3s.addons.ingress.config.errors import ConfigError
from pyk3s.addons.ingress.config.static import AccessLogOptions, static_from_flags
from pyk3s.addons.ingress.proxy.udp_kernel import (
    MARK,
    MAX_SLOTS,
    KernelRoute,
    UDPRelayPlan,
    leaf_shares,
    plan_udp,
    render_nft,
    slots_for,
)
from pyk3s.addons.ingress.routing.tcp_services import UDPBalancer, UDPWeightedBalancer
from pyk3s.addons.ingress.routing.tcp_table import UDPEntry

A, B, C = ("10.0.0.1", 53), ("10.0.0.2", 53), ("10.0.0.3", 5353)


def static(*extra: str):
    return static_from_flags(["--entryPoints.dns.address=:53/udp", "--entryPoints.dns.udp.timeout=2500ms",
                              "--entryPoints.web.address=:80", *extra])


def entry(service) -> dict[str, UDPEntry]:
    return {"dns": UDPEntry("default-dns-0", service)}


def test_flat_service_shares_sessions_equally() -> None:
    shares = leaf_shares(UDPBalancer("s", [A, B]))
    assert shares == {A: Fraction(1, 2), B: Fraction(1, 2)}
    assert slots_for(shares) == (A, B)


def test_nested_weights_multiply_out() -> None:
    inner = UDPBalancer("inner", [A, B])
    outer = UDPWeightedBalancer("w", [(inner, 3), (UDPBalancer("c", [C]), 1), (UDPBalancer("zero", [A]), 0)])
    shares = leaf_shares(outer)
    assert shares == {A: Fraction(3, 8), B: Fraction(3, 8), C: Fraction(1, 4)}
    slots = slots_for(shares)
    assert Counter(slots) == {A: 3, B: 3, C: 2}
    assert slots[:2] != (A, A)  # interleaved as the weighted round robin picks, not in runs


def test_a_server_in_two_children_adds_up() -> None:
    outer = UDPWeightedBalancer("w", [(UDPBalancer("x", [A]), 1), (UDPBalancer("y", [A, B]), 2)])
    assert leaf_shares(outer) == {A: Fraction(2, 3), B: Fraction(1, 3)}


def test_fine_weights_are_rounded_to_the_slot_limit() -> None:
    outer = UDPWeightedBalancer("w", [(UDPBalancer("x", [A]), 1), (UDPBalancer("y", [B]), 997)])
    slots = slots_for(leaf_shares(outer))
    assert len(slots) <= MAX_SLOTS + 1
    assert Counter(slots)[A] == 1  # a server with a weight keeps at least one slot


def test_plan_takes_ip_servers_and_rounds_the_timeout_up() -> None:
    plan = plan_udp(static(), entry(UDPBalancer("s", [A, B])))
    assert plan.userspace == {}
    assert plan.routes == (KernelRoute("dns", "default-dns-0", 4, "", 53, (A, B), 3),)


@pytest.mark.parametrize(("service", "flags", "why"), [
    (UDPBalancer("s", [A]), ("--accesslog",), "access logs are on"),
    (UDPBalancer("s", [("dns.example.com", 53)]), (), "named by DNS"),
    (UDPBalancer("s", [A, ("fd00::1", 53)]), (), "both IP families"),
    (UDPBalancer("s", []), (), "service s has no server"),
    (UDPWeightedBalancer("w", [(UDPBalancer("s", [A]), 0)]), (), "no server with a weight"),
])
def test_what_stays_in_userspace_says_why(service, flags: tuple[str, ...], why: str) -> None:
    plan = plan_udp(static(*flags), entry(service))
    assert plan.routes == ()
    assert why in plan.userspace["dns"]


def test_an_address_of_the_other_family_stays_in_userspace() -> None:
    st = static_from_flags(["--entryPoints.dns.address=[::1]:53/udp"])
    plan = plan_udp(st, entry(UDPBalancer("s", [A])))
    assert plan.userspace == {"dns": "the entry point listens on IPv6, the servers are IPv4"}
    st = static_from_flags(["--entryPoints.dns.address=127.0.0.1:53/udp"])
    assert plan_udp(st, entry(UDPBalancer("s", [A]))).routes[0].host == "127.0.0.1"


def test_unavailable_kernel_keeps_everything_in_userspace() -> None:
    plan = plan_udp(static(), entry(UDPBalancer("s", [A])), "--udpRelay=userspace")
    assert plan == UDPRelayPlan((), {"dns": "--udpRelay=userspace"})


def test_udp_relay_flag() -> None:
    assert static().udp_relay == "auto"
    assert static("--udpRelay=Kernel").udp_relay == "kernel"
    with pytest.raises(ConfigError, match="udpRelay: 'fast' is not one of auto, kernel, userspace"):
        static("--udpRelay=fast")
    assert replace(static(), access_log=AccessLogOptions()).access_log is not None


def script() -> str:
    routes = (KernelRoute("dns", "default-dns-0", 4, "", 53, (A, B, A), 3),
              KernelRoute("dns6", "default-dns6-0", 6, "fd00::53", 5353, (("fd00::2", 53),), 1))
    return render_nft("pyk3s-ingress-udp", UDPRelayPlan(routes))


def test_script_replaces_the_table_in_one_transaction() -> None:
    text = script()
    lines = text.splitlines()
    assert lines[:3] == ["table inet pyk3s-ingress-udp", "delete table inet pyk3s-ingress-udp",
                         "table inet pyk3s-ingress-udp {"]
    assert "  ct timeout udp4-3s { protocol udp; l3proto ip; policy = { unreplied: 3, replied: 3 }; }" in lines
    assert "  ct timeout udp6-1s { protocol udp; l3proto ip6; policy = { unreplied: 1, replied: 1 }; }" in lines
    dnat = ("    meta nfproto ipv4 udp dport 53 fib daddr type local ct mark set ct mark | 0x00004000 counter dnat ip "
            'to numgen inc mod 3 map { 0 : 10.0.0.1 . 53, 1 : 10.0.0.2 . 53, 2 : 10.0.0.1 . 53 } comment "dns: '
            'default-dns-0"')
    assert lines.count(dnat) == 2  # prerouting and output
    assert ('    ip6 daddr fd00::53 udp dport 5353 ct mark set ct mark | 0x00004000 counter dnat ip6 to numgen inc mod 1 '
            'map { 0 : [fd00::2] . 53 } comment "dns6: default-dns6-0"') in lines
    assert lines.count('    meta nfproto ipv4 udp dport 53 fib daddr type local ct state new ct timeout set "udp4-3s" '
                       'comment "dns: default-dns-0"') == 2
    assert f'    ct mark & {MARK:#010x} == {MARK:#010x} oifname != "lo" masquerade' in lines


def test_no_route_removes_the_table() -> None:
    assert render_nft("t", UDPRelayPlan()) == "table inet t\ndelete table inet t\n"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"),
                    reason="checking the script with nft needs root, nft and unshare")
def test_nft_accepts_the_script() -> None:
    res = subprocess.run(["unshare", "--net", "nft", "-f", "-"], input=script(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_udp_client_addresses_print_as_go_does() -> None:
    from pyk3s.addons.ingress.proxy.udp import client_addr

    assert client_addr(("::ffff:172.31.0.5", 4000, 0, 0)) == "172.31.0.5:4000"  # dual-stack socket, IPv4 client
    assert client_addr(("fd00::5", 4000, 0, 0)) == "[fd00::5]:4000"
    assert client_addr(("127.0.0.1", 53)) == "127.0.0.1:53"


ROUTE = """
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec: {ports: [{name: dns, port: 53, protocol: UDP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, namespace: default, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, port: 5353, protocol: UDP}]
endpoints: [{addresses: [10.42.0.7, 10.42.0.8], conditions: {ready: true}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {name: dns, namespace: default}
spec:
  entryPoints: [dns]
  routes:
  - services: [{name: dns, port: 53}]
"""


def test_each_udp_router_shows_its_relay_in_the_api() -> None:
    import yaml

    from pyk3s.addons.ingress.providers import build_config
    from pyk3s.addons.ingress.proxy.udp_kernel import KERNEL, UDPRelayView
    from pyk3s.addons.ingress.routing.compile import compile_config

    st = static("--providers.kubernetescrd", "--udpRelay=kernel")
    compiled = compile_config(build_config(st, list(yaml.safe_load_all(ROUTE))), st)
    view = UDPRelayView(st)
    view.unavailable = ""  # as where the kernel relay can run (root, nft)
    plan = view.update(compiled)
    assert plan.routes[0].slots == (("10.42.0.7", 5353), ("10.42.0.8", 5353))
    assert compiled.tcp.udp_routers["default-dns-0@kubernetescrd"]["relay"] == KERNEL
    view.fail("nftables refused the rules: Error: Could not process rule")  # told by the supervisor
    assert compiled.tcp.udp_routers["default-dns-0@kubernetescrd"]["relay"] == (
        "userspace: nftables refused the rules: Error: Could not process rule")
    st = static("--providers.kubernetescrd", "--udpRelay=userspace")
    compiled = compile_config(build_config(st, list(yaml.safe_load_all(ROUTE))), st)
    UDPRelayView(st).update(compiled)
    assert compiled.tcp.udp_routers["default-dns-0@kubernetescrd"]["relay"] == "userspace: --udpRelay=userspace"
