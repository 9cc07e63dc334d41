"""``pyk3s traefik [Traefik flags]``: the ingress controller (``pyk3s ingress explain`` is ``explain.py``).

    pyk3s traefik --kubeconfig ~/.kube/config \\
        --entryPoints.web.address=:8000 --entryPoints.websecure.address=:8443 \\
        --entryPoints.websecure.http.tls=true --entryPoints.traefik.address=:8080 \\
        --providers.kubernetescrd --providers.kubernetesingress --api.dashboard=true --ping \\
        --metrics.prometheus --log.level=INFO [--workers N]

Flags use Traefik's spellings, keys case-insensitive; ``--kubeconfig`` (else $KUBECONFIG, else the
in-cluster service account), ``--workers`` (default: number of CPUs), ``--objects=FILE`` (serve the
Kubernetes objects of a YAML file instead of watching an API server) and ``--udpRelay=auto|kernel|userspace``
(how UDP routers relay: ``auto`` relays in the kernel with nftables when the ingress has a network
namespace of its own, as in a pod) are pyk3s additions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from .config.errors import ConfigError
from .config.flags import report_unhonoured
from .config.static import static_from_flags

__all__ = ["main"]

_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
           "WARNING": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL, "PANIC": logging.CRITICAL}


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        static = static_from_flags(argv)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        return 1
    logging.basicConfig(level=_LEVELS.get(static.log_level, logging.ERROR),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workers = static.workers or (os.cpu_count() or 1)
    from pyk3s.client import Client

    from .explain import explain_api
    from .runner import fork_workers, run

    objects = None
    client = None
    if static.raw.get("objects"):
        import yaml

        try:
            with open(static.raw["objects"], encoding="utf-8") as fh:
                objects = [o for o in yaml.safe_load_all(fh) if isinstance(o, dict)]
        except (OSError, yaml.YAMLError) as err:
            print(f"traefik: --objects: {err}", file=sys.stderr)
            return 1
    else:
        try:
            client = Client.from_env(static.kubeconfig or None)
        except Exception as err:  # noqa: BLE001 - no kubeconfig and not in a cluster
            print(f"traefik: cannot reach the Kubernetes API: {err}", file=sys.stderr)
            return 1
    pids, socks = fork_workers(static, workers) if workers > 1 else ([], [])

    async def supervise() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # Every argument the ingress accepts but does not act on is said out loud (log and pod event).
        await report_unhonoured(client, argv)
        task = loop.create_task(run(static, client, workers if pids else 0, socks, objects, explain_api))
        await asyncio.wait([task, loop.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        if client is not None:
            await client.close()

    import uvloop

    try:
        uvloop.run(supervise())
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return 0
