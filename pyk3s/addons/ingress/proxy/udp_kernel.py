"""UDP routers relayed by the kernel: nftables DNAT, one conntrack entry per client session.

A UDP entry point serves one router, and a UDP session is what conntrack already keeps: the datagrams
of one client address, both ways, until ``udp.timeout`` passes without any. So where it can, the
supervisor writes the entry point's router as nftables rules and no datagram reaches Python:

- a DNAT rule per entry point picks the server of each new session with ``numgen inc`` over slots laid
  out in the order of the service's weighted round robin (weights of nested weighted services
  multiplied out), in ``prerouting`` (remote clients) and ``output`` (clients on this host);
- a conntrack timeout policy sets ``unreplied`` and ``replied`` to the entry point's ``udp.timeout``
  (rounded up to a second), so a session ends when Traefik's would;
- each rule counts the sessions it opened (``nft list table inet pyk3s-ingress-udp``);
- the sessions it opened are masqueraded on the way out, so the server's answers come back through
  here and leave from the entry point's address, as Traefik's do.

Which entry points stay in userspace (``udp.py``), each said in the UDP router's ``relay`` field of
``/api/udp/routers``: all with ``--udpRelay=userspace``; all with ``auto`` (the default) unless the
ingress runs in a network namespace of its own (a pod), is root and finds ``nft``; one whose access
logs are on (a session's record needs its byte counts); one whose servers are named by DNS
(ExternalName), are of both IP families or of another family than its address, or that has a service
without servers. Clients of the other IP family than the servers' still reach the userspace relay,
which bridges families. When nftables refuses the rules the table is removed and every entry point
falls back to userspace, with the error logged and shown.

The table (``pyk3s-ingress-udp``, or ``pyk3s-ingress-udp-<pid>`` in the host's namespace) is replaced
in one transaction on every change and deleted when the ingress stops; sessions already open keep their
server until they time out, as in userspace.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from ..config.static import StaticConfig
from ..routing.tcp_services import UDPBalancer, UDPServiceHandler, UDPWeightedBalancer, WeightedRoundRobin

if TYPE_CHECKING:
    from ..routing.compile import Compiled
    from ..routing.tcp_table import UDPEntry

__all__ = ["KernelRoute", "UDPRelayPlan", "UDPRelayView", "KernelUDPRelay", "plan_udp", "render_nft", "leaf_shares", "slots_for",
           "kernel_unavailable", "MAX_SLOTS", "MARK"]

log = logging.getLogger("pyk3s.ingress")
MAX_SLOTS = 256  # numgen map entries per entry point; finer weights are rounded to this many slots
MARK = 0x00004000  # ct mark bit of the sessions these rules opened (masqueraded on the way out)
KERNEL = "kernel (nftables DNAT, conntrack sessions)"


@dataclass(frozen=True, slots=True)
class KernelRoute:
    """One entry point's router as DNAT rules."""

    entrypoint: str
    router: str
    family: int  # 4 or 6: the servers' (and the rules') IP family
    host: str  # the entry point's own address, '' for every local address
    port: int
    slots: tuple[tuple[str, int], ...]  # server per numgen value
    timeout: int  # seconds: the entry point's udp.timeout, rounded up


@dataclass(frozen=True, slots=True)
class UDPRelayPlan:
    routes: tuple[KernelRoute, ...] = ()
    userspace: Mapping[str, str] = field(default_factory=dict)  # entry point -> why it stays in userspace


class _NoKernel(Exception):
    pass


def leaf_shares(handler: UDPServiceHandler) -> dict[tuple[str, int], Fraction]:
    """The share of new sessions each server gets from a UDP service (Traefik's WRR, nested services
    multiplied out); raises ``_NoKernel`` for a service that has no server."""
    if isinstance(handler, UDPBalancer):
        if not handler.targets:
            raise _NoKernel(f"service {handler.name} has no server")
        out: dict[tuple[str, int], Fraction] = {}
        for t in handler.targets:
            out[t] = out.get(t, Fraction(0)) + Fraction(1, len(handler.targets))
        return out
    assert isinstance(handler, UDPWeightedBalancer)
    live = [(child, w) for child, w in handler.children if w > 0]
    total = sum(w for _, w in live)
    if not total:
        raise _NoKernel(f"service {handler.name} has no server with a weight")
    out = {}
    for child, w in live:
        for target, share in leaf_shares(child).items():
            out[target] = out.get(target, Fraction(0)) + share * Fraction(w, total)
    return out


def slots_for(shares: Mapping[tuple[str, int], Fraction], limit: int = MAX_SLOTS) -> tuple[tuple[str, int], ...]:
    """Slots for ``numgen inc mod len(slots)``: each server as often as its share, interleaved in WRR order."""
    denominator = math.lcm(*(s.denominator for s in shares.values()))
    weights = {t: int(s * denominator) for t, s in shares.items()}
    divisor = math.gcd(*weights.values())
    weights = {t: w // divisor for t, w in weights.items()}
    if sum(weights.values()) > limit:
        weights = {t: max(1, round(float(s) * limit)) for t, s in shares.items()}
    wrr = WeightedRoundRobin(sorted(weights.items()))
    return tuple(t for t in (wrr.next() for _ in range(sum(weights.values()))) if t is not None)


def _family(host: str) -> int:
    return ipaddress.ip_address(host).version


def plan_udp(static: StaticConfig, entries: Mapping[str, UDPEntry], unavailable: str = "") -> UDPRelayPlan:
    """Which UDP entry points the kernel relays (``unavailable``: why none can be)."""
    routes: list[KernelRoute] = []
    userspace: dict[str, str] = {}
    for name in sorted(entries):
        entry, ep = entries[name], static.entrypoints[name]
        try:
            if unavailable:
                raise _NoKernel(unavailable)
            if static.access_log is not None:
                raise _NoKernel("access logs are on (a session's record needs its byte counts)")
            shares = leaf_shares(entry.service)
            try:
                families = {_family(h) for h, _ in shares}
            except ValueError:
                raise _NoKernel("a server is named by DNS (ExternalName)") from None
            if len(families) > 1:
                raise _NoKernel("servers of both IP families")
            family = families.pop()
            host = ep.host if ep.host not in ("", "0.0.0.0", "::") else ""
            if host and _family(host) != family:
                raise _NoKernel(f"the entry point listens on IPv{_family(host)}, the servers are IPv{family}")
            routes.append(KernelRoute(name, entry.router, family, host, ep.port, slots_for(shares),
                                      max(1, math.ceil(ep.udp_timeout))))
        except _NoKernel as why:
            userspace[name] = str(why)
    return UDPRelayPlan(tuple(routes), userspace)


def _addr(family: int, host: str) -> str:
    return f"[{host}]" if family == 6 else host


def render_nft(table: str, plan: UDPRelayPlan) -> str:
    """The ``nft -f`` script that replaces ``table`` by the plan's rules in one transaction."""
    lines = [f"table inet {table}", f"delete table inet {table}"]
    if not plan.routes:
        return "\n".join(lines) + "\n"
    timeouts = sorted({(r.family, r.timeout) for r in plan.routes})
    lines.append(f"table inet {table} {{")
    for family, secs in timeouts:
        l3 = "ip" if family == 4 else "ip6"
        lines.append(f"  ct timeout udp{family}-{secs}s {{ protocol udp; l3proto {l3}; "
                     f"policy = {{ unreplied: {secs}, replied: {secs} }}; }}")
    dnat, timeout_rules = [], []
    for r in plan.routes:
        proto = "ip" if r.family == 4 else "ip6"
        match = (f"{proto} daddr {r.host} udp dport {r.port}" if r.host
                 else f"meta nfproto ipv{r.family} udp dport {r.port} fib daddr type local")
        servers = ", ".join(f"{i} : {_addr(r.family, h)} . {p}" for i, (h, p) in enumerate(r.slots))
        comment = f'comment "{r.entrypoint}: {r.router}"'
        dnat.append(f"    {match} ct mark set ct mark | {MARK:#010x} counter dnat {proto} to numgen inc mod {len(r.slots)} "
                    f"map {{ {servers} }} {comment}")
        timeout_rules.append(f'    {match} ct state new ct timeout set "udp{r.family}-{r.timeout}s" {comment}')
    for chain, hook, priority, rules in (("sessions_in", "prerouting", "dstnat", dnat),
                                         ("sessions_local", "output", "-100", dnat),
                                         ("timeouts_in", "prerouting", "mangle", timeout_rules),
                                         ("timeouts_local", "output", "mangle", timeout_rules)):
        kind = "nat" if chain.startswith("sessions") else "filter"
        lines += [f"  chain {chain} {{", f"    type {kind} hook {hook} priority {priority}; policy accept;", *rules,
                  "  }"]
    lines += ["  chain replies_via_here {", "    type nat hook postrouting priority srcnat; policy accept;",
              f'    ct mark & {MARK:#010x} == {MARK:#010x} oifname != "lo" masquerade', "  }", "}"]
    return "\n".join(lines) + "\n"


def _own_netns() -> bool:
    """Whether this process runs in a network namespace other than the host's initial one. The kernel
    registers ``net.core.netdev_max_backlog`` in the initial namespace only (and /proc/1's namespace is
    often not readable from a pod)."""
    return not os.path.exists("/proc/sys/net/core/netdev_max_backlog")


def kernel_unavailable(static: StaticConfig) -> str:
    """Why the kernel cannot relay this ingress's UDP routers ('' when it can)."""
    if static.udp_relay == "userspace":
        return "--udpRelay=userspace"
    if static.udp_relay == "auto" and not _own_netns():
        return "the ingress shares the host's network namespace (--udpRelay=kernel relays there too)"
    if os.geteuid() != 0:
        return "not running as root (nftables rules need it)"
    if shutil.which("nft") is None:
        return "nft is not installed"
    return ""


class UDPRelayView:
    """Each UDP router's ``relay`` in the API of one process (workers serve the API too); the plan is the
    same pure function of the configuration in every process, a refusal by nftables is told by the
    supervisor (:meth:`fail`)."""

    def __init__(self, static: StaticConfig) -> None:
        self.static = static
        self.unavailable = kernel_unavailable(static)
        self.failed = ""  # nftables refused the rules: everything stays in userspace
        self.compiled: Compiled | None = None

    def update(self, compiled: Compiled) -> UDPRelayPlan:
        self.compiled = compiled
        plan = plan_udp(self.static, compiled.tcp.udp, self.unavailable or self.failed)
        for route in plan.routes:
            compiled.tcp.udp_routers[route.router]["relay"] = KERNEL
        for ep, why in plan.userspace.items():
            compiled.tcp.udp_routers[compiled.tcp.udp[ep].router]["relay"] = f"userspace: {why}"
        return plan

    def fail(self, reason: str) -> None:
        self.failed = reason
        if self.compiled is not None:
            self.update(self.compiled)


class KernelUDPRelay(UDPRelayView):
    """The supervisor's nftables table for UDP routers, kept in step with every compiled configuration."""

    def __init__(self, static: StaticConfig, loop: asyncio.AbstractEventLoop,
                 on_failure: Callable[[str], None] | None = None) -> None:
        super().__init__(static)
        self.loop = loop
        self.on_failure = on_failure
        self.own_netns = _own_netns()
        self.table = "pyk3s-ingress-udp" if self.own_netns else f"pyk3s-ingress-udp-{os.getpid()}"
        self.applied = ""  # the script nft last accepted
        self.wanted = ""
        self.task: asyncio.Task[None] | None = None
        self.sysctls_done = False

    def update(self, compiled: Compiled) -> UDPRelayPlan:
        """Plan the compiled UDP routers, show each one's relay in the API, and apply the rules."""
        plan = super().update(compiled)
        if not self.unavailable:
            self.wanted = render_nft(self.table, plan)
            if self.wanted != self.applied and (self.task is None or self.task.done()):
                self.task = self.loop.create_task(self._apply())
        return plan

    async def _apply(self) -> None:
        while self.wanted != self.applied:
            script = self.wanted
            if "ct timeout" in script and self.own_netns:
                self._forwarding(ipv6="l3proto ip6" in script)
            err = await self._nft(script)
            if not err:
                self.applied = script
                continue
            log.error("ingress: nftables refused the UDP relay's rules, UDP routers are relayed in userspace: %s",
                      err)
            await self._nft(f"table inet {self.table}\ndelete table inet {self.table}\n")
            self.applied = self.wanted = ""
            self.fail(f"nftables refused the rules: {err}")
            if self.on_failure is not None:
                self.on_failure(self.failed)

    async def _nft(self, script: str) -> str:
        proc = await asyncio.create_subprocess_exec("nft", "-f", "-", stdin=subprocess.PIPE,
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = await proc.communicate(script.encode())
        return err.decode(errors="replace").strip() if proc.returncode else ""

    def _forwarding(self, ipv6: bool) -> None:
        """In the ingress's own namespace: forward what the rules send on, and send no ICMP redirects for it
        (the servers are reached through the interface the datagrams came in on)."""
        if self.sysctls_done and not ipv6:
            return
        self.sysctls_done = True
        settings = {"/proc/sys/net/ipv4/ip_forward": "1"}
        if ipv6:
            settings["/proc/sys/net/ipv6/conf/all/forwarding"] = "1"
        try:
            for dev in os.listdir("/proc/sys/net/ipv4/conf"):
                settings[f"/proc/sys/net/ipv4/conf/{dev}/send_redirects"] = "0"
        except OSError:
            pass
        for path, value in settings.items():
            try:
                with open(path, "w", encoding="ascii") as fh:
                    fh.write(value)
            except OSError as err:
                log.warning("ingress: UDP relay: setting %s: %s", path, err)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.applied and "ct timeout" in self.applied:
            subprocess.run(["nft", "delete", "table", "inet", self.table], capture_output=True, check=False)
