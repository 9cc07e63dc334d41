"""`pyk3s coredns -conf <Corefile> [--kubeconfig F] [-dns.port N]`: the cluster DNS server process.

Several worker processes share the DNS ports when the Corefile says `multisocket [NUM]` or
$PYK3S_DNS_WORKERS is set (a number or `auto`; the packaged Deployment sets `auto`): see workers.py.

Inside a pod the kubernetes plugin uses the service account (in-cluster config); outside, a kubeconfig
(`--kubeconfig`, the plugin's own `kubeconfig` option, or $KUBECONFIG). SIGTERM/SIGINT stop it (after the
health plugin's lameduck), SIGUSR1 re-reads the Corefile.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from .errors import CorefileError
from .runtime import DnsRuntime, EventSink
from .workers import Workers, die_with_parent, ensure_loop_seed, report_ready

if TYPE_CHECKING:
    from pyk3s.client import Client

__all__ = ["client_factory", "main", "run"]

log = logging.getLogger("pyk3s.dns")


def client_factory(kubeconfig: str | None) -> Client:
    from pyk3s.client import Client
    return Client.from_env(kubeconfig) if kubeconfig else Client.from_env()


def _event_sink(runtime: DnsRuntime) -> EventSink:
    """Report a rejected Corefile or a skipped custom file as a Warning event on the ConfigMap it came from
    (in-cluster only)."""
    async def sink(reason: str, message: str, configmap: str) -> None:
        if runtime.client_factory is None or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return
        try:
            client = runtime.client_factory(runtime.kubeconfig)
            namespace = os.environ.get("POD_NAMESPACE", "kube-system")
            cm = await client.resource("v1", "configmaps").get(configmap, namespace=namespace)
            await client.record_event(cm, type="Warning", reason=reason, message=message[:1000],
                                      component="coredns")
        except Exception as err:  # events are best effort
            log.warning("could not record event: %s", err)
    return sink


async def run(conf: str | None, kubeconfig: str | None = None, dns_port: int | None = None,
              with_client: bool = True, argv: list[str] | None = None, worker_index: int = 0,
              ready_fd: int | None = None) -> int:
    rt = DnsRuntime(conf, kubeconfig=kubeconfig, client_factory=client_factory if with_client else None,
                 dns_port=dns_port, worker_index=worker_index)
    if worker_index == 0:
        ensure_loop_seed()
        rt.event_sink = _event_sink(rt)
    workers: Workers | None = None
    try:
        await rt.start()
        if rt.workers > 1:
            workers = Workers(rt, argv or [], rt.workers)
            await workers.start()
    except (CorefileError, OSError) as err:
        log.error("%s", err if isinstance(err, CorefileError) else f"listen: {err}")
        if workers is not None:
            await workers.stop()
        await rt.stop()
        return 1
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)

    def reload() -> None:
        loop.create_task(rt.reload())
        if workers is not None:
            workers.signal(signal.SIGUSR1)
    loop.add_signal_handler(signal.SIGUSR1, reload)
    if ready_fd is not None:
        loop.create_task(report_ready(rt.ready, ready_fd))
    if worker_index == 0:
        for (host, _), lst in rt.listeners.items():
            print(f"dns://{host or ''}:{lst.port}", flush=True)
        print(f"CoreDNS-1.13.1 (pyk3s){f', {rt.workers} workers' if rt.workers > 1 else ''}", flush=True)
    done = loop.create_task(rt.stopped.wait())
    stop = loop.create_task(stopping.wait())
    await asyncio.wait({done, stop}, return_when=asyncio.FIRST_COMPLETED)
    for t in (done, stop):
        t.cancel()
    fatal = rt.fatal_error
    if workers is not None:
        await workers.stop()
    await rt.stop()
    return 1 if fatal else 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pyk3s coredns", description="CoreDNS-compatible cluster DNS server")
    ap.add_argument("-conf", "--conf", dest="conf", default=None, help="Corefile to load")
    ap.add_argument("--kubeconfig", "-kubeconfig", dest="kubeconfig", default=None)
    ap.add_argument("-dns.port", "--dns-port", dest="port", type=int, default=None,
                    help="default port for server keys without one")
    ap.add_argument("--no-client", action="store_true", help="do not connect to the Kubernetes API")
    ap.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    conf = args.conf
    if conf is None and os.path.exists("Corefile"):
        conf = "Corefile"
    job = run(conf, args.kubeconfig, args.port, not args.no_client, argv=list(argv),
              worker_index=args.worker_index, ready_fd=args.ready_fd)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(job)
    return uvloop.run(job)
