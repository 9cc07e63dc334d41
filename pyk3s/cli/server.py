"""`pyk3s server`: the store, the API server, the control-plane loops, the manifests directory, and an
embedded agent, in one process.

Start-up order: validate flags (errors name the flag) -> store -> API (certificates, HTTPS) ->
kubeconfig and token -> packaged manifests staged -> controllers -> agent. Shutdown runs it backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .flags import parse_flags
from .server_config import ConfigError, ServerConfig, ensure_private_dir
from .server_flags import SERVER_FLAGS
from .token import ensure_server_token

__all__ = ["main", "run_server"]

log = logging.getLogger("pyk3s.server")
DATASTORE_START_TIMEOUT = 30


def setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


COMPACT_INTERVAL = 300.0


async def compact_periodically(store: Any, interval: float = COMPACT_INTERVAL) -> None:
    """Forget superseded versions every few minutes, as kube-apiserver asks etcd to; the engines keep
    the newest revisions (1000 by default) so recent watches can still resume."""
    while True:
        await asyncio.sleep(interval)
        try:
            rev = await store.compact(await store.current_revision())
            log.debug("compacted the datastore up to revision %d", rev)
        except Exception as err:  # a failed compaction only delays the next one
            log.warning("datastore compaction failed: %s", err)


def write_kubeconfig(running: object, cfg: ServerConfig) -> Path:
    path = Path(cfg.write_kubeconfig)
    path.parent.mkdir(parents=True, exist_ok=True)
    running.write_admin_kubeconfig(path, cfg.write_kubeconfig_mode)  # type: ignore[attr-defined]
    return path


async def open_datastore(cfg: ServerConfig) -> Any:
    """The started store of ``--datastore-endpoint``; a bad or unreachable one is a ConfigError naming it."""
    from pyk3s.api.store import open_store
    from pyk3s.api.store.base import StoreError

    try:
        store = open_store(
            cfg.datastore_endpoint,
            cfg.data_dir,
            ca_file=cfg.datastore_cafile or None,
            cert_file=cfg.datastore_certfile or None,
            key_file=cfg.datastore_keyfile or None,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
    try:
        await asyncio.wait_for(store.start(), DATASTORE_START_TIMEOUT)
    except (StoreError, OSError, TimeoutError) as err:
        with contextlib.suppress(Exception):
            await store.close()
        raise ConfigError(f"--datastore-endpoint {_redacted(cfg.datastore_endpoint)!r}: cannot reach the datastore: "
                          f"{err or f'no answer in {DATASTORE_START_TIMEOUT}s'}") from None
    return store


def _redacted(endpoint: str) -> str:
    from urllib.parse import urlsplit

    try:
        pw = urlsplit(endpoint).password
    except ValueError:
        return endpoint
    return endpoint.replace(f":{pw}@", ":***@", 1) if pw else endpoint


async def join_bootstrap(store: Any, cfg: ServerConfig) -> bool:
    """Take the cluster CAs from a shared datastore (True), or learn that this is its first server (False)."""
    from pyk3s.api.store.base import StoreError

    from .ha import BOOTSTRAP_KEY, sync_bootstrap_data
    from .token import parse_token

    token = cfg.token or _existing_token(cfg)
    try:
        if token:
            return await sync_bootstrap_data(store, cfg.server_dir / "tls", parse_token(token).password)
        if (await store.get(BOOTSTRAP_KEY))[1] is not None:
            raise ConfigError("--token is required to join the cluster already in --datastore-endpoint: give the "
                              "first server's token (its <data-dir>/server/token)")
    except StoreError as err:
        raise ConfigError(f"--datastore-endpoint: reading the bootstrap data failed: {err}") from None
    except ValueError as err:
        raise ConfigError(f"--{err}") from None
    return False


def _existing_token(cfg: ServerConfig) -> str:
    path = cfg.server_dir / "token"
    return path.read_text().strip() if path.exists() else ""


async def run_server(cfg: ServerConfig, ready: asyncio.Event | None = None) -> None:
    from pyk3s.api.server import ServerApiSettings, start_api_server
    from pyk3s.client import Client

    from .ha import check_critical_config, shared_datastore, store_bootstrap_data
    from .token import parse_token

    started = time.monotonic()
    ensure_private_dir(cfg.data_dir)
    ensure_private_dir(cfg.server_dir)
    store = await open_datastore(cfg)
    shared = shared_datastore(cfg.datastore_endpoint)
    have_bootstrap = False
    if shared:
        try:
            have_bootstrap = await join_bootstrap(store, cfg)
        except BaseException:
            await store.close()
            raise
    settings = ServerApiSettings(
        data_dir=cfg.data_dir,
        bind_address=cfg.bind_address,
        https_port=cfg.https_port,
        advertise_address=cfg.advertise_address or "127.0.0.1",
        advertise_port=cfg.advertise_port,
        tls_sans=cfg.tls_sans,
        token=cfg.token,
        node_name=cfg.node_name,
        service_cidrs=cfg.service_cidrs,
        cluster_cidrs=cfg.cluster_cidrs,
        node_port_range=cfg.node_port_range,
        cluster_domain=cfg.cluster_domain,
        cluster_dns=cfg.cluster_dns[0],
        disable_network_policy=cfg.disable_network_policy,
    )
    running = await start_api_server(settings, store)
    try:
        secure_token = ensure_server_token(cfg.server_dir, running.ca_pem, cfg.token)
        running.set_join_token(secure_token)
        client = Client.in_process(running.api)
        if shared and not have_bootstrap:
            await store_bootstrap_data(store, cfg.server_dir / "tls", parse_token(secure_token).password)
        await check_critical_config(client, cfg)
        kubeconfig = write_kubeconfig(running, cfg)
        log.info("Wrote kubeconfig %s", kubeconfig)
        print(f"pyk3s: API server ready at {running.url} in {time.monotonic() - started:.2f}s", flush=True)
        from .flags import default_kubeconfig_path

        hint = ("pyk3s kubectl get nodes" if str(kubeconfig) == default_kubeconfig_path()
                else f"KUBECONFIG={kubeconfig} kubectl get nodes")
        print(f"pyk3s: kubeconfig written to {kubeconfig} (use: {hint})", flush=True)
        print(
            f"pyk3s: to join an agent: pyk3s agent --server https://<this-host>:{cfg.https_port} "
            f"--token $(cat {cfg.server_dir / 'token'})",
            flush=True,
        )
        async with asyncio.TaskGroup() as tg:
            from pyk3s.controlplane import start_control_plane

            tg.create_task(start_control_plane(cfg, client, running), name="control-plane")
            tg.create_task(compact_periodically(store), name="compaction")
            if not cfg.disable_agent:
                from .embedded_agent import run_embedded_agent

                tg.create_task(run_embedded_agent(cfg, client, running), name="agent")
            if ready is not None:
                ready.set()
    finally:
        await running.stop()
        await store.close()


def main(argv: list[str]) -> int:
    parsed = parse_flags("pyk3s server", "Run a pyk3s server", SERVER_FLAGS, argv)
    setup_logging(parsed.debug)
    try:
        cfg = ServerConfig.from_flags(parsed)
        if not cfg.disable_agent:
            from .embedded_agent import check_agent_config

            check_agent_config(cfg)
    except ConfigError as err:
        print(f"pyk3s server: {err}", file=sys.stderr)
        return 1
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; this only keeps a broken venv usable
        pass

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        await run_server(cfg)

    try:
        asyncio.run(runner())
    except asyncio.CancelledError:
        log.info("pyk3s server stopped")
    except ConfigError as err:
        print(f"pyk3s server: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    except OSError as err:
        print(f"pyk3s server: {err}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:
        # A part that could not start (the agent refusing overlapping routes, a port in use) ends the
        # server; say what each failure was, with the traceback only in --debug logs.
        failures = [e for e in _leaves(group) if not isinstance(e, asyncio.CancelledError)]
        for err in failures:
            log.debug("pyk3s server failure", exc_info=err)
            print(f"pyk3s server: {err}", file=sys.stderr)
        return 1 if failures else 0
    return 0


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
    os._exit(0)
