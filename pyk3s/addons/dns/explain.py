"""`pyk3s dns explain <name> [type] [--kubeconfig F] [--corefile F]`: which plugin answers and why.

Builds the same plugin chains as the server (K3s's default Corefile unless --corefile is given), syncs
the kubernetes plugin from the API, runs one query through the slow path with tracing on, and prints
each plugin's note (the object that answered, or why the answer is NXDOMAIN/NODATA) and the reply.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
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


async def explain(name: str, qtype: str, runtime: Runtime, out: Any = sys.stdout) -> dns.message.Message:
    """Run one traced query through `runtime`'s chains (plugins must be started) and print the story."""
    blocks, _ = runtime.parse()
    for b in blocks:
        for p in b.plugins:
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
    ap.add_argument("--corefile", default=None)
    args = ap.parse_args(argv)
    from .cli import client_factory
    path = args.corefile
    tmp = None
    if path is None:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".Corefile", delete=False)
        tmp.write(K3S_COREFILE)
        tmp.close()
        path = tmp.name
    try:
        rt = Runtime(path, kubeconfig=args.kubeconfig, client_factory=client_factory)
        asyncio.run(explain(args.name, args.type, rt))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    return 0
