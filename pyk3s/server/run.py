"""Running a server: the store, the API, the control-plane loops, the manifests directory, and an
embedded agent, in one process.

Start-up order: private folders -> datastore (with a shared one: the cluster's bootstrap data, or
this server's once it is up) -> API (certificates, HTTPS) -> token and kubeconfig -> critical
configuration -> control plane, compaction and agent side by side. Shutdown runs it backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pyk3s.api.server import RunningApi, start_api_server
from pyk3s.api.store import open_store
from pyk3s.api.store.base import Store, StoreError
from pyk3s.client import Client
from pyk3s.k3s.paths import ensure_private_dir
from pyk3s.k3s.token import ensure_server_token, parse_token, stored_server_token

from .config import ServerConfig, ServerConfigError
from .controlplane import start_control_plane
from .embedded_agent import run_embedded_agent
from .ha import (
    BOOTSTRAP_KEY,
    check_critical_config,
    shared_datastore,
    store_bootstrap_data,
    sync_bootstrap_data,
)

__all__ = ["COMPACT_INTERVAL", "ServerStarted", "compact_periodically", "open_datastore", "run_server"]

log = logging.getLogger("pyk3s.server")
DATASTORE_START_TIMEOUT = 30
COMPACT_INTERVAL = 300.0


@dataclass(frozen=True, slots=True)
class ServerStarted:
    """What a server reports once its API answers (the command line prints it)."""

    url: str
    seconds: float
    kubeconfig: Path
    token_file: Path


async def compact_periodically(store: Store, interval: float = COMPACT_INTERVAL) -> None:
    """Forget superseded versions every few minutes, as kube-apiserver asks etcd to; the engines keep
    the newest revisions (1000 by default) so recent watches can still resume."""
    while True:
        await asyncio.sleep(interval)
        try:
            rev = await store.compact(await store.current_revision())
            log.debug("compacted the datastore up to revision %d", rev)
        except Exception as err:  # a failed compaction only delays the next one
            log.warning("datastore compaction failed: %s", err)


def write_kubeconfig(running: RunningApi, cfg: ServerConfig) -> Path:
    path = Path(cfg.write_kubeconfig)
    path.parent.mkdir(parents=True, exist_ok=True)
    running.write_admin_kubeconfig(path, cfg.write_kubeconfig_mode)
    return path


async def open_datastore(cfg: ServerConfig) -> Store:
    """The started store of ``--datastore-endpoint``; a bad or unreachable one is a ServerConfigError naming it."""
    try:
        store = open_store(
            cfg.datastore_endpoint,
            cfg.data_dir,
            ca_file=cfg.datastore_cafile or None,
            cert_file=cfg.datastore_certfile or None,
            key_file=cfg.datastore_keyfile or None,
        )
    except ValueError as err:
        raise ServerConfigError(str(err)) from None
    try:
        await asyncio.wait_for(store.start(), DATASTORE_START_TIMEOUT)
    except (StoreError, OSError, TimeoutError) as err:
        with contextlib.suppress(Exception):
            await store.close()
        raise ServerConfigError(
            f"--datastore-endpoint {_redacted(cfg.datastore_endpoint)!r}: cannot reach the datastore: "
            f"{err or f'no answer in {DATASTORE_START_TIMEOUT}s'}") from None
    return store


def _redacted(endpoint: str) -> str:
    try:
        pw = urlsplit(endpoint).password
    except ValueError:
        return endpoint
    return endpoint.replace(f":{pw}@", ":***@", 1) if pw else endpoint


async def join_bootstrap(store: Store, cfg: ServerConfig) -> bool:
    """Take the cluster CAs from a shared datastore (True), or learn that this is its first server (False)."""
    token = cfg.token or stored_server_token(cfg.server_dir)
    try:
        if token:
            return await sync_bootstrap_data(store, cfg.server_dir / "tls", parse_token(token).password)
        if (await store.get(BOOTSTRAP_KEY))[1] is not None:
            raise ServerConfigError("--token is required to join the cluster already in --datastore-endpoint: "
                                    "give the first server's token (its <data-dir>/server/token)")
    except StoreError as err:
        raise ServerConfigError(f"--datastore-endpoint: reading the bootstrap data failed: {err}") from None
    except ValueError as err:
        raise ServerConfigError(f"--{err}") from None
    return False


async def run_server(cfg: ServerConfig, on_ready: Callable[[ServerStarted], None] | None = None) -> None:
    """Run until cancelled; ``on_ready`` is called once the API answers and the kubeconfig is written."""
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
    running = await start_api_server(cfg.api_settings(), store)
    try:
        secure_token = ensure_server_token(cfg.server_dir, running.ca_pem, cfg.token)
        running.set_join_token(secure_token)
        client = Client.in_process(running.api)
        if shared and not have_bootstrap:
            await store_bootstrap_data(store, cfg.server_dir / "tls", parse_token(secure_token).password)
        await check_critical_config(client, cfg)
        kubeconfig = write_kubeconfig(running, cfg)
        log.info("Wrote kubeconfig %s", kubeconfig)
        if on_ready is not None:
            on_ready(ServerStarted(url=running.url, seconds=time.monotonic() - started, kubeconfig=kubeconfig,
                                   token_file=cfg.server_dir / "token"))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(start_control_plane(cfg, client, running), name="control-plane")
            tg.create_task(compact_periodically(store), name="compaction")
            if not cfg.disable_agent:
                tg.create_task(run_embedded_agent(cfg, client, running), name="agent")
    finally:
        await running.stop()
        await store.close()
