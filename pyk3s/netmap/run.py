"""``pyk3s map``: connect with a kubeconfig, fill the caches, serve the page, print its URL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from pyk3s.k3s.paths import default_kubeconfig_path

from .cache import MapCache
from .state import MapState
from .web import make_app

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "main_serve", "resolve_kubeconfig", "serve"]

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 8001


def resolve_kubeconfig(given: str | None) -> str | None:
    """``--kubeconfig``, else the first file of ``$KUBECONFIG``, else the server's kubeconfig when it
    exists, else None (in-cluster credentials)."""
    if given:
        return given
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if env:
        return env
    path = default_kubeconfig_path()
    return path if Path(path).exists() else None


def _url(address: str, port: int) -> str:
    host = "127.0.0.1" if address in ("0.0.0.0", "") else "[::1]" if address == "::" else (
        f"[{address}]" if ":" in address else address)
    return f"http://{host}:{port}/"


async def serve(kubeconfig: str | None, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT,
                on_ready: Callable[[str], None] | None = None, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM when none is given)."""
    from pyk3s.client import Client

    client = Client.from_env(kubeconfig)
    access = getattr(client.transport, "access", None)
    cache = MapCache(client)
    runner: web.AppRunner | None = None
    try:
        await cache.start()
        state = MapState(cache, kubeconfig, server=str(getattr(access, "server", "") or ""))
        runner = web.AppRunner(make_app(state, address), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, address, port)
        await site.start()
        bound = int(runner.addresses[0][1]) if runner.addresses else port  # the port chosen for --port 0
        (on_ready or (lambda url: print(f"pyk3s map: serving {url}", flush=True)))(_url(address, bound))
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        await cache.stop()
        await client.close()


def main_serve(kubeconfig: str | None, address: str, port: int) -> int:
    """Run :func:`serve` for the command line: 0 after a signal, 1 with a message on stderr."""
    path = resolve_kubeconfig(kubeconfig)
    if path is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        print(f"pyk3s map: no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run it where the server wrote "
              f"{default_kubeconfig_path()}", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(path, address, port))
    except (OSError, RuntimeError, ValueError) as err:
        print(f"pyk3s map: {err}", file=sys.stderr)
        return 1
    return 0
