"""The allow index as nftables text: a whole table for a full load, or the commands for one delta
(pure, no I/O). Both go to ``nft -f`` as one transaction.

Table ``inet <table>`` (one per node and bridge):

* ``forward`` (forward hook, priority 10, after conntrack) passes replies of accepted connections
  first (``ct state established,related``: the one rule every packet after a connection's first
  meets) and IPv6 neighbour discovery, then judges a new connection's egress (packets arriving from
  one of the node's pod links: the interface group of its routed pod veths) and its ingress (packets
  leaving through one), same-node pod-to-pod traffic included (it is routed, so it meets both);
  ``input`` (input hook) judges the
  egress of pods' packets to the node itself. Packets the node sends (output hook) are never judged,
  so a node always reaches its own pods. Service traffic arrives DNATed (nat prerouting runs first),
  so it is judged by its real destination pod.
* ``egress``/``ingress``: a pod's packets to itself pass (``self4``: hairpin through a Service), then
  ``out4``/``in4`` map an isolated local pod's address to its group's chain. Unmapped addresses are
  not isolated.
* a group chain asks, in this order, whether the peer (``saddr`` for ingress, ``daddr`` for egress)
  is a pod allowed every port (``-a``: a hash set of addresses), a pod allowed this protocol and port
  (``-p``: a hash set of ``addr . l4proto . port``), a pod inside one of its port ranges or
  protocol-wide ports (``-r``: an interval set, ``endPort`` ranges and ports without a number), or an
  address inside a range with the port (``-c``: an interval set, ipBlocks and "any peer"). An egress
  group then returns (the ingress side is judged next), an ingress group accepts; otherwise it goes to
  ``deny``: a TCP reset, or ICMP administratively prohibited, so a denied connection fails at once.

What a packet costs does not grow with the number of policies: a new connection meets a fixed
number of rules (the group chains have the same rules whatever their policies) and each rule one
lookup. Exact pod elements live in hash sets (O(1) whatever their size); interval sets (``pipapo``
for concatenations, whose lookup cost grows with their element count) hold only port ranges and
address ranges the group's own rules name. Nothing counts, logs or marks an accepted packet.

In ``-c`` a range allowed every protocol is ``0-255 . 0-65535`` (ICMP included: ``th dport`` then reads
two bytes of the ICMP header, which the full range accepts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pyk3s.agent.cni.bridge import pod_link_group
from pyk3s.netpol.index import Delta, Group, IndexState
from pyk3s.netpol.model import EGRESS, INGRESS
from pyk3s.netpol.ports import PROTOCOL_NAMES, PortSet
from pyk3s.netpol.ranges import AddrRange, range_text

__all__ = ["NetpolTable", "delta_script", "full_script"]

FAMILIES = (4, 6)
_ADDR_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
_IP = {4: "ip", 6: "ip6"}
_MAP = {INGRESS: "in", EGRESS: "out"}
# IPv6 needs these to work at all (addresses, neighbours, routers, multicast listeners): never judged
_NDP = ("icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
        "nd-redirect, mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } accept")


@dataclass(frozen=True, slots=True)
class NetpolTable:
    name: str
    bridge: str
    family: str = "inet"

    @property
    def ref(self) -> str:
        return f"{self.family} {self.name}"


def _family(ip: str) -> int:
    return 6 if ":" in ip else 4


def _port_keys(ports: PortSet) -> list[str]:
    if ports.any:
        return ["0-255 . 0-65535"]
    out = []
    for proto, intervals in ports.by_proto:
        name = PROTOCOL_NAMES.get(proto, str(proto)).lower()
        for lo, hi in intervals:
            out.append(f"{name} . {lo}" if lo == hi else f"{name} . {lo}-{hi}")
    return out


def pod_elements(ip: str, ports: PortSet) -> dict[str, list[str]]:
    """Set kind (``a``, ``p``, ``r``) -> the elements of one peer pod's address and ports."""
    if ports.any:
        return {"a": [ip]}
    out: dict[str, list[str]] = {}
    for proto, intervals in ports.by_proto:
        name = PROTOCOL_NAMES.get(proto, str(proto)).lower()
        for lo, hi in intervals:
            if lo == hi:
                out.setdefault("p", []).append(f"{ip} . {name} . {lo}")
            else:
                out.setdefault("r", []).append(f"{ip} . {name} . {lo}-{hi}")
    return out


def range_elements(r: AddrRange, ports: PortSet) -> list[str]:
    text = range_text(r)
    return [f"{text} . {k}" for k in _port_keys(ports)]


# set kind -> (key type after the address, interval set); the order is the group chain's rule order
_KINDS: dict[str, tuple[str, bool]] = {
    "a": ("", False),
    "p": (" . inet_proto . inet_service", False),
    "r": (" . inet_proto . inet_service", True),
    "c": (" . inet_proto . inet_service", True),
}
_KEY = {"a": "", "p": " . meta l4proto . th dport", "r": " . meta l4proto . th dport",
        "c": " . meta l4proto . th dport"}


def _set_decl(name: str, kind: str, fam: int, elems: Iterable[str] = ()) -> str:
    rest, interval = _KINDS[kind]
    body = _elements(elems)
    return (f"set {name} {{ type {_ADDR_TYPE[fam]}{rest}; " + ("flags interval; " if interval else "")
            + (f"elements = {{ {body} }}; " if body else "") + "}")


def _elements(items: Iterable[str]) -> str:
    return ",\n      ".join(items)


def _set_names(gid: str) -> list[tuple[str, str, int]]:
    """(name, kind, family) of a group's sets, in the group chain's order."""
    return [(f"{gid}-{kind}{f}", kind, f) for f in FAMILIES for kind in _KINDS]


def _group_sets(group: Group) -> dict[str, list[str]]:
    """Set name -> elements for one group."""
    out: dict[str, list[str]] = {name: [] for name, _kind, _f in _set_names(group.gid)}
    for ip, ports in sorted(group.pods.items()):
        for kind, elems in pod_elements(ip, ports).items():
            out[f"{group.gid}-{kind}{_family(ip)}"] += elems
    for r, ports in group.ranges:
        out[f"{group.gid}-c{r.family}"] += range_elements(r, ports)
    return out


def _group_rules(group: Group) -> list[str]:
    field, verdict = ("saddr", "accept") if group.direction == INGRESS else ("daddr", "return")
    rules = [f"{_IP[f]} {field}{_KEY[kind]} @{name} {verdict}" for name, kind, f in _set_names(group.gid)]
    rules.append("goto deny")
    return rules


def _dispatch_elements(dispatch: Mapping[str, str], fam: int) -> list[str]:
    return [f"{ip} : jump {gid}" for ip, gid in sorted(dispatch.items()) if _family(ip) == fam]


def _self_elements(local: Iterable[str], fam: int) -> list[str]:
    return [f"{ip} . {ip}" for ip in sorted(local) if _family(ip) == fam]


def full_script(table: NetpolTable, state: IndexState, *, deny_only: bool = False) -> str:
    """Create (or atomically replace) the whole table. ``deny_only`` (the kernel refused the sets):
    every isolated pod accepts and sends nothing but replies, so no policy is left open."""
    lines = [f"table {table.ref}", f"delete table {table.ref}", f"table {table.ref} {{"]
    for f in FAMILIES:
        body = _elements(_self_elements(state.local, f))
        lines.append(f"  set self{f} {{ type {_ADDR_TYPE[f]} . {_ADDR_TYPE[f]}; "
                     + (f"elements = {{ {body} }}; " if body else "") + "}")
    lines.append("  chain deny {\n    counter meta l4proto tcp reject with tcp reset\n"
                 "    counter reject with icmpx admin-prohibited\n  }")
    for gid, group in sorted(state.groups.items()):
        if deny_only:
            lines.append(f"  chain {gid} {{\n    goto deny\n  }}")
            continue
        sets = _group_sets(group)
        for name, kind, f in _set_names(gid):
            lines.append(f"  {_set_decl(name, kind, f, sets[name])}")
        body_rules = "".join(f"    {r}\n" for r in _group_rules(group))
        lines.append(f"  chain {gid} {{\n{body_rules}  }}")
    for d in (INGRESS, EGRESS):
        for f in FAMILIES:
            body = _elements(_dispatch_elements(state.dispatch.get(d, {}), f))
            lines.append(f"  map {_MAP[d]}{f} {{ type {_ADDR_TYPE[f]} : verdict; "
                         + (f"elements = {{ {body} }}; " if body else "") + "}")
    for d, field in ((INGRESS, "daddr"), (EGRESS, "saddr")):
        rules = [f"{_IP[f]} saddr . {_IP[f]} daddr @self{f} accept" for f in FAMILIES]
        rules += [f"{_IP[f]} {field} vmap @{_MAP[d]}{f}" for f in FAMILIES]
        lines.append(f"  chain {d.lower()} {{\n" + "".join(f"    {r}\n" for r in rules) + "  }")
    links = f"{pod_link_group(table.bridge):#x}"
    lines.append(f"  chain forward {{ type filter hook forward priority 10; policy accept;\n"
                 f"    ct state established,related accept\n    {_NDP}\n"
                 f"    iifgroup {links} jump egress\n    oifgroup {links} jump ingress\n  }}")
    lines.append(f"  chain input {{ type filter hook input priority 10; policy accept;\n"
                 f"    ct state established,related accept\n    {_NDP}\n    iifgroup {links} jump egress\n  }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def delta_script(table: NetpolTable, delta: Delta, old_groups: Mapping[str, Group] | None = None) -> str:
    """The commands that turn the kernel's table into the index's current state (one transaction).

    Order matters inside the transaction: new chains and sets exist before anything points at them,
    elements leave a set before overlapping ones enter it, and a group's chain and sets go only after
    the dispatch maps stopped naming it.
    """
    t = table.ref
    out: list[str] = []
    for gid, group in sorted(delta.new_groups.items()):
        out.append(f"add chain {t} {gid}")
        sets = _group_sets(group)
        for name, kind, f in _set_names(gid):
            out.append(f"add {_set_decl(name, kind, f)}".replace("add set ", f"add set {t} ", 1))
            if sets[name]:
                out.append(f"add element {t} {name} {{ {_elements(sets[name])} }}")
        out += [f"add rule {t} {gid} {r}" for r in _group_rules(group)]
    for gid, gd in sorted(delta.groups.items()):
        removed: dict[str, list[str]] = {}
        added: dict[str, list[str]] = {}
        for ip, ports in gd.removed.items():
            for kind, elems in pod_elements(ip, ports).items():
                removed.setdefault(f"{gid}-{kind}{_family(ip)}", []).extend(elems)
        for ip, ports in gd.added.items():
            for kind, elems in pod_elements(ip, ports).items():
                added.setdefault(f"{gid}-{kind}{_family(ip)}", []).extend(elems)
        out += [f"delete element {t} {name} {{ {_elements(sorted(e))} }}" for name, e in sorted(removed.items())]
        out += [f"add element {t} {name} {{ {_elements(sorted(e))} }}" for name, e in sorted(added.items())]
        if gd.ranges is not None:
            for f in FAMILIES:
                out.append(f"flush set {t} {gid}-c{f}")
                elems = [e for r, ports in gd.ranges if r.family == f for e in range_elements(r, ports)]
                if elems:
                    out.append(f"add element {t} {gid}-c{f} {{ {_elements(elems)} }}")
    for d in (INGRESS, EGRESS):
        for f in FAMILIES:
            gone = [ip for ip in sorted(delta.dispatch_removed.get(d, ())) if _family(ip) == f]
            if gone:
                out.append(f"delete element {t} {_MAP[d]}{f} {{ {', '.join(gone)} }}")
            new = _dispatch_elements(delta.dispatch_added.get(d, {}), f)
            if new:
                out.append(f"add element {t} {_MAP[d]}{f} {{ {', '.join(new)} }}")
    for f in FAMILIES:
        gone = _self_elements(delta.local_removed, f)
        if gone:
            out.append(f"delete element {t} self{f} {{ {', '.join(gone)} }}")
        new = _self_elements(delta.local_added, f)
        if new:
            out.append(f"add element {t} self{f} {{ {', '.join(new)} }}")
    for gid in sorted(delta.removed_groups):
        out.append(f"delete chain {t} {gid}")
        out += [f"delete set {t} {name}" for name, _kind, _f in _set_names(gid)]
    return "\n".join(out) + ("\n" if out else "")
