#!/usr/bin/env python3
"""Run pyk3s's DNS server on loopback with the benchmark data set, no API server needed.

    python bench/dns_serve.py --port 15353 --services 1000 --upstream 127.0.0.1:15354

Builds the same 1,000 Services as /work/shared/peers/dns/gen_zone.py (svc-N.ns-M, ClusterIP
10.96.x.y, port http 80/TCP) and feeds them through `KubernetesPlugin.load` (the informers' entry
point). The Corefile is K3s's, with NodeHosts/health/ready/prometheus left out and `forward` pointed at
the local upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile

COREFILE = """.:{port} {{
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loadbalance
    forward . {upstream}
}}
"""


def dataset(services: int, namespaces: int = 20) -> tuple[list[dict], list[dict]]:
    nss = [{"metadata": {"name": f"ns-{i}"}} for i in range(namespaces)]
    svcs = []
    for i in range(services):
        ip = f"10.96.{1 + i // 250}.{1 + i % 250}"
        svcs.append({"metadata": {"namespace": f"ns-{i % namespaces}", "name": f"svc-{i}"},
                     "spec": {"clusterIP": ip, "clusterIPs": [ip],
                              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    return svcs, nss


async def serve(port: int, services: int, upstream: str) -> None:
    from pyk3s.addons.dns.plugins.kubernetes import KubernetesPlugin
    from pyk3s.addons.dns.runtime import Runtime
    with tempfile.NamedTemporaryFile("w", suffix=".Corefile", delete=False) as f:
        f.write(COREFILE.format(port=port, upstream=upstream))
    rt = Runtime(f.name)
    await rt.start()
    os.unlink(f.name)
    svcs, nss = dataset(services)
    for p in rt.plugins():
        if isinstance(p, KubernetesPlugin):
            p.load(svcs, [], [], nss)
    await rt.rebuild_fast()
    print(f"ready on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await rt.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=15353)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--upstream", default="127.0.0.1:15354")
    a = ap.parse_args()
    import uvloop
    uvloop.run(serve(a.port, a.services, a.upstream))
    return 0


if __name__ == "__main__":
    sys.exit(main())
