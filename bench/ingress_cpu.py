#!/usr/bin/env python3
"""Python CPU per proxied request, without sockets: the ingress proxy's request and response paths are
driven with in-memory transports, so only the proxy's own Python work is timed (no kernel, no peer).

The lean reference proxy (../shared/peers/http/proxy_httptools.py) is driven the same way, so the
two numbers compare the Python work per request directly.

  python bench/ingress_cpu.py [--requests 200000] [--routes 1] [--auth] [--accesslog] [--profile]
  python bench/ingress_cpu.py --compare /work/main [--rounds 5]   # this tree against another, interleaved

``--compare TREE`` measures this source tree and TREE (another checkout of pyk3s, e.g. main before a
change) in alternating subprocesses, ``--rounds`` times each, and prints both medians with their spread
and the ratio: the before/after check that a change leaves the fast lane's cost where it was.
``--accesslog`` switches access logs on (to /dev/null) to show what they cost.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import os
import pstats
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if "--tree" in sys.argv:  # measure another checkout: its pyk3s is imported instead of this one
    ROOT = os.path.abspath(sys.argv[sys.argv.index("--tree") + 1])
sys.path.insert(0, ROOT)

from pyk3s.addons.ingress.config.static import static_from_flags  # noqa: E402
from pyk3s.addons.ingress.providers import build_config  # noqa: E402
from pyk3s.addons.ingress.proxy.client import ClientConnection  # noqa: E402
from pyk3s.addons.ingress.proxy.state import ProxyState  # noqa: E402
from pyk3s.addons.ingress.proxy.upstream import UpstreamConnection  # noqa: E402


def _shared() -> str:
    """../shared beside the checkout (for a git worktree: beside the main checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    common = subprocess.run(["git", "-C", root, "rev-parse", "--path-format=absolute", "--git-common-dir"],
                            capture_output=True, text=True).stdout.strip()
    for candidate in (os.path.join(root, "..", "shared"), os.path.join(common, "..", "..", "shared") if common else ""):
        if candidate and os.path.isdir(candidate):
            return os.path.abspath(candidate)
    return os.path.join(root, "..", "shared")


PEER_PROXY = os.environ.get("PEER_PROXY", os.path.join(_shared(), "peers", "http", "proxy_httptools.py"))
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 07:00:00 GMT\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
AUTH = b"Authorization: Basic dGVzdDp0ZXN0\r\n"
HTPASSWD = "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"


class Sink:
    """A transport that keeps nothing: write() counts bytes."""

    def __init__(self, peer: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        self.peer = peer
        self.written = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 80)}.get(name, default)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def objects(routes: int, auth: bool) -> list[dict[str, Any]]:
    import base64

    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "be", "namespace": "default"},
         "spec": {"ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "be-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "be"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 18480}], "endpoints": [{"addresses": ["127.0.0.1"]}]},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth", "namespace": "default"},
         "data": {"users": base64.b64encode((HTPASSWD + "\n").encode()).decode()}},
        {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": "auth", "namespace": "default"},
         "spec": {"basicAuth": {"secret": "auth"}}},
    ]
    for i in range(routes):
        route: dict[str, Any] = {"match": f"Host(`h{i}.example`)", "kind": "Rule", "services": [{"name": "be", "port": 80}]}
        if auth and i == routes // 2:
            route["middlewares"] = [{"name": "auth"}]
        objs.append({"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
                     "metadata": {"name": f"r{i}", "namespace": "default"}, "spec": {"routes": [route]}})
    return objs


def run_pyk3s(n: int, routes: int, auth: bool, accesslog: bool = False) -> float:
    loop = asyncio.new_event_loop()
    flags = ["--entryPoints.web.address=127.0.0.1:18481", "--providers.kubernetescrd"]
    if accesslog:
        flags += ["--accesslog=true", "--accesslog.filepath=/dev/null"]
    static = static_from_flags(flags)
    state = ProxyState(loop, static)
    state.apply(build_config(static, objects(routes, auth)))
    client = ClientConnection(state, "web", False, None)
    ct = Sink()
    client.connection_made(ct)
    svc = next(iter(state.compiled.services.values()))
    pool = state.pool(svc.targets[0])
    up = UpstreamConnection(pool)
    ut = Sink()
    up.connection_made(ut)
    pool.put(up)
    request = b"GET / HTTP/1.1\r\nHost: h%d.example:18481\r\n%s\r\n" % (routes // 2, AUTH)
    feed_req, feed_resp = client.data_received, up.data_received
    for _ in range(1000):
        feed_req(request)
        feed_resp(RESPONSE)
    assert ct.written > 1000 * 100 and ut.written > 1000 * 50, (ct.written, ut.written)
    t0 = time.process_time()
    for _ in range(n):
        feed_req(request)
        feed_resp(RESPONSE)
    return (time.process_time() - t0) / n


def run_ref(n: int, routes: int) -> float:
    spec = importlib.util.spec_from_file_location("peer_proxy", PEER_PROXY)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    loop = asyncio.new_event_loop()
    pool = mod.Pool(loop, "127.0.0.1", 18480)
    table = {b"h%d.example" % i: [(b"/", pool)] for i in range(routes)}
    client = mod.Client(loop, table, pool)
    client.connection_made(Sink())
    up = mod.Upstream(pool)
    up.connection_made(Sink())
    pool.idle.append(up)
    request = b"GET / HTTP/1.1\r\nHost: h%d.example:18481\r\n%s\r\n" % (routes // 2, AUTH)
    for _ in range(1000):
        client.data_received(request)
        up.data_received(RESPONSE)
    t0 = time.process_time()
    for _ in range(n):
        client.data_received(request)
        up.data_received(RESPONSE)
    return (time.process_time() - t0) / n


def compare(args: argparse.Namespace, n: int) -> int:
    """This tree against ``args.compare``, in alternating subprocesses (same flags, same requests)."""
    import statistics
    import subprocess

    trees = {"this": ROOT, "other": os.path.abspath(args.compare)}
    common = ["--requests", str(n), "--routes", str(args.routes), "--single"]
    if args.auth:
        common.append("--auth")
    results: dict[str, list[float]] = {k: [] for k in trees}
    for i in range(args.rounds):
        order = list(trees) if i % 2 == 0 else list(reversed(trees))
        for name in order:
            extra = ["--accesslog"] if args.accesslog and name == "this" else []
            out = subprocess.run([sys.executable, os.path.abspath(__file__), *common, *extra, "--tree", trees[name]],
                                 capture_output=True, text=True, check=True).stdout
            results[name].append(float(out.strip().splitlines()[-1]))
    med = {k: statistics.median(v) for k, v in results.items()}
    for name in trees:
        v = results[name]
        print(f"{name:5} {trees[name]}: median {med[name]:.2f} us/request  (min {min(v):.2f}, max {max(v):.2f}, "
              f"spread {(max(v) - min(v)) / med[name] * 100:.0f}%)  runs {' '.join(f'{x:.2f}' for x in v)}")
    print(f"ratio this/other {med['this'] / med['other']:.3f}x   (routes={args.routes} auth={'on' if args.auth else 'off'} "
          f"accesslog={'on' if args.accesslog else 'off'}, {n} requests x {args.rounds} rounds, interleaved)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--routes", type=int, default=1)
    ap.add_argument("--auth", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--accesslog", action="store_true", help="access logs on (written to /dev/null)")
    ap.add_argument("--compare", metavar="TREE", help="another pyk3s checkout to measure against, interleaved")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved runs of each tree with --compare")
    ap.add_argument("--tree", metavar="TREE", help=argparse.SUPPRESS)  # read before the imports above
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)  # print our us/request only
    args = ap.parse_args()
    n = min(args.requests, 2_000_000)
    if args.single:
        print(f"{run_pyk3s(n, args.routes, args.auth, args.accesslog) * 1e6:.4f}")
        return 0
    if args.compare:
        return compare(args, n)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_pyk3s(n, args.routes, args.auth)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0
    mine = run_pyk3s(n, args.routes, args.auth, args.accesslog)
    ref = run_ref(n, args.routes) if os.path.exists(PEER_PROXY) else float("nan")
    print(f"pyk3s {mine * 1e6:.2f} us/request   reference {ref * 1e6:.2f} us/request   ratio {mine / ref:.2f}x"
          f"   (routes={args.routes} auth={'on' if args.auth else 'off'}, {n} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
