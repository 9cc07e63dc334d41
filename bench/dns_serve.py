#!/usr/bin/env python3
"""Run pyk3s's DNS server on loopback with the benchmark data set, no API server needed.

    python bench/dns_serve.py --port 15353 --services 1000 --upstream 127.0.0.1:15354 [--workers auto|N]

`--workers` mirrors the packaged Deployment (PYK3S_DNS_WORKERS=auto): that many processes share the
port through SO_REUSEPORT, each with its own index, fast table and cache; `auto` is the number of CPUs
this process may run on (1 under `taskset -c 1`). "ready" is printed once every worker is ready.

Builds the same 1,000 Services as /work/shared/peers/dns/gen_zone.py (svc-N.ns-M, ClusterIP
10.96.x.y, port http 80/TCP) and feeds them through `KubernetesPlugin.load` (the informers' entry
point). The Corefile is K3s's, with NodeHosts/health/ready/prometheus left out and `forward` pointed at
the local upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def dataset(services: int, namespaces: int = 20) -> tuple[list[dict], list[dict]]:
    nss = [{"metadata": {"name": f"ns-{i}"}} for i in range(namespaces)]
    svcs = []
    for i in range(services):
        ip = f"10.96.{1 + i // 250}.{1 + i % 250}"
        svcs.append({"metadata": {"namespace": f"ns-{i % namespaces}", "name": f"svc-{i}"},
                     "spec": {"clusterIP": ip, "clusterIPs": [ip],
                              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    return svcs, nss


async def serve(corefile: str, services: int, index: int, ready_fd: int | None, children: int) -> None:
    from pyk3s.addons.dns.plugins.kubernetes import KubernetesPlugin
    from pyk3s.addons.dns.runtime import DnsRuntime
    rt = DnsRuntime(corefile, worker_index=index)
    await rt.start()
    rss0 = rss_kib()
    svcs, nss = dataset(services)
    for p in rt.plugins():
        if isinstance(p, KubernetesPlugin):
            p.load(svcs, [], [], nss)
    del svcs, nss
    await rt.fast_settled()         # load() scheduled the build; a second one here would double the work
    gc.collect()
    rss1 = rss_kib()
    if ready_fd is not None and index:
        os.write(ready_fd, b"1")
    elif ready_fd is not None:
        got = 0
        while got < children:
            got += len(await asyncio.to_thread(os.read, ready_fd, 64))
    if index == 0:
        print(f"ready on {rt.port_of()} with {children + 1} worker(s)", flush=True)
    print(f"memory worker {index}: rss {rss0} KiB before the data set, {rss1} KiB with {services} services "
          f"indexed and answers precomputed", flush=True)
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
    ap.add_argument("--workers", default="auto")
    a = ap.parse_args()
    import uvloop

    from pyk3s.addons.dns.workers import cpu_count
    workers = cpu_count() if a.workers == "auto" else int(a.workers)
    os.environ["PYK3S_DNS_WORKERS"] = str(workers)
    with tempfile.NamedTemporaryFile("w", suffix=".Corefile", delete=False) as f:
        f.write(COREFILE.format(port=a.port, upstream=a.upstream))
    r, w = os.pipe()
    pids = []
    for index in range(1, workers):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            uvloop.run(serve(f.name, a.services, index, w, 0))
            os._exit(0)
        pids.append(pid)
    os.close(w)
    # bench/dns.sh stops the server with SIGTERM: end through `finally` so the Corefile is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvloop.run(serve(f.name, a.services, 0, r if pids else None, len(pids)))
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        for pid in pids:
            os.waitpid(pid, 0)
        os.unlink(f.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
