#!/usr/bin/env python3
"""CPU per new connection through a ``HostSNI(`*`)`` TCP route (``--route sni``: a TLS passthrough route
chosen by the ClientHello's SNI), load-independently: the middlebox's own CPU time (its whole process
tree, from /proc) divided by the connections it carried.

wrk opens a new connection per request (``Connection: close``) to nginx ``return 200`` (over HTTPS with
``--route sni``, a full handshake per connection) through each middlebox in turn: haproxy ``mode tcp``
(1 thread; ``req.ssl_sni`` with ``--route sni``), ``pyk3s traefik --workers=1`` from this tree and, with
``--compare TREE``, from another checkout (the branch point). Rounds are interleaved; the report gives the
median and spread of CPU microseconds per connection and what they project: connections/s relative to
haproxy when the middlebox alone is CPU-bound (its cost per connection is what the pinned run of
``bench/tcp.sh`` saturates on).

  python bench/tcp_cpu.py [--route star|sni] [--compare /tmp/base] [--rounds 5] [--duration 3] [--conns 32] [--pin]

``--pin`` puts the middleboxes on CPU 1 and wrk and nginx on CPU 0 (as ``bench/tcp.sh --pin``).
``--strace`` also counts the system calls pyk3s makes per connection (one short extra run per tree).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_cpu(root: int) -> tuple[float, int, int]:
    """CPU seconds of ``root`` and its descendants from the scheduler's nanosecond run times
    (/proc/PID/schedstat), and their tick-sampled user and system times (to split the former)."""
    parent: dict[int, int] = {}
    ticks: dict[int, tuple[int, int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read().decode()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        parent[int(d)] = int(rest[1])
        ticks[int(d)] = (int(rest[11]), int(rest[12]))
    want = {root}
    grew = True
    while grew:
        grew = False
        for p, pp in parent.items():
            if pp in want and p not in want:
                want.add(p)
                grew = True
    run = 0
    for p in want:
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    run += int(f.read().split()[0])
        except OSError:
            continue
    user = sum(ticks[p][0] for p in want if p in ticks)
    system = sum(ticks[p][1] for p in want if p in ticks)
    return run / 1e9, user, system


def descendants(root: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(root)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def wait_port(port: int, proc: subprocess.Popen[bytes], log: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"process {proc.pid} exited before listening on {port}:\n" + open(log).read()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port} after {timeout}s")


def check(port: int, scheme: str, ca: str | None) -> None:
    """The answer through the path (over TLS: verified against the backend's own certificate)."""
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    for _ in range(50):
        try:
            with urllib.request.urlopen(f"{scheme}:{port}/", timeout=3, context=ctx) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"port {port} does not answer ok")


# the tree's own pyk3s, whatever checkout the interpreter's environment has installed in editable mode
BOOT = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
        "sys.path.insert(0, {tree!r}); [sys.modules.pop(m) for m in list(sys.modules) if m.startswith('pyk3s')]; "
        "runpy.run_module('pyk3s', run_name='__main__', alter_sys=True)")

OBJECTS = """apiVersion: v1
kind: Service
metadata: {{name: be, namespace: default}}
spec: {{ports: [{{name: tcp, port: 9000}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: be-1, namespace: default, labels: {{kubernetes.io/service-name: be}}}}
addressType: IPv4
ports: [{{name: tcp, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
"""

OBJECTS_STAR = """---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: star, namespace: default}
spec:
  entryPoints: [tcp]
  routes:
  - match: HostSNI(`*`)
    services: [{name: be, port: 9000}]
"""

SNI_ROUTE = """---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: sni, namespace: default}
spec:
  entryPoints: [tcp]
  tls: {passthrough: true}
  routes:
  - match: HostSNI(`localhost`)
    services: [{name: be, port: 9000}]
  - match: HostSNI(`other.example`)
    services: [{name: be, port: 9000}]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--route", choices=("star", "sni"), default="star")
    ap.add_argument("--compare", metavar="TREE", help="another pyk3s checkout measured interleaved with this one")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--pin", action="store_true")
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--no-haproxy", action="store_true")
    args = ap.parse_args()
    for tool in ("nginx", "wrk") + (() if args.no_haproxy else ("haproxy",)) + (("strace",) if args.strace else ()):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")
    py = os.path.join(ROOT, ".venv", "bin", "python")
    if not os.access(py, os.X_OK):
        py = sys.executable
    load = ["taskset", "-c", "0"] if args.pin else []
    mb = ["taskset", "-c", "1"] if args.pin else []
    tmp = tempfile.mkdtemp(prefix="pk-tcpcpu-")
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(os.path.join(tmp, name + ".log"), "wb")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        procs.append(p)
        return p

    try:
        backend = free_port()
        sni = args.route == "sni"
        tls = ""
        if sni:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                            "-keyout", f"{tmp}/key.pem", "-out", f"{tmp}/cert.pem"], check=True, capture_output=True)
            tls = f" ssl; ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem"
        scheme = "https://localhost" if sni else "http://127.0.0.1"
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(f"""worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 16384; }}
http {{ access_log off; client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;
  uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
  server {{ listen 127.0.0.1:{backend} backlog=4096{tls}; location / {{ default_type text/plain; return 200 "ok"; }} }} }}
""")
        ng = start("nginx", load + ["nginx", "-p", tmp, "-c", f"{tmp}/nginx.conf", "-g", "daemon off;"])
        wait_port(backend, ng, f"{tmp}/nginx.log")
        with open(os.path.join(tmp, "objects.yaml"), "w") as f:
            f.write(OBJECTS.format(port=backend) + (SNI_ROUTE if sni else OBJECTS_STAR))
        paths: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        if not args.no_haproxy:
            port = free_port()
            with open(os.path.join(tmp, "haproxy.cfg"), "w") as f:
                f.write(f"global\n  nbthread 1\n  maxconn 8000\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                        f"  timeout client 60s\n  timeout server 60s\nfrontend fe\n  bind 127.0.0.1:{port}\n"
                        + ("  tcp-request inspect-delay 5s\n  tcp-request content accept if { req_ssl_hello_type 1 }\n"
                           "  use_backend be if { req.ssl_sni -i localhost }\n"
                           "  use_backend be if { req.ssl_sni -i other.example }\n" if sni else "  default_backend be\n")
                        + f"backend be\n  server s1 127.0.0.1:{backend}\n")
            p = start("haproxy", mb + ["haproxy", "-db", "-f", f"{tmp}/haproxy.cfg"])
            paths["haproxy"] = (p, port)
        trees = [("pyk3s", ROOT)] + ([("base", os.path.abspath(args.compare))] if args.compare else [])
        for name, tree in trees:
            port = free_port()
            env = dict(os.environ, PYTHONPATH=tree)
            p = start(name, mb + [py, "-c", BOOT.format(tree=tree), "traefik", f"--entryPoints.tcp.address=127.0.0.1:{port}",
                                  "--providers.kubernetescrd", f"--objects={tmp}/objects.yaml", "--workers=1",
                                  "--log.level=ERROR"], env)
            paths[name] = (p, port)
        for name, (p, port) in paths.items():
            wait_port(port, p, os.path.join(tmp, name + ".log"))
            check(port, scheme, f"{tmp}/cert.pem" if sni else None)
        time.sleep(1)
        per: dict[str, list[float]] = {n: [] for n in paths}
        sys_part: dict[str, list[float]] = {n: [] for n in paths}
        rates: dict[str, list[float]] = {n: [] for n in paths}
        for rnd in range(args.rounds):
            for name, (p, port) in paths.items():
                c0, u0, s0 = tree_cpu(p.pid)
                out = subprocess.run(load + ["wrk", "-t1", f"-c{args.conns}", f"-d{args.duration}s", "-H",
                                             "Connection: close", f"{scheme}:{port}/"],
                                     capture_output=True, text=True).stdout
                c1, u1, s1 = tree_cpu(p.pid)
                m = re.search(r"(\d+) requests in", out)
                n = int(m.group(1)) if m else 0
                bad = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
                if n == 0:
                    sys.exit(f"{name}: wrk made no request:\n{out}")
                cpu = c1 - c0
                system = cpu * (s1 - s0) / max(1, (u1 - u0) + (s1 - s0))
                per[name].append(cpu / n * 1e6)
                sys_part[name].append(system / n * 1e6)
                rates[name].append(n / args.duration)
                print(f"round {rnd + 1} {name:8s} {n / args.duration:8.0f} conn/s  {cpu / n * 1e6:6.1f} us CPU/conn "
                      f"(sys {system / n * 1e6:5.1f})" + (f"  [{bad.group(0)}]" if bad else ""), flush=True)
        if args.strace:
            for name, (p, port) in paths.items():
                workers = [p.pid] + descendants(p.pid)
                count = os.path.join(tmp, f"strace-{name}.txt")
                st = subprocess.Popen(["strace", "-c", "-f", "-o", count] + sum((["-p", str(w)] for w in workers), []),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
                out = subprocess.run(load + ["wrk", "-t1", "-c8", "-d2s", "-H", "Connection: close",
                                             f"{scheme}:{port}/"], capture_output=True, text=True).stdout
                time.sleep(0.5)
                st.send_signal(signal.SIGINT)
                st.wait(10)
                m = re.search(r"(\d+) requests in", out)
                n = int(m.group(1)) if m else 1
                print(f"\n{name}: system calls per connection ({n} connections under strace)")
                for line in open(count).read().splitlines():
                    f = line.split()
                    if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
                        print(f"  {f[-1]:16s} {int(f[3]) / n:6.2f}" + (f"  ({f[4]} errors)" if f[4].isdigit() else ""))
                    elif len(f) >= 4 and f[-1] == "total":
                        print(f"  {'total':16s} {int(f[2] if len(f) == 4 else f[3]) / n:6.2f}")
        print("\n| path | CPU us/conn (median) | spread | of it system | conn/s seen | projected conn/s vs haproxy |")
        print("|---|---:|---:|---:|---:|---:|")
        ref = statistics.median(per["haproxy"]) if "haproxy" in per else float("nan")
        for name in paths:
            med = statistics.median(per[name])
            projected = f"{ref / med:.2f}x" if "haproxy" in per else "-"
            print(f"| {name} | {med:.1f} | {min(per[name]):.1f}-{max(per[name]):.1f} | "
                  f"{statistics.median(sys_part[name]):.1f} | {statistics.median(rates[name]):,.0f} | {projected} |")
        if args.compare:
            a, b = statistics.median(per["pyk3s"]), statistics.median(per["base"])
            wins = sum(x < y for x, y in zip(per["pyk3s"], per["base"], strict=True))
            print(f"\nthis tree / base: {a / b:.3f} of the CPU per connection (median), {min(per['pyk3s']) / min(per['base']):.3f} "
                  f"(least); this tree cheaper in {wins} of {len(per['base'])} rounds")
    finally:
        children = [c for p in procs for c in descendants(p.pid)]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)  # pyk3s stops its workers gently
            except subprocess.TimeoutExpired:
                p.kill()
        for pid in children:  # a worker still there after its master: by PID, as started here
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
