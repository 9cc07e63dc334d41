"""`pyk3s dns explain <name> [type] [--kubeconfig F] [--corefile F] [--query-upstream]`: which plugin
answers and why.

Builds the same plugin chains as the cluster's DNS: the Corefile, NodeHosts and coredns-custom files are
read from the ``coredns`` ConfigMaps in kube-system (K3s's default Corefile if there are none, or
--corefile), syncs the kubernetes plugin from the API, runs one query through the slow path with
tracing on, and prints each plugin's note (the object that answered, or why the answer is
NXDOMAIN/NODATA) and the reply. ``forward`` only says which upstream it would ask: explain sends
nothing to upstream resolvers unless --query-upstream is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import dns.message
import dns.rcode
import dns.rdatatype

from .config import DnsConfig, read_config
from .core import DnsCore, Routing
from .errors import CorefileError
from .httpd import Route
from .metrics import DnsMetrics

if TYPE_CHECKING:
    from pyk3s.client import Client

    from .runtime import ClientFactory

__all__ = ["K3S_COREFILE", "explain", "main", "write_corefile"]

# once the plugins have started, how much longer to wait for all to be ready (kubernetes's default
# startup_timeout)
SYNC_WAIT = 5.0
K3S_COREFILE = """.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    hosts /etc/coredns/NodeHosts {
      ttl 60
      reload 15s
      fallthrough
    }
    prometheus :9153
    cache 30
    loop
    reload
    loadbalance
    forward . /etc/resolv.conf
}
"""


class _ExplainHost:
    """What the plugins get while explaining (plugin.Host): the API, and nothing that serves or stops."""

    def __init__(self, cfg: DnsConfig, kubeconfig: str | None, client_factory: ClientFactory | None) -> None:
        self.cfg, self.kubeconfig, self.client_factory = cfg, kubeconfig, client_factory
        self.metrics = DnsMetrics()
        self.primary = False
        self.lameduck = False

    def http_route(self, addr: tuple[str, int], path: str, route: Route) -> None:
        return None

    def kube_client(self, kubeconfig: str | None = None) -> Client | None:
        factory = self.client_factory
        return None if factory is None else factory(kubeconfig or self.kubeconfig)

    def not_ready(self) -> set[str]:
        return {p.name for p in self.cfg.plugins() if not p.ready()}

    def fatal(self, message: str) -> None:
        return None

    def answers_changed(self) -> None:
        return None


async def explain(name: str, qtype: str, corefile: str, *, kubeconfig: str | None = None,
                  client_factory: ClientFactory | None = None, out: TextIO = sys.stdout,
                  query_upstream: bool = False) -> dns.message.Message:
    """Build the chains of `corefile`, start its plugins, run one traced query and print the story."""
    cfg = read_config(corefile)
    host = _ExplainHost(cfg, kubeconfig, client_factory)
    for p in cfg.plugins():
        await p.start(host)
    try:
        for _ in range(int(SYNC_WAIT * 20)):
            if not host.not_ready():
                break
            await asyncio.sleep(0.05)
        routing = Routing.of(cfg.blocks)
        core = DnsCore(routing)
        q = dns.message.make_query(name, qtype)
        trace: list[str] = []
        wire = await core.slow_answer(q.to_wire(), "udp", ("127.0.0.1", 0), trace=trace, offline=not query_upstream)
        reply = dns.message.from_wire(wire) if wire else dns.message.make_response(q)
        hit = routing.route(q.question[0].name.to_text().lower())
        print(f"question: {name} {qtype.upper()}", file=out)
        print(f"server block: {hit[1].server} zone {hit[0]}" if hit else "server block: none (REFUSED)", file=out)
        print("chain: " + (" -> ".join(p.name for p in hit[1].plugins if p.in_chain) if hit else "-"), file=out)
        for line in trace:
            print(f"  {line}", file=out)
        kind = dns.rcode.to_text(reply.rcode())
        if wire == b"":
            kind = "no reply (the query is dropped)"
        elif reply.rcode() == dns.rcode.NOERROR and not reply.answer:
            kind = "NODATA (NOERROR, empty answer)"
        print(f"result: {kind}", file=out)
        for sec in ("answer", "authority", "additional"):
            for rr in getattr(reply, sec):
                print(f"  {sec}: {rr.to_text()}", file=out)
        return reply
    finally:
        for p in cfg.plugins():
            await p.stop()


def main(argv: list[str]) -> int:
    if argv and argv[0] == "explain":
        argv = argv[1:]
    ap = argparse.ArgumentParser(prog="pyk3s dns explain")
    ap.add_argument("name")
    ap.add_argument("type", nargs="?", default="A")
    ap.add_argument("--kubeconfig", default=None)
    ap.add_argument("--corefile", default=None, help="explain with this Corefile instead of the cluster's")
    ap.add_argument("--query-upstream", action="store_true",
                    help="let `forward` really ask its upstream resolvers (off: explain only names them)")
    args = ap.parse_args(argv)
    from .cli import client_factory

    # an empty coredns-custom matches no import glob: expected here, not worth a warning next to the answer
    logging.getLogger("pyk3s.dns.corefile").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="pyk3s-dns-explain-") as tmp:
        path = args.corefile or _cluster_corefile(args.kubeconfig, tmp)
        try:
            asyncio.run(explain(args.name, args.type, path, kubeconfig=args.kubeconfig,
                                client_factory=client_factory, query_upstream=args.query_upstream))
        except CorefileError as err:
            print(err, file=sys.stderr)
            return 1
    return 0


async def _fetch_coredns_config(kubeconfig: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """The data of the ``coredns`` and ``coredns-custom`` ConfigMaps (empty when unreachable)."""
    from pyk3s.client import ApiError, Client, TransportError

    try:
        async with Client.from_env(kubeconfig) as client:
            cms = client.resource("v1", "configmaps")
            data = ((await cms.get_or_none("coredns", "kube-system")) or {}).get("data") or {}
            custom = ((await cms.get_or_none("coredns-custom", "kube-system")) or {}).get("data") or {}
            return data, custom
    except (ApiError, TransportError, RuntimeError, OSError) as err:
        print(f"pyk3s dns explain: cannot read the coredns ConfigMap ({err}); using K3s's default Corefile",
              file=sys.stderr)
        return {}, {}


def _cluster_corefile(kubeconfig: str | None, tmp: str) -> str:
    data, custom = asyncio.run(_fetch_coredns_config(kubeconfig))
    return write_corefile(data, custom, tmp)


def write_corefile(data: dict[str, str], custom: dict[str, str], tmp: str) -> str:
    """Write the Corefile, NodeHosts and coredns-custom files of the ``coredns`` and ``coredns-custom``
    ConfigMaps' data under ``tmp`` with the /etc/coredns paths pointing there (K3s's default Corefile
    when there is none); returns the Corefile's path."""
    root = Path(tmp)
    (root / "custom").mkdir(parents=True, exist_ok=True)
    (root / "NodeHosts").write_text(data.get("NodeHosts", ""))
    for key, value in custom.items():
        (root / "custom" / Path(key).name).write_text(value)
    corefile = (data.get("Corefile") or K3S_COREFILE).replace(
        "/etc/coredns/custom/", f"{tmp}/custom/").replace("/etc/coredns/NodeHosts", f"{tmp}/NodeHosts")
    (root / "Corefile").write_text(corefile)
    return str(root / "Corefile")
