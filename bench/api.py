"""API server throughput and latency against a real ``pyk3s server`` (started here in a temp dir with
``--disable-agent``, stopped and removed at the end). Prints numbers; asserts nothing.

    python bench/api.py                        # 10,000 ConfigMaps, 32 in flight, 100 watchers
    python bench/api.py -n 2000 -c 64 --watchers 50 --events 100

Rows: concurrent creates (creates/s), one list of all the ConfigMaps as JSON and as a Table (what
``kubectl get`` asks for) and paginated like kubectl (limit=500), watch delivery latency from the
start of a write to each watcher seeing its event (p50/p99 over watchers x events), and the server's
RSS from /proc after each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
                "application/json")
NS = "pk-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pyk3s-bench-"))
        self.kubeconfig = self.tmp / "kubeconfig.yaml"
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        args = [sys.executable, "-m", "pyk3s", "server", "--data-dir", str(self.tmp / "data"),
                "--https-listen-port", str(self.port), "--write-kubeconfig", str(self.kubeconfig),
                "--config", str(self.tmp / "no-config.yaml"), "--disable-agent",
                "--disable", "coredns,traefik,servicelb"]
        log = open(self.tmp / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=Path(__file__).resolve().parents[1])
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bench: pyk3s server exited with {self.proc.returncode}")
            if self.kubeconfig.exists():
                return
            time.sleep(0.1)
        raise TimeoutError("bench: pyk3s server wrote no kubeconfig in time")

    def rss_mib(self) -> float:
        if self.proc is None:
            return 0.0
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def ssl_context(self) -> ssl.SSLContext:
        kc = yaml.safe_load(self.kubeconfig.read_text())
        ca = base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        user = kc["users"][0]["user"]
        cert, key = self.tmp / "client.crt", self.tmp / "client.key"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        key.chmod(0o600)
        ctx = ssl.create_default_context(cadata=ca)
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _children(pid: int) -> list[int]:
    try:
        kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def _wait_ready(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(300):
        try:
            async with http.get(f"{base}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError("bench: server not ready")


async def bench_creates(http: aiohttp.ClientSession, base: str, n: int, concurrency: int) -> None:
    names = iter(range(n))
    url = f"{base}/api/v1/namespaces/{NS}/configmaps"

    async def worker() -> None:
        for i in names:
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05}", "labels": {"b": "1"}},
                    "data": {"key": "value" * 8}}
            async with http.post(url, json=body) as r:
                if r.status != 201:
                    raise RuntimeError(f"bench: create cm-{i:05} answered {r.status}: {await r.text()}")
                await r.read()

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    dt = time.perf_counter() - t
    print(f"  creates ({concurrency} in flight)   {n:>7} objs {dt:8.3f}s {n / dt:10.0f} creates/s")


async def bench_lists(http: aiohttp.ClientSession, base: str, n: int) -> None:
    url = f"{base}/api/v1/namespaces/{NS}/configmaps"
    for label, accept in (("list JSON", "application/json"), ("list Table", TABLE_ACCEPT)):
        t = time.perf_counter()
        async with http.get(url, headers={"Accept": accept}) as r:
            body = await r.read()
        dt = time.perf_counter() - t
        doc = json.loads(body)
        count = len(doc.get("items") or doc.get("rows") or [])
        print(f"  {label:<24} {count:>7} objs {dt:8.3f}s {len(body) / 1e6:8.1f} MB")
    t = time.perf_counter()
    count, pages, token = 0, 0, ""
    while True:
        q = f"?limit=500&continue={token}" if token else "?limit=500"
        async with http.get(url + q, headers={"Accept": TABLE_ACCEPT}) as r:
            doc = json.loads(await r.read())
        count += len(doc.get("rows") or [])
        pages += 1
        token = (doc.get("metadata") or {}).get("continue") or ""
        if not token:
            break
    dt = time.perf_counter() - t
    print(f"  list Table limit=500     {count:>7} objs {dt:8.3f}s {pages:>5} pages")


async def bench_watch(http: aiohttp.ClientSession, base: str, watchers: int, events: int) -> None:
    url = f"{base}/api/v1/namespaces/{NS}/configmaps"
    async with http.get(url + "?limit=1") as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    ready = asyncio.Event()
    opened = 0

    async def watcher() -> None:
        nonlocal opened
        seen = 0
        q = f"?watch=true&resourceVersion={rv}&labelSelector=w%3D1&timeoutSeconds=300"
        async with http.get(url + q, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as r:
            opened += 1
            if opened == watchers:
                ready.set()
            async for line in r.content:
                arrived = time.perf_counter()
                ev = json.loads(line)
                name = ev["object"]["metadata"]["name"]
                if name in sent:
                    latencies.append(arrived - sent[name])
                    seen += 1
                    if seen == events:
                        return

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(0.2)
    t = time.perf_counter()
    for i in range(events):
        name = f"watched-{i:04}"
        sent[name] = time.perf_counter()
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"w": "1"}}}
        async with http.post(url, json=body) as r:
            await r.read()
        await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    dt = time.perf_counter() - t
    print(f"  watch latency  {watchers} watchers x {events} events in {dt:.2f}s: "
          f"p50 {_pct(latencies, 0.5) * 1e3:.1f} ms  p99 {_pct(latencies, 0.99) * 1e3:.1f} ms  "
          f"max {max(latencies) * 1e3:.1f} ms")


async def run(args: argparse.Namespace) -> None:
    srv = Server()
    try:
        srv.start()
        base = f"https://127.0.0.1:{srv.port}"
        connector = aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=args.watchers + args.concurrency + 8)
        async with aiohttp.ClientSession(connector=connector) as http:
            await _wait_ready(http, base)
            async with http.post(f"{base}/api/v1/namespaces",
                                 json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}) as r:
                await r.read()
            print(f"pyk3s server (sqlite, no agent): RSS at start {srv.rss_mib():.0f} MiB")
            await bench_creates(http, base, args.n, args.concurrency)
            print(f"  RSS after creates {srv.rss_mib():.0f} MiB")
            await bench_lists(http, base, args.n)
            print(f"  RSS after lists {srv.rss_mib():.0f} MiB")
            await bench_watch(http, base, args.watchers, args.events)
            print(f"  RSS with {args.watchers} watchers done {srv.rss_mib():.0f} MiB")
    finally:
        srv.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10_000, help="ConfigMaps to create and list")
    p.add_argument("-c", "--concurrency", type=int, default=32, help="creates in flight")
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--events", type=int, default=50, help="writes observed by every watcher")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
