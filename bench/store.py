"""Store throughput per engine, each labelled with its durability. Prints numbers; asserts nothing.

    python bench/store.py                                   # sqlite, postgres, postgres-async, etcd
    python bench/store.py --engines sqlite,etcd -n 2000 --runs 3
    python bench/store.py --endpoint postgres://pk@127.0.0.1:5432/bench   # a server of yours

Engines run real servers on loopback (the store tests' launchers), with the durability they would have
in production:
  sqlite          pyk3s's SQLite: WAL, synchronous=NORMAL: an acknowledged write survives a crash of
                  the process; a power loss can drop the last commits
  postgres        PostgreSQL defaults: every commit flushed to disk (fsync, full_page_writes)
  postgres-async  the same server with synchronous_commit=off for pyk3s's sessions: SQLite's class
                  (survives a process crash, a power loss can drop the last commits)
  etcd            etcd defaults: every commit flushed to disk (its WAL is fsynced)
  memory          no durability at all (the unit tests' engine), for scale
No peer: the engines are compared with each other. Rows: sequential creates (latency-bound),
concurrent creates (``-c`` in flight: what an API server under load sees), updates, gets, one list of
all keys. Engines are interleaved over ``--runs`` runs; medians and the spread (± half the range) print.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "api" / "store"))

import store_servers as stores  # noqa: E402  real PostgreSQL / etcd launchers

from pyk3s.api.store import open_store  # noqa: E402
from pyk3s.api.store.base import Store  # noqa: E402

VALUE = b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bench","namespace":"default"}}' * 8
DURABILITY = {
    "memory": "none (memory)",
    "sqlite": "WAL, synchronous=NORMAL (process crash safe)",
    "postgres": "fsync per commit (defaults)",
    "postgres-async": "synchronous_commit=off (process crash safe)",
    "etcd": "fsync per commit (defaults)",
    "endpoint": "as the server is configured",
}
Op = Callable[[Store, str], Awaitable[object]]


async def _bounded(store: Store, keys: list[str], concurrency: int, op: Op) -> None:
    it = iter(keys)

    async def worker() -> None:
        for key in it:
            await op(store, key)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def bench(endpoint: str, data_dir: Path, n: int, concurrency: int) -> dict[str, float]:
    """ops/s per row (the list row: seconds)."""
    store = open_store(endpoint, data_dir)
    await store.start()
    out: dict[str, float] = {}
    try:
        prefix = f"/registry/bench/{time.time_ns()}/"
        seq = [f"{prefix}seq/{i:06}" for i in range(max(n // 10, 1))]
        par = [f"{prefix}par/{i:06}" for i in range(n)]

        async def timed(label: str, count: int, coro: Awaitable[object]) -> None:
            t = time.perf_counter()
            await coro
            out[label] = count / (time.perf_counter() - t)

        async def sequential() -> None:
            for key in seq:
                await store.create(key, VALUE)

        async def create(s: Store, key: str) -> None:
            await s.create(key, VALUE)

        async def update(s: Store, key: str) -> None:
            await s.update(key, VALUE, 0)

        async def get(s: Store, key: str) -> None:
            await s.get(key)

        await timed("create sequential", len(seq), sequential())
        await timed(f"create x{concurrency}", n, _bounded(store, par, concurrency, create))
        await timed(f"update x{concurrency}", n, _bounded(store, par, concurrency, update))
        await timed(f"get x{concurrency}", n, _bounded(store, par, concurrency, get))
        t = time.perf_counter()
        await store.list(prefix + "par/")
        out["list (s)"] = time.perf_counter() - t
    finally:
        await store.close()
    return out


@contextmanager
def engines(names: list[str], tmp: Path, extra: list[str]) -> Iterator[dict[str, str]]:
    """name -> endpoint, with the servers running until the block ends."""
    with ExitStack() as stack:
        found: dict[str, str] = {}
        pg = None
        for name in names:
            if name == "memory":
                found[name] = "memory://"
            elif name == "sqlite":
                found[name] = f"sqlite://{tmp}/state.db"
            elif name in ("postgres", "postgres-async"):
                if not stores.HAVE_POSTGRES:
                    print(f"skip {name}: PostgreSQL not installed")
                    continue
                if pg is None:
                    pg = stores.PostgresServer(durable=True)
                    pg.start()
                    stack.callback(pg.stop)
                found[name] = pg.dsn() + ("?synchronous_commit=off" if name == "postgres-async" else "")
            elif name == "etcd":
                if not stores.HAVE_ETCD:
                    print("skip etcd: not installed")
                    continue
                etcd = stores.EtcdServer()
                etcd.start()
                stack.callback(etcd.stop)
                found[name] = etcd.url
            else:
                raise SystemExit(f"unknown engine {name!r}")
        for i, endpoint in enumerate(extra):
            found[f"endpoint{i + 1}" if len(extra) > 1 else "endpoint"] = endpoint
        yield found


async def run(args: argparse.Namespace) -> None:
    names = [] if args.endpoint and not args.engines_given else args.engines.split(",")
    with tempfile.TemporaryDirectory(prefix="pkbench-") as tmp, \
            engines(names, Path(tmp), args.endpoint or []) as found:
        results: dict[tuple[str, str], list[float]] = defaultdict(list)
        rows: list[str] = []
        for r in range(args.runs):
            for name, endpoint in found.items():     # interleaved: background load hits every engine
                got = await bench(endpoint, Path(tmp), args.n, args.concurrency)
                for row, value in got.items():
                    results[name, row].append(value)
                    if row not in rows:
                        rows.append(row)
                print(f"run {r + 1} {name}: " + ", ".join(f"{k} {v:,.0f}" if "(s)" not in k else f"{k} {v:.3f}"
                                                         for k, v in got.items()), flush=True)
        print(f"\nmedian of {args.runs} interleaved runs, -n {args.n}, spread = ± half the range\n")
        print("| engine | durability | " + " | ".join(rows) + " |")
        print("|---|---|" + "---:|" * len(rows))
        for name in found:
            cells = []
            for row in rows:
                v = results[name, row]
                m = statistics.median(v)
                spread = (max(v) - min(v)) / 2 / m * 100 if m else 0.0
                cells.append((f"{m:.3f}" if "(s)" in row else f"{m:,.0f}/s") + f" ±{spread:.0f}%")
            label = DURABILITY.get(name, DURABILITY["endpoint"] if name.startswith("endpoint") else "?")
            print(f"| {name} | {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="sqlite,postgres,postgres-async,etcd",
                        help="comma list of memory, sqlite, postgres, postgres-async, etcd")
    parser.add_argument("--endpoint", action="append", help="also a datastore endpoint of yours (repeatable)")
    parser.add_argument("-n", type=int, default=10_000, help="keys per concurrent phase")
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    args.engines_given = "--engines" in sys.argv
    if args.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
