#!/usr/bin/env bash
# HA benchmark: API write throughput of one `pyk3s server` on SQLite vs PostgreSQL vs etcd, and leader
# failover of two servers sharing PostgreSQL / etcd over N trials (kill -9 of the Lease holder):
#   * writes-resume: kill -9 -> first ConfigMap create acknowledged through the agent's load balancer
#     (pyk3s.agent.loadbalancer.ServerLoadBalancer), i.e. how long clients see the API gone;
#   * lease-moved:   kill -9 -> the survivor holds Lease kube-system/pyk3s-controllers
#     (leaseDuration 3 s, renewed twice a second: expected ~3-4 s).
#
#   bench/ha.sh [--trials 3] [--seconds 5] [--concurrency 8] [--engines sqlite,postgres,etcd]
#
# Datastores are real (etcd from /usr/bin/etcd, PostgreSQL from /usr/lib/postgresql/*/bin, run as the
# postgres user in a temp dir) on loopback ports, started with the store tests' launchers, each with
# its production durability, printed beside its figures: PostgreSQL and etcd flush every commit (their
# defaults), pyk3s's SQLite runs WAL with synchronous=NORMAL (a power loss can drop the last commits).
# No peer: the engines are compared with each other. Servers run
# on loopback with --disable-agent. Everything started is stopped by PID and its temp dir removed, also
# on failure or Ctrl-C. Bounded: each throughput run lasts --seconds, each failover trial <= 40 s.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TRIALS=3; SECONDS_=5; CONC=8; ENGINES=sqlite,postgres,etcd
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) TRIALS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --engines) ENGINES=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "ha.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "ha.sh: needs root (PostgreSQL runs as the postgres user)" >&2; exit 1; }
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
exec "$PY" - "$TRIALS" "$SECONDS_" "$CONC" "$ENGINES" <<'PYEOF'
import asyncio, statistics, sys, threading, time
from pathlib import Path

ROOT = Path.cwd()
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "tests" / "unit" / "api" / "store")]
import store_servers as stores                    # noqa: E402  real etcd / PostgreSQL launchers
from pyk3s_server import ServerProcess            # noqa: E402  real `pyk3s server` processes
from pyk3s.agent.loadbalancer import ServerLoadBalancer    # noqa: E402
from pyk3s.client import Client                   # noqa: E402

trials, seconds, conc, engines = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
BASE = ["--disable", "coredns,traefik,servicelb", "--token", "pk-bench-secret"]


async def throughput(kubeconfig: Path, tag: str) -> tuple[float, float]:
    client = Client.from_kubeconfig(kubeconfig)
    cms = client.resource("v1", "configmaps")
    lat: list[float] = []
    end = time.monotonic() + seconds
    n = 0

    async def worker(w: int) -> None:
        nonlocal n
        i = 0
        while time.monotonic() < end:
            t0 = time.monotonic()
            await cms.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": f"b-{tag}-{w}-{i}"}, "data": {"k": "v" * 64}}, "default")
            lat.append(time.monotonic() - t0)
            i += 1
            n += 1
    start = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(conc)))
    elapsed = time.monotonic() - start
    await client.close()
    lat.sort()
    return n / elapsed, lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0.0


def leader(s: ServerProcess) -> str:
    return s.kubectl("get", "lease", "-n", "kube-system", "pyk3s-controllers", "-o",
                     "jsonpath={.spec.holderIdentity}", check=False, timeout=10).out


def ident(s: ServerProcess) -> str:
    return f"{s.node_name}_{(s.data_dir / 'server' / 'server-id').read_text().strip()}"


def failover(endpoint: str) -> list[tuple[float, float]]:
    servers = [ServerProcess(extra_args=[*BASE, "--datastore-endpoint", endpoint]).start(60) for _ in range(2)]
    out = []
    try:
        for t in range(trials):
            holder = servers[0].wait_for(lambda: leader(servers[0]) or leader(servers[1]), timeout=40)
            victim, survivor = (servers[0], servers[1]) if holder == ident(servers[0]) else (servers[1], servers[0])
            loop = asyncio.new_event_loop()
            th = threading.Thread(target=loop.run_forever, daemon=True)
            th.start()
            lb = ServerLoadBalancer([("127.0.0.1", victim.port), ("127.0.0.1", survivor.port)], port=0)
            asyncio.run_coroutine_threadsafe(lb.start(), loop).result(5)
            health = asyncio.run_coroutine_threadsafe(lb.health(), loop)
            try:
                killed = time.monotonic()
                victim.kill9()
                i = 0
                while time.monotonic() - killed < 40:
                    r = survivor.kubectl("--server", f"https://127.0.0.1:{lb.port}", "--request-timeout", "2s",
                                         "create", "configmap", f"f-{t}-{i}", check=False, timeout=5)
                    i += 1
                    if r.rc == 0:
                        break
                resumed = time.monotonic() - killed
                survivor.wait_for(lambda: leader(survivor) == ident(survivor), timeout=40, interval=0.2)
                moved = time.monotonic() - killed
            finally:
                health.cancel()
                asyncio.run_coroutine_threadsafe(lb.stop(), loop).result(5)
                loop.call_soon_threadsafe(loop.stop)
                th.join(5)
            out.append((resumed, moved))
            print(f"  trial {t + 1}: writes resumed {resumed:5.2f}s, lease moved {moved:5.2f}s", flush=True)
            victim.start(60)
    finally:
        for s in servers:
            s.cleanup()
    return out


rows, fails = [], {}
pg = etcd = None
try:
    for eng in engines:
        if eng == "sqlite":
            endpoint = ""
        elif eng == "postgres":
            if not stores.HAVE_POSTGRES:
                print("skip postgres: not installed"); continue
            pg = pg or stores.PostgresServer(durable=True)
            if not pg.port:
                pg.start()
            endpoint = pg.dsn()
        elif eng == "etcd":
            if not stores.HAVE_ETCD:
                print("skip etcd: not installed"); continue
            etcd = etcd or stores.EtcdServer()
            if etcd.proc is None:
                etcd.start()
            endpoint = etcd.url
        else:
            print(f"unknown engine {eng}"); continue
        srv = ServerProcess(extra_args=[*BASE] + (["--datastore-endpoint", endpoint] if endpoint else [])).start(60)
        try:
            rate, p99 = asyncio.run(throughput(srv.kubeconfig, eng))
        finally:
            srv.cleanup()
        rows.append((eng, rate, p99))
        print(f"{eng:9s} writes: {rate:8.1f}/s  p99 {p99:6.1f} ms  ({conc} writers, {seconds:.0f}s)", flush=True)
        if eng != "sqlite":
            print(f"{eng} failover ({trials} trials):", flush=True)
            ep = pg.dsn() if eng == "postgres" else etcd.url
            fails[eng] = failover(ep)
finally:
    if pg is not None:
        pg.stop()
    if etcd is not None:
        etcd.stop()

def spread(v: list[float]) -> str:
    return "±%.2fs" % ((max(v) - min(v)) / 2)


DURABILITY = {"sqlite": "WAL synchronous=NORMAL", "postgres": "fsync per commit", "etcd": "fsync per commit"}
print("\n== pyk3s HA benchmark ==")
print(f"{'engine':9s} {'durability':23s} {'writes/s':>10s} {'p99 ms':>8s} {'resume median':>14s} {'resume max':>11s} "
      f"{'lease median':>13s} {'lease spread':>13s}")
for eng, rate, p99 in rows:
    f = fails.get(eng)
    if f:
        r = [x[0] for x in f]; m = [x[1] for x in f]
        print(f"{eng:9s} {DURABILITY[eng]:23s} {rate:10.1f} {p99:8.1f} {statistics.median(r):13.2f}s {max(r):10.2f}s "
              f"{statistics.median(m):12.2f}s {spread(m):>13s}")
    else:
        print(f"{eng:9s} {DURABILITY[eng]:23s} {rate:10.1f} {p99:8.1f} {'-':>14s} {'-':>11s} {'-':>13s} {'-':>13s}")
PYEOF
