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
import sys
import tempfile
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype

from .core import DnsCore, Routing
from .errors import ConfigError
from .runtime import Runtime

__all__ = ["K3S_COREFILE", "explain", "main"]

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


def _dry_forward(plugin: Any) -> Any:
    async def serve(req: Any, next_: Any) -> dns.message.Message:
        if not plugin.matches(req.name):
            return await next_(req)
        upstreams = ", ".join(f"{u.host}:{u.port}" for u in plugin.upstreams) or "no upstream"
        req.note(f"forward: would ask {upstreams} (not sent; --query-upstream sends it)")
        return req.reply(dns.rcode.SERVFAIL)

    return serve


async def explain(name: str, qtype: str, runtime: Runtime, out: Any = sys.stdout,
                  query_upstream: bool = False) -> dns.message.Message:
    """Run one traced query through `runtime`'s chains (plugins must be started) and print the story."""
    blocks, _ = runtime.parse()
    for b in blocks:
        for p in b.plugins:
            if p.name == "forward" and not query_upstream:
                p.serve = _dry_forward(p)
                continue
            if p.name not in ("health", "ready", "prometheus", "reload", "loop"):
                await p.start(runtime)
    try:
        for b in blocks:
            if b.kube is not None and runtime.client_factory is not None:
                await _wait_synced(b.kube)
        core = DnsCore(Routing.of(blocks))
        q = dns.message.make_query(name, qtype)
        trace: list[str] = []
        wire = await core.slow_answer(q.to_wire(), "udp", ("127.0.0.1", 0), trace=trace)
        reply = dns.message.from_wire(wire) if wire else dns.message.make_response(q)
        hit = Routing.of(blocks).route(q.question[0].name.to_text().lower())
        print(f"question: {name} {qtype.upper()}", file=out)
        print(f"server block: {hit[1].server} zone {hit[0]}" if hit else "server block: none (REFUSED)", file=out)
        print("chain: " + (" -> ".join(p.name for p in hit[1].plugins if p.in_chain) if hit else "-"), file=out)
        for line in trace:
            print(f"  {line}", file=out)
        kind = dns.rcode.to_text(reply.rcode())
        if reply.rcode() == dns.rcode.NOERROR and not reply.answer:
            kind = "NODATA (NOERROR, empty answer)"
        print(f"result: {kind}", file=out)
        for sec in ("answer", "authority", "additional"):
            for rr in getattr(reply, sec):
                print(f"  {sec}: {rr.to_text()}", file=out)
        return reply
    finally:
        for b in blocks:
            for p in b.plugins:
                await p.stop()


async def _wait_synced(kube: Any) -> None:
    for _ in range(int(kube.opts.startup_timeout * 20)):
        if kube.index.synced:
            return
        await asyncio.sleep(0.05)


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

    with tempfile.TemporaryDirectory(prefix="pyk3s-dns-explain-") as tmp:
        path = args.corefile or _cluster_corefile(args.kubeconfig, tmp)
        try:
            rt = Runtime(path, kubeconfig=args.kubeconfig, client_factory=client_factory)
            asyncio.run(explain(args.name, args.type, rt, query_upstream=args.query_upstream))
        except ConfigError as err:
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
    """Write the cluster's Corefile, NodeHosts and coredns-custom files under ``tmp`` with the
    /etc/coredns paths pointing there; K3s's default Corefile when the cluster has none."""
    data, custom = asyncio.run(_fetch_coredns_config(kubeconfig))
    root = Path(tmp)
    (root / "custom").mkdir(parents=True, exist_ok=True)
    (root / "NodeHosts").write_text(data.get("NodeHosts", ""))
    for key, value in custom.items():
        (root / "custom" / Path(key).name).write_text(value)
    corefile = (data.get("Corefile") or K3S_COREFILE).replace(
        "/etc/coredns/custom/", f"{tmp}/custom/").replace("/etc/coredns/NodeHosts", f"{tmp}/NodeHosts")
    (root / "Corefile").write_text(corefile)
    return str(root / "Corefile")
