"""The kernel's CPU per new-connection packet through the policy table, without a cluster
(``bench/netpol.py --parts pathcost``).

Three network namespaces the script creates: a node holding the policy table, with a portless bridge
holding the pods' gateway address, and two pods wired to it as the agent wires them (routed veths in
the node's pod-link group, a /32 route per pod, permanent neighbours on both ends) with the addresses
the table gives the client and the server of the data path part. The client sends the same TCP SYN to the server's port
80 over and over from a raw socket; the server drops it before its own stack, so the node's
conntrack entry never sees a reply and every SYN is a new connection to the table: it crosses the
forward hook, the dispatch maps and both pods' group chains. The sender's CPU time (its system time
includes the node's forwarding and hooks, which run in its context as the packet is sent) per
packet is measured for the table with no policy, 1 policy and 1,000 policies over 500 pods (the
same objects the data path part creates), and those with one more policy opening 20 ports of the
server to every pod (10,000 elements in one peer set), in interleaved rounds, each starting at the next row. Load elsewhere on the machine
barely moves a CPU time; the result is the added cost of a new connection in nanoseconds.
"""

from __future__ import annotations

import re
import secrets
import statistics
import subprocess
import sys
import time
from typing import Any

SENDER = r"""
import socket, struct, sys, time
src, dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF
s_ip, d_ip = socket.inet_aton(src), socket.inet_aton(dst)
tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack("!H", csum(s_ip + d_ip + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, s_ip, d_ip)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
pkt = ip + tcp
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
addr = (dst, 0)
for _ in range(2000):
    sock.sendto(pkt, addr)
t = time.process_time()
for _ in range(count):
    sock.sendto(pkt, addr)
print((time.process_time() - t) / count * 1e9)
"""



def _run(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res


def _tables(bridge: str, name: str) -> dict[str, str]:
    """Row -> the full table text for the data path part's objects, the measured pods on this node."""
    from netpol import NAMESPACES, phantom_pods, policies, real_pods

    from pyk3s.agent.netpol.render import NetpolTable, full_script
    from pyk3s.netpol import AllowIndex, namespace_info, parse_policy, pod_info

    table = NetpolTable(name, bridge)
    objs: list[Any] = []
    for j, p in enumerate(real_pods()):
        p["metadata"]["uid"] = f"bench-{j}"
        p["spec"]["nodeName"] = "bench-node"
        p["status"] = {"phase": "Running", "podIP": f"10.42.0.{j + 2}"}
        objs.append(p)
    for p, ip in phantom_pods(497):
        p["status"] = {"phase": "Running", "podIP": ip}
        objs.append(p)
    every = policies(1000)
    # the server opens 20 ports to every pod of the cluster as well: 10,000 elements in its peer set
    wide = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": "bench-0", "name": "wide"},
            "spec": {"podSelector": {"matchLabels": {"app": "srv"}},
                     "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 7000 + i} for i in range(20)]}]}}
    out = {}
    for row, pols in (("none", []), ("one", every[:1]), ("thousand", every), ("wide", [*every, wide])):
        index = AllowIndex("bench-node")
        for i, ns in enumerate(NAMESPACES):
            index.set_namespace(namespace_info({"metadata": {"name": ns, "labels": {"team": f"t{i % 3}"}}}))
        for p in objs:
            info = pod_info(p)
            assert info is not None
            index.set_pod(info)
        for q in pols:
            index.set_policy(parse_policy(q))
        out[row] = full_script(table, index.state())
    return out


def run(count: int, rounds: int, log: Any, make_tables: Any = None) -> dict[str, list[float]]:
    """Row -> ns per packet, one per round. ``make_tables(bridge, table name)`` gives row -> table text
    (default: the data path part's rows)."""
    tag = secrets.token_hex(3)
    node, cli, srv = f"pkpcn{tag}", f"pkpcc{tag}", f"pkpcs{tag}"
    bridge = f"pkbpc{tag}"
    tables = (make_tables or _tables)(bridge, f"pyk3s-netpol-pc{tag}")
    rows = list(tables)
    made: list[str] = []
    try:
        for ns in (node, cli, srv):
            _run("ip", "netns", "add", ns)
            made.append(ns)
        from pyk3s.agent.cni.bridge import pod_link_group

        _run("ip", "-n", node, "link", "add", bridge, "type", "bridge")
        _run("ip", "-n", node, "addr", "add", "10.42.0.1/24", "dev", bridge)
        _run("ip", "-n", node, "link", "set", bridge, "up")
        _run("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, (ns, port, ip) in enumerate(((srv, f"pkpcs{tag}", "10.42.0.2"), (cli, f"pkpcc{tag}", "10.42.0.3"))):
            node_mac, pod_mac = f"0e:00:00:00:0{i}:01", f"0e:00:00:00:0{i}:02"
            _run("ip", "-n", node, "link", "add", port, "address", node_mac, "group", str(pod_link_group(bridge)),
                 "type", "veth", "peer", "name", "eth0", "address", pod_mac, "netns", ns)
            _run("ip", "-n", node, "link", "set", port, "up")
            _run("ip", "-n", node, "route", "add", f"{ip}/32", "dev", port, "src", "10.42.0.1")
            _run("ip", "-n", node, "neigh", "replace", ip, "lladdr", pod_mac, "dev", port, "nud", "permanent")
            _run("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "neigh", "replace", "10.42.0.1", "lladdr", node_mac, "dev", "eth0", "nud", "permanent")
            _run("ip", "-n", ns, "route", "add", "default", "via", "10.42.0.1", "dev", "eth0", "onlink")
        # the server never answers: its conntrack-free drop keeps every SYN a new connection on the node
        _run("ip", "netns", "exec", srv, "nft", "-f", "-", input="table inet pkpcdrop { chain pre { "
             "type filter hook prerouting priority -500; policy drop; }; }\n")
        out: dict[str, list[float]] = {r: [] for r in rows}
        for n in range(rounds):
            for row in rows[n % len(rows):] + rows[:n % len(rows)]:
                _run("ip", "netns", "exec", node, "nft", "-f", "-", input=tables[row])
                res = _run("ip", "netns", "exec", cli, sys.executable, "-c", SENDER, "10.42.0.3", "10.42.0.2",
                           str(count))
                out[row].append(float(res.stdout))
            log(f"pathcost round {n + 1}/{rounds}: " + ", ".join(f"{r} {out[r][-1]:,.0f} ns" for r in rows))
        counted = _run("ip", "netns", "exec", node, "nft", "list", "chain", "inet", f"pyk3s-netpol-pc{tag}",
                       "deny").stdout
        if any(int(n) for n in re.findall(r"packets (\d+)", counted)):
            raise RuntimeError(f"pathcost: the client's SYNs were denied, the table is not the one measured:\n{counted}")
        return out
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        time.sleep(0.1)


def report(out: dict[str, list[float]]) -> str:
    base = statistics.median(out["none"])
    lines = ["| policies | kernel + send CPU per new-connection packet (ns) | added by policies |",
             "|---|---|---|"]
    for row, label in (("none", "none"), ("one", "1"), ("thousand", "1,000 over 500 pods"),
                       ("wide", "1,000, and 20 ports of the server open to all 500 pods")):
        med = statistics.median(out[row])
        lines.append(f"| {label} | {med:,.0f} (min {min(out[row]):,.0f}, max {max(out[row]):,.0f}) | "
                     f"{med - base:+,.0f} ns |")
    return "\n".join(lines)
