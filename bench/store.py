"""Store write/read throughput per engine. Prints numbers; asserts nothing.

    python bench/store.py                          # memory:// and SQLite in a temp dir
    python bench/store.py -n 20000 -c 64 --endpoint postgres://pk@127.0.0.1:5432/bench \\
        --endpoint http://127.0.0.1:2379

Rows: sequential creates (one at a time: latency-bound), concurrent creates (``-c`` in flight: what an
API server under load sees), updates, gets, and one list of all keys.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from pyk3s.api.store import open_store
from pyk3s.api.store.base import Store

VALUE = b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bench","namespace":"default"}}' * 8


async def _timed(label: str, count: int, coro) -> None:
    t = time.perf_counter()
    await coro
    dt = time.perf_counter() - t
    print(f"  {label:<22} {count:>7} ops {dt:8.3f}s {count / dt:10.0f} ops/s")


async def _bounded(store: Store, keys: list[str], concurrency: int, op) -> None:
    it = iter(keys)

    async def worker() -> None:
        for key in it:
            await op(store, key)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def bench(endpoint: str, data_dir: Path, n: int, concurrency: int) -> None:
    store = open_store(endpoint, data_dir)
    await store.start()
    print(f"{endpoint or 'sqlite (default path)'}: {type(getattr(store, 'dialect', store)).__name__}")
    try:
        prefix = f"/registry/bench/{time.time_ns()}/"
        seq = [f"{prefix}seq/{i:06}" for i in range(n // 10)]
        par = [f"{prefix}par/{i:06}" for i in range(n)]

        async def sequential() -> None:
            for key in seq:
                await store.create(key, VALUE)

        async def create(s: Store, key: str) -> None:
            await s.create(key, VALUE)

        async def update(s: Store, key: str) -> None:
            await s.update(key, VALUE, 0)

        async def get(s: Store, key: str) -> None:
            await s.get(key)

        await _timed("create sequential", len(seq), sequential())
        await _timed(f"create concurrent x{concurrency}", n, _bounded(store, par, concurrency, create))
        await _timed(f"update concurrent x{concurrency}", n, _bounded(store, par, concurrency, update))
        await _timed(f"get concurrent x{concurrency}", n, _bounded(store, par, concurrency, get))
        t = time.perf_counter()
        _, items = await store.list(prefix + "par/")
        print(f"  {'list':<22} {len(items):>7} keys {time.perf_counter() - t:7.3f}s")
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", action="append", help="datastore endpoint (repeatable)")
    parser.add_argument("-n", type=int, default=10_000, help="keys per concurrent phase")
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pkbench-") as tmp:
        endpoints = args.endpoint or ["memory://", f"sqlite://{tmp}/state.db"]
        for endpoint in endpoints:
            await bench(endpoint, Path(tmp), args.n, args.concurrency)


if __name__ == "__main__":
    if "--uvloop" in __import__("sys").argv:
        import uvloop

        uvloop.install()
    asyncio.run(main())
