#!/usr/bin/env python3
"""Cost of one Service change at scale: kubernetes index + fast table, single process, no sockets.

    python bench/dns_index.py [--services 10000] [--repeat 5] [--full]

Builds N Services (20 namespaces, ClusterIP, port http 80/TCP) each with one EndpointSlice of two ready
endpoints, indexes them and precomputes the fast table once (K3s's Corefile: kubernetes with reverse
zones, cache, loadbalance). Then times, in CPU seconds, each kind of change end to end: the index update
(`KubernetesPlugin.apply`) and the fast-table update (`update_fast`), median and max of --repeat runs.
Memory: bytes held by the index (with the builder's bookkeeping) and by the fast table, walked object by
object (shared objects counted once), per Service; plus the process's RSS growth. `--full` also times
the full path every change used to take (whole index + whole table), which at 10,000 Services takes
about as long as the initial build.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dns_serve import rss_kib  # noqa: E402

COREFILE = """.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
}
"""
NAMESPACES = 20


def _ip(prefix: str, i: int) -> str:
    return f"{prefix}.{i // 250 % 250}.{1 + i % 250}"


def service(i: int, port: int = 80) -> dict:
    ip = _ip("10.96" if i < 62500 else "10.97", i)
    return {"metadata": {"namespace": f"ns-{i % NAMESPACES}", "name": f"svc-{i}"},
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}}


def endpoint_slice(i: int, addrs: list[str]) -> dict:
    return {"metadata": {"namespace": f"ns-{i % NAMESPACES}", "name": f"svc-{i}-abcde",
                         "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addrs],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def endpoints_of(i: int) -> list[str]:
    return [_ip("10.42", 2 * i), _ip("10.42", 2 * i + 1)] if i < 31250 else [_ip("10.43", 2 * i), _ip("10.43", 2 * i + 1)]


def deep_size(root: object, seen: set[int]) -> int:
    """Bytes reachable from `root` through containers and slotted records, each object once."""
    from pyk3s.addons.dns.plugins.kubernetes.handler import KubernetesPlugin
    total = 0
    stack = [root]
    while stack:
        o = stack.pop()
        if id(o) in seen or o is None or isinstance(o, (type, KubernetesPlugin)):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif hasattr(o, "__slots__") and not isinstance(o, (str, bytes, int)):
            stack.extend(getattr(o, s) for s in o.__slots__ if hasattr(o, s) and s not in ("_rr", "caches",
                                                                                              "root_cache"))
    return total


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="also time the full rebuild of one change")
    a = ap.parse_args()
    n, rep = a.services, max(1, min(a.repeat, 50))

    from pyk3s.addons.dns.config import build_blocks
    from pyk3s.addons.dns.core import Routing
    from pyk3s.addons.dns.corefile import parse_corefile
    from pyk3s.addons.dns.plugins.kubernetes import KubernetesPlugin
    from pyk3s.addons.dns.plugins.kubernetes.builder import change_of
    from pyk3s.addons.dns.precompute import build_fast, update_fast

    blocks = build_blocks(parse_corefile(COREFILE, "Corefile"), "Corefile")
    kube = next(p for p in blocks[0].plugins if isinstance(p, KubernetesPlugin))
    nss = [{"metadata": {"name": f"ns-{i}"}} for i in range(NAMESPACES)]
    svcs = [service(i) for i in range(n)]
    slices = [endpoint_slice(i, endpoints_of(i)) for i in range(n)]
    gc.collect()
    rss0 = rss_kib()
    t0 = time.process_time()
    kube.load(svcs, slices, [], nss)
    t1 = time.process_time()
    routing = await build_fast(Routing.of(blocks))
    t2 = time.process_time()
    del svcs, slices
    gc.collect()
    rss1 = rss_kib()
    table = routing.fast
    assert table is not None
    print(f"{n} Services, {len(kube.index.by_endpoint_ip)} endpoint addresses: full index {t1 - t0:.2f} s CPU, "
          f"full fast table {t2 - t1:.2f} s CPU ({len(table)} answers)")

    seen: set[int] = set()
    b = kube.builder
    idx_bytes = deep_size(kube.index, seen) + sum(deep_size(getattr(b, f), seen) for f in (
        "_bases", "_slices", "_slice_names", "_pods", "_pod_count", "_namespaces", "_cip_dups", "_history"))
    fast_bytes = deep_size(table, seen)
    print(f"memory: index {idx_bytes / n:.0f} B/Service, fast table {fast_bytes / n:.0f} B/Service, "
          f"together {(idx_bytes + fast_bytes) / 2**20:.1f} MiB; RSS grew {(rss1 - rss0) / 1024:.1f} MiB "
          f"({(rss1 - rss0) * 1024 / n:.0f} B/Service)")

    async def timed(changes: list) -> tuple[float, float]:
        nonlocal routing
        c0 = time.process_time()
        assert kube.apply(changes) is not None
        c1 = time.process_time()
        routing = await update_fast(routing)
        c2 = time.process_time()
        return c1 - c0, c2 - c1

    k = n // 2
    kinds = {
        "endpoints of one Service changed": lambda r: [change_of("endpointslices", endpoint_slice(
            k, endpoints_of(k)[:1] + [f"10.99.{r}.{k % 250 + 1}"]))],
        "ports of one Service changed": lambda r: [change_of("services", service(k, 81 + r))],
        "Service + slice added": lambda r: [change_of("services", service(n + r)),
                                            change_of("endpointslices", endpoint_slice(n + r, endpoints_of(n + r)))],
        "Service + slice deleted": lambda r: [("services", f"ns-{(n + r) % NAMESPACES}", f"svc-{n + r}", None),
                                              ("endpointslices", f"ns-{(n + r) % NAMESPACES}", f"svc-{n + r}-abcde",
                                               None)],
    }
    print(f"one change, CPU seconds, median / max of {rep}:")
    for name, make in kinds.items():
        runs = [await timed(make(r)) for r in range(rep)]
        tot = [i + f for i, f in runs]
        print(f"  {name:34s} index {statistics.median(r[0] for r in runs) * 1000:6.2f} ms   "
              f"fast table {statistics.median(r[1] for r in runs) * 1000:6.2f} ms   "
              f"total {statistics.median(tot) * 1000:6.2f} / {max(tot) * 1000:6.2f} ms")
    if a.full:
        c0 = time.process_time()
        kube.load([service(i) for i in range(n)], [endpoint_slice(i, endpoints_of(i)) for i in range(n)], [], nss)
        c1 = time.process_time()
        await build_fast(routing)
        c2 = time.process_time()
        print(f"  {'full rebuild (the old path)':34s} index {(c1 - c0) * 1000:6.0f} ms   "
              f"fast table {(c2 - c1) * 1000:6.0f} ms   total {(c2 - c0):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
