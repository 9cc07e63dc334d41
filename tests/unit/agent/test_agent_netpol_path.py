"""What one packet costs in the rendered policy table, read from the table's text with a small walker
that knows each rule shape the renderer writes (an unknown shape fails the test, so a rule added to
the per-packet path is seen here): a reply meets one rule; a new connection a fixed number of rules
and lookups, the same with 1 policy and with 1,000 over 500 pods; exact peer pods are found in hash
sets; and the walker's verdicts equal the allow index's."""

from __future__ import annotations

import ipaddress
import random
import re
from dataclasses import dataclass, field

import pytest

from pyk3s.agent.cni.bridge import pod_link_group
from pyk3s.agent.netpol.render import NetpolTable, full_script
from pyk3s.netpol import AllowIndex, namespace_info, parse_policy, pod_info

BRIDGE = "pkbpath"
TABLE = NetpolTable("pyk3s-netpol-path", BRIDGE)
PODS = pod_link_group(BRIDGE)   # the interface group of this node's pod veths
OTHER = 0                       # any other link (the VXLAN device, the underlay): the default group
PROTO = {"tcp": 6, "udp": 17, "sctp": 132}
NAMESPACES = [f"ns{i}" for i in range(10)]


# -- the cluster: 500 pods over 10 namespaces (3 on this node), N policies of every kind ----------------

def _pod(i: int, ns: str, name: str, labels: dict, node: str, ip: str) -> dict:
    return {"metadata": {"namespace": ns, "name": name, "labels": labels, "uid": f"u{i}"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def _pods() -> list[dict]:
    local = [_pod(0, "ns0", "srv", {"app": "srv", "tier": "t0"}, "n1", "10.42.0.2"),
             _pod(1, "ns1", "cli", {"app": "cli", "tier": "t1"}, "n1", "10.42.0.3"),
             _pod(2, "ns2", "other", {"app": "other", "tier": "t2"}, "n1", "10.42.0.4")]
    return local + [_pod(i + 3, NAMESPACES[i % 10], f"p{i}", {"app": f"a{i % 50}", "tier": f"t{i % 5}"},
                         f"n{2 + i % 9}", f"10.42.{1 + i // 250}.{i % 250 + 1}") for i in range(497)]


def _policies(count: int) -> list[dict]:
    def np(ns: str, name: str, spec: dict) -> dict:
        return {"metadata": {"namespace": ns, "name": name}, "spec": spec}
    out = [np("ns0", "srv-from-cli", {"podSelector": {"matchLabels": {"app": "srv"}}, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ns1"}},
                   "podSelector": {"matchLabels": {"app": "cli"}}}], "ports": [{"port": "http"}, {"port": 5201}]}]})]
    for k in range(1, count):
        ns = NAMESPACES[k % 10]
        sel = ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["t0", "t1", f"t{k % 5}"]}]}
               if ns in ("ns0", "ns1") else {"matchLabels": {"app": f"a{k % 50}"}})
        spec: dict = {"podSelector": sel, "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"team": f"t{k % 3}"}},
                       "podSelector": {"matchLabels": {"app": f"a{(k * 7) % 50}"}}},
                      {"podSelector": {"matchLabels": {"tier": f"t{k % 5}"}}}],
             "ports": [{"port": "http"}, {"port": 9000 + k % 100, "endPort": 9050 + k % 100}]},
            {"from": [{"ipBlock": {"cidr": f"172.{16 + k % 16}.0.0/16", "except": [f"172.{16 + k % 16}.{k % 256}.0/24"]}}],
             "ports": [{"port": 443}, {"port": 53, "protocol": "UDP"}]}]}
        if k % 4 == 0:
            spec["egress"] = [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]},
                              {"to": [{"podSelector": {"matchLabels": {"app": f"a{k % 50}"}}}]}]
        out.append(np(ns, f"p{k:04d}", spec))
    return out


def _index(count: int) -> AllowIndex:
    index = AllowIndex("n1")
    for i, ns in enumerate(NAMESPACES):
        index.set_namespace(namespace_info({"metadata": {"name": ns, "labels": {"team": f"t{i % 3}"}}}))
    for p in _pods():
        index.set_pod(pod_info(p))  # type: ignore[arg-type]
    for q in _policies(count):
        index.set_policy(parse_policy(q))
    return index


# -- the walker -----------------------------------------------------------------------------------------

@dataclass
class NftSet:
    fields: list[str]
    interval: bool
    elements: list[list[tuple[int, int]]]  # per element, per field: (low, high)

    def has(self, key: list[int]) -> bool:
        return any(all(lo <= v <= hi for v, (lo, hi) in zip(key, e, strict=True)) for e in self.elements)


@dataclass
class Table:
    sets: dict[str, NftSet]
    maps: dict[str, dict[int, str]]
    chains: dict[str, list[str]]
    hooks: dict[str, str]  # base chain -> hook


@dataclass
class Packet:
    saddr: str
    daddr: str
    proto: int
    dport: int
    iif: int = PODS
    oif: int = PODS
    ct: str = "new"


@dataclass
class Cost:
    rules: int = 0
    lookups: int = 0
    interval_lookups: int = 0
    chains: list[str] = field(default_factory=list)


def _field_range(kind: str, text: str) -> tuple[int, int]:
    if kind in ("ipv4_addr", "ipv6_addr"):
        if "/" in text:
            net = ipaddress.ip_network(text)
            return int(net.network_address), int(net.broadcast_address)
        lo, _, hi = text.partition("-")
        return int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi or lo))
    lo, _, hi = text.partition("-")
    return PROTO[lo] if lo in PROTO else int(lo), PROTO[hi or lo] if (hi or lo) in PROTO else int(hi or lo)


def parse(text: str) -> Table:
    sets: dict[str, NftSet] = {}
    for m in re.finditer(r"^  set (\S+) \{ type ([^;]+);( flags interval;)?(?: elements = \{ (.*?) \};)? \}$",
                         text, re.M | re.S):
        kinds = m.group(2).split(" . ")
        elems = [[_field_range(k, v) for k, v in zip(kinds, e.strip().split(" . "), strict=True)]
                 for e in (m.group(4) or "").split(",") if e.strip()]
        sets[m.group(1)] = NftSet(kinds, bool(m.group(3)), elems)
    maps: dict[str, dict[int, str]] = {}
    for m in re.finditer(r"^  map (\S+) \{ type \S+ : verdict;(?: elements = \{ (.*?) \};)? \}$", text, re.M | re.S):
        maps[m.group(1)] = {int(ipaddress.ip_address(k.strip())): v.strip()
                            for k, _, v in (e.partition(" : ") for e in (m.group(2) or "").split(",") if e.strip())}
    chains: dict[str, list[str]] = {}
    hooks: dict[str, str] = {}
    for m in re.finditer(r"^  chain (\S+) \{(.*?)\n  \}$", text, re.M | re.S):
        head, _, body = m.group(2).partition("\n")
        hook = re.search(r"hook (\w+) priority", head)
        if hook:
            hooks[m.group(1)] = hook.group(1)
        chains[m.group(1)] = [ln.strip() for ln in body.splitlines() if ln.strip()]
    return Table(sets, maps, chains, hooks)


def _addr(p: Packet, which: str) -> int:
    return int(ipaddress.ip_address(p.saddr if which == "saddr" else p.daddr))


def walk(t: Table, chain: str, p: Packet, cost: Cost) -> str:
    """The verdict of ``chain`` for ``p``: accept, deny, or continue (fell off its end / returned)."""
    fam = 6 if ":" in p.saddr else 4
    cost.chains.append(chain)
    for rule in t.chains[chain]:
        cost.rules += 1
        verdict: str | None = None
        if rule == "ct state established,related accept":
            verdict = "accept" if p.ct in ("established", "related") else None
        elif rule.startswith("icmpv6 type {"):
            verdict = None  # neighbour discovery: the packets judged here are TCP, UDP or ICMP echo
        elif m := re.fullmatch(r"(iif|oif)group (\S+) jump (\S+)", rule):
            if (p.iif if m.group(1) == "iif" else p.oif) == int(m.group(2), 0):
                verdict = walk(t, m.group(3), p, cost)
                verdict = None if verdict == "continue" else verdict
        elif m := re.fullmatch(r"(ip6?) saddr \. \1 daddr @(\S+) accept", rule):
            if (m.group(1) == "ip6") == (fam == 6):
                cost.lookups += 1
                verdict = "accept" if t.sets[m.group(2)].has([_addr(p, "saddr"), _addr(p, "daddr")]) else None
        elif m := re.fullmatch(r"(ip6?) (saddr|daddr) vmap @(\S+)", rule):
            if (m.group(1) == "ip6") == (fam == 6):
                cost.lookups += 1
                target = t.maps[m.group(3)].get(_addr(p, m.group(2)))
                if target is not None:
                    jump = re.fullmatch(r"jump (\S+)", target)
                    assert jump, target
                    verdict = walk(t, jump.group(1), p, cost)
                    verdict = None if verdict == "continue" else verdict
        elif m := re.fullmatch(r"(ip6?) (saddr|daddr)( \. meta l4proto \. th dport)? @(\S+) (accept|return)", rule):
            if (m.group(1) == "ip6") == (fam == 6):
                s = t.sets[m.group(4)]
                cost.lookups += 1
                cost.interval_lookups += s.interval
                key = [_addr(p, m.group(2))] + ([p.proto, p.dport] if m.group(3) else [])
                if s.has(key):
                    verdict = "accept" if m.group(5) == "accept" else "continue"
        elif rule == "goto deny":
            return "deny"
        else:
            raise AssertionError(f"rule shape the walker does not know (is it on the per-packet path?): {rule!r}")
        if verdict is not None:
            return verdict
    return "continue"


def forward(t: Table, p: Packet) -> tuple[str, Cost]:
    cost = Cost()
    verdict = walk(t, "forward", p, cost)
    return ("accept" if verdict == "continue" else verdict), cost


@pytest.fixture(scope="module")
def tables() -> dict[int, tuple[AllowIndex, Table, str]]:
    out = {}
    for n in (1, 1000):
        index = _index(n)
        text = full_script(TABLE, index.state())
        out[n] = (index, parse(text), text)
    return out


def _packets(index: AllowIndex, rnd: random.Random, count: int) -> list[Packet]:
    local = ["10.42.0.2", "10.42.0.3", "10.42.0.4"]
    remote = [p for p in index.owner if p not in local]
    ports = [(6, 80), (6, 5201), (6, 443), (17, 53), (6, 9040), (6, 9149), (17, 9040), (6, 22)]
    out = []
    for _ in range(count):
        proto, port = rnd.choice(ports)
        src, dst = rnd.choice(local + remote[:40]), rnd.choice(local)
        if rnd.random() < 0.3:
            src, dst = dst, rnd.choice([*remote[:40], "172.17.3.9", "172.20.9.1"])
        out.append(Packet(src, dst, proto, port, iif=PODS if src in local else OTHER,
                          oif=PODS if dst in local else OTHER))
    return out


def test_chains_do_not_grow_with_the_number_of_policies(tables: dict) -> None:
    one, many = tables[1][1], tables[1000][1]
    longest = {n: max(len(r) for r in t.chains.values()) for n, t in ((1, one), (1000, many))}
    assert longest[1] == longest[1000] <= 9
    for t in (one, many):
        for name, rules in t.chains.items():
            assert not any(w in r for r in rules for w in ("log", "notrack", "ct mark", "meta mark")), name
            if name != "deny":
                assert not any("counter" in r for r in rules), f"{name} counts accepted packets"


@pytest.mark.parametrize("hook_chain", ["forward", "input"])
def test_a_reply_meets_one_rule(tables: dict, hook_chain: str) -> None:
    for n in (1, 1000):
        t = tables[n][1]
        assert t.hooks[hook_chain] == hook_chain
        assert t.chains[hook_chain][0] == "ct state established,related accept"
        cost = Cost()
        assert walk(t, hook_chain, Packet("10.42.0.3", "10.42.0.2", 6, 80, ct="established"), cost) == "accept"
        assert cost.rules == 1 and cost.lookups == 0
    # the hooks run after conntrack (-200) has seen the packet, so ``ct state`` is known
    text = tables[1000][2]
    assert re.findall(r"hook (\w+) priority (-?\d+)", text) == [("forward", "10"), ("input", "10")]


def test_a_new_connection_costs_the_same_with_1000_policies(tables: dict) -> None:
    # the client reaches the server's port through both sides' groups: the same rules and lookups
    got = {}
    for n in (1, 1000):
        verdict, cost = forward(tables[n][1], Packet("10.42.0.3", "10.42.0.2", 6, 80))
        got[n] = (verdict, cost.rules, cost.lookups, cost.interval_lookups)
    assert got[1] == got[1000] and got[1][0] == "accept"
    assert got[1][3] == 0, "a pod allowed an exact port is found in hash sets"
    # any new connection: at most the fixed path (forward, both dispatch chains, both group chains)
    many = tables[1000][1]
    bound = sum(len(many.chains[c]) for c in ("forward", "egress", "ingress")) + 2 * 9
    rnd = random.Random(7)
    for p in _packets(tables[1000][0], rnd, 400):
        _verdict, cost = forward(many, p)
        assert cost.rules <= bound and cost.lookups <= 2 * 2 + 2 * 4, (p, cost)


def test_exact_pod_elements_are_in_hash_sets(tables: dict) -> None:
    t = tables[1000][1]
    for name, s in t.sets.items():
        if name.endswith(("-a4", "-p4", "-a6", "-p6")):
            assert not s.interval
            assert all(lo == hi for e in s.elements for lo, hi in e), name
        if name.endswith(("-r4", "-r6")):
            assert all(e[2][0] != e[2][1] for e in s.elements), f"{name}: a single port belongs in the hash set"


@pytest.mark.parametrize("n", [1, 1000])
def test_the_table_judges_as_the_index(tables: dict, n: int) -> None:
    index, t, _text = tables[n]
    rnd = random.Random(n)
    verdicts = set()
    for p in _packets(index, rnd, 600):
        verdict, _cost = forward(t, p)
        assert (verdict == "accept") == index.allows(p.saddr, p.daddr, p.proto, p.dport), p
        verdicts.add(verdict)
    assert verdicts == {"accept", "deny"}


def test_the_service_proxy_lets_a_reply_through_with_one_rule() -> None:
    """The other table a pod's packet crosses: its filter hooks look at new connections only, and its
    nat hooks see only a connection's first packet (the kernel's nat semantics)."""
    from pyk3s.agent.proxy.compile import ProxyConfig, compile_ruleset

    svc = {"metadata": {"namespace": "default", "name": "web"},
           "spec": {"type": "NodePort", "clusterIP": "10.43.0.5", "ports": [{"port": 80, "nodePort": 30080}]}}
    eps = {"metadata": {"namespace": "default", "name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4", "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
           "endpoints": [{"addresses": ["10.42.0.5"]}]}
    text = compile_ruleset(ProxyConfig("n1", table="pyk3s-path"), [svc], [eps])
    base = re.findall(r"chain (\S+) \{ type (\w+) hook (\w+) priority (-?\d+);[^\n]*\n    ([^\n]*)", text)
    assert {hook for _n, _t, hook, _p, _r in base} >= {"prerouting", "input", "forward", "output", "postrouting"}
    for name, kind, _hook, _prio, first in base:
        assert kind == "nat" or first.startswith("ct state new "), f"{name}: a reply meets {first!r}"
