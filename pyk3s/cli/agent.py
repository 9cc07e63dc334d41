"""`pyk3s agent --server https://<addr>:6443 --token <token>`: join a node to a cluster, as K3s's agent does.

1. ``GET <server>/cacerts`` without trusting anything yet; a ``K10<sha256>::…`` token must hash to
   that CA (a bare password skips the check, like K3s).
2. ``POST <server>/v1-pyk3s/node-credentials`` with the token as bearer, now verifying the server
   against that CA: a ``system:node:<name>`` client certificate, a kubelet serving certificate and
   the cluster settings (:mod:`pyk3s.api.join`). A wrong token or a taken node name stops here.
3. Files under ``<data-dir>/agent/``: ``tls/`` (certificates, both CAs) and ``kubelet.kubeconfig``,
   which points at the agent's load balancer on ``127.0.0.1:<--lb-server-port>``.
4. The load balancer (K3s's way): a local TCP proxy that sends each connection to the server in use,
   moving to the next one it knows when that server stops answering. It knows the ``--server`` list
   (comma-separated) plus every address of the ``kubernetes`` Endpoints, polled every 10 s.
5. ``run_agent``: node registration (same naming rules and node-password guard as the embedded
   agent), pods, service proxy, pod routes to the other nodes.

``pyk3s agent --kubeconfig FILE`` keeps the older mode (:mod:`pyk3s.agent.cli`): no join, a
kubeconfig given by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .flags import default_data_dir, parse_flags
from .server_config import ensure_private_dir
from .server_flags import AGENT_ALL_FLAGS
from .token import JoinToken, parse_token

__all__ = ["JoinError", "ServerLoadBalancer", "fetch_ca", "join", "main", "parse_servers"]

log = logging.getLogger("pyk3s.agent.join")
RETRY_SECONDS = 2.0
ENDPOINTS_POLL_SECONDS = 10.0
HEALTH_SECONDS = 2.0
CONNECT_TIMEOUT = 2.0


class JoinError(Exception):
    """Joining cannot succeed as configured; the message names the flag to fix."""


def parse_servers(value: str) -> list[tuple[str, int]]:
    """``https://a:6443,https://b:6443`` -> [(a, 6443), (b, 6443)]."""
    out: list[tuple[str, int]] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        u = urlsplit(part if "://" in part else f"https://{part}")
        if u.scheme != "https" or not u.hostname:
            raise JoinError(f"--server {part!r}: expected https://<address>:<port>")
        try:
            port = u.port or 6443
        except ValueError:
            raise JoinError(f"--server {part!r}: invalid port") from None
        out.append((u.hostname, port))
    if not out:
        raise JoinError("--server is required")
    return out


def _url(server: tuple[str, int], path: str) -> str:
    host, port = server
    return f"https://[{host}]:{port}{path}" if ":" in host else f"https://{host}:{port}{path}"


async def fetch_ca(session: aiohttp.ClientSession, server: tuple[str, int], token: JoinToken) -> bytes:
    """The server CA, checked against the token's hash (unverified TLS: the hash is the trust anchor)."""
    async with session.get(_url(server, "/cacerts"), ssl=False) as resp:
        if resp.status != 200:
            raise JoinError(f"server {_url(server, '')}: GET /cacerts answered HTTP {resp.status}; is --server a "
                            "pyk3s server?")
        ca = await resp.read()
    if not token.ca_matches(ca):
        raise JoinError(f"the CA served by {_url(server, '')} does not match the hash in --token: wrong server, "
                        "or a token from another cluster")
    return ca


@dataclass(frozen=True, slots=True)
class Credentials:
    ca_pem: bytes
    body: dict[str, Any]


async def request_credentials(server: tuple[str, int], token: str, name: str, password: str,
                              addresses: list[str]) -> Credentials:
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ca = await fetch_ca(session, server, parse_token(token))
        ctx = ssl.create_default_context(cadata=ca.decode())
        body = {"nodeName": name, "nodePassword": password, "addresses": addresses}
        async with session.post(_url(server, "/v1-pyk3s/node-credentials"), json=body, ssl=ctx,
                                headers={"Authorization": f"Bearer {token}"}) as resp:
            data = await resp.read()
    try:
        doc = json.loads(data)
    except ValueError:
        doc = {"message": data[:300].decode(errors="replace")}
    if resp.status != 200:
        raise JoinError(doc.get("message") or f"node-credentials: HTTP {resp.status}")
    return Credentials(ca, doc)


async def join(servers: list[tuple[str, int]], token: str, name: str, password: str,
               addresses: list[str]) -> tuple[tuple[str, int], Credentials]:
    """Credentials from the first server that answers; connection failures are retried forever."""
    attempt = 0
    while True:
        for server in servers:
            try:
                return server, await request_credentials(server, token, name, password, addresses)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if attempt % 5 == 0:
                    log.warning("agent: server %s not reachable yet (%s); retrying", _url(server, ""), exc)
        attempt += 1
        await asyncio.sleep(RETRY_SECONDS)


def write_credentials(agent_dir: Path, creds: Credentials, lb_url: str) -> dict[str, Path]:
    from pyk3s.api.certs import write_kubeconfig, write_private

    tls = ensure_private_dir(agent_dir / "tls")
    b = creds.body
    paths = {"client_cert": tls / "client-kubelet.crt", "client_key": tls / "client-kubelet.key",
             "serving_cert": tls / "kubelet.crt", "serving_key": tls / "kubelet.key",
             "server_ca": tls / "server-ca.crt", "client_ca": tls / "client-ca.crt",
             "kubeconfig": agent_dir / "kubelet.kubeconfig"}
    for key, field in (("client_cert", "clientCert"), ("client_key", "clientKey"), ("serving_cert", "servingCert"),
                       ("serving_key", "servingKey"), ("server_ca", "serverCA"), ("client_ca", "clientCA")):
        write_private(paths[key], b[field].encode())
    write_kubeconfig(paths["kubeconfig"], lb_url, creds.ca_pem, b["clientCert"].encode(), b["clientKey"].encode())
    return paths


class ServerLoadBalancer:
    """A local TCP proxy to the API servers: every connection goes to the server in use; when that one
    refuses or stops answering its health check, the next known server takes over and the connections
    to the dead one are closed so their clients reconnect (watches resume through the new server)."""

    def __init__(self, servers: list[tuple[str, int]], host: str = "127.0.0.1", port: int = 6444) -> None:
        self.configured = list(servers)
        self.servers = list(servers)
        self.active = servers[0]
        self.host, self.port = host, port
        self._server: asyncio.AbstractServer | None = None
        self._conns: dict[tuple[str, int], set[asyncio.StreamWriter]] = {}

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def set_learned(self, learned: list[tuple[str, int]]) -> None:
        merged = list(dict.fromkeys([*self.configured, *learned]))
        if merged != self.servers:
            log.info("agent lb: servers %s", ", ".join(f"{h}:{p}" for h, p in merged))
            self.servers = merged

    def _candidates(self) -> list[tuple[str, int]]:
        return [self.active, *(s for s in self.servers if s != self.active)]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("agent lb: listening on %s:%d, using %s:%d", self.host, self.port, *self.active)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conns in self._conns.values():
            for w in list(conns):
                w.close()

    async def _connect(self) -> tuple[tuple[str, int], asyncio.StreamReader, asyncio.StreamWriter] | None:
        for target in self._candidates():
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                continue
            if target != self.active:
                log.warning("agent lb: server %s:%d unreachable; now using %s:%d", *self.active, *target)
                self.active = target
            return target, r, w
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = await self._connect()
        if got is None:
            writer.close()
            return
        target, up_r, up_w = got
        conns = self._conns.setdefault(target, set())
        conns.update((writer, up_w))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    dst.close()

        try:
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        finally:
            conns.discard(writer)
            conns.discard(up_w)

    async def health(self) -> None:
        """Drop connections to the server in use once it stops accepting connections."""
        while True:
            await asyncio.sleep(HEALTH_SECONDS)
            target = self.active
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT)
                w.close()
                continue
            except (OSError, TimeoutError):
                pass
            if await self._connect() is None:
                continue
            for w in list(self._conns.pop(target, ())):
                w.close()


async def learn_servers(client: Any, lb: ServerLoadBalancer) -> None:
    """Every API server address in the ``kubernetes`` Endpoints (each HA server adds its own)."""
    res = client.resource("v1", "endpoints")
    while True:
        try:
            ep = await res.get("kubernetes", "default")
            learned = [(a["ip"], int(p["port"])) for s in ep.get("subsets") or []
                       for a in s.get("addresses") or [] for p in s.get("ports") or [] if p.get("name") == "https"]
            lb.set_learned(learned)
        except Exception as exc:  # noqa: BLE001 - the next poll retries; the LB keeps what it knows
            log.debug("agent lb: reading the kubernetes endpoints failed: %s", exc)
        await asyncio.sleep(ENDPOINTS_POLL_SECONDS)


async def run_joined_agent(f: Any, data_dir: Path) -> None:
    from pyk3s.agent.node import detect_node_ip, ensure_node_password, resolve_node_name
    from pyk3s.agent.run import AgentCerts, AgentSettings, run_agent
    from pyk3s.client import Client

    agent_dir = ensure_private_dir(data_dir / "agent")
    ident = resolve_node_name(f.node_name or None, f.with_node_id, agent_dir)
    node_ips = list(f.node_ip or []) or [detect_node_ip()]
    servers = parse_servers(f.server or "")
    token = _token(f)
    password = ensure_node_password(agent_dir)
    server, creds = await join(servers, token, ident.name, password, [*node_ips, *(f.node_external_ip or [])])
    log.info("agent: joined through %s as node %s", _url(server, ""), ident.name)
    lb = ServerLoadBalancer([server, *(s for s in servers if s != server)], port=int(f.lb_server_port))
    await lb.start()
    paths = write_credentials(agent_dir, creds, lb.url)
    cfg = creds.body.get("config") or {}
    settings = AgentSettings(
        data_dir=data_dir, node_name=ident.name, with_node_id=False, node_ips=tuple(node_ips),
        node_external_ips=tuple(f.node_external_ip or ()),
        cluster_cidrs=tuple(cfg.get("clusterCIDRs") or ("10.42.0.0/16",)),
        service_cidrs=tuple(cfg.get("serviceCIDRs") or ("10.43.0.0/16",)),
        cluster_dns=tuple(cfg.get("clusterDNS") or ("10.43.0.10",)),
        cluster_domain=cfg.get("clusterDomain") or "cluster.local", resolv_conf=f.resolv_conf or "",
        bridge_name=f.bridge_name, kubelet_port=int(f.kubelet_port), node_labels=tuple(f.node_label or ()),
        node_taints=tuple(f.node_taint or ()), flannel_backend=f.flannel_backend,
        # as in K3s, the server's --disable-network-policy applies to the agents that join it
        disable_network_policy=bool(f.disable_network_policy or cfg.get("disableNetworkPolicy")))
    certs = AgentCerts(serving_cert=str(paths["serving_cert"]), serving_key=str(paths["serving_key"]),
                       client_ca=str(paths["client_ca"]), cluster_ca=str(paths["server_ca"]))
    client = Client.from_kubeconfig(paths["kubeconfig"])
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(lb.health(), name="lb health")
            tg.create_task(learn_servers(client, lb), name="lb servers")
            tg.create_task(run_agent(settings, client, certs), name="agent")
    finally:
        await client.close()
        await lb.stop()


def _token(f: Any) -> str:
    token = f.token or ""
    if f.token_file:
        try:
            token = Path(f.token_file).read_text().strip()
        except OSError as err:
            raise JoinError(f"--token-file {f.token_file}: {err.strerror}") from None
    if not token:
        raise JoinError("--token is required")
    try:
        parse_token(token)
    except ValueError as err:
        raise JoinError(f"--{err}") from None
    return token


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def main(argv: list[str]) -> int:
    if any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in argv):
        from pyk3s.agent.cli import main as kubeconfig_main

        return kubeconfig_main(argv)
    f = parse_flags("pyk3s agent", "Run a pyk3s node agent that joins a server", AGENT_ALL_FLAGS, argv)
    from .server import setup_logging

    setup_logging(f.debug)
    try:
        if not f.server:
            raise JoinError("--server is required")
        parse_servers(f.server)
        _token(f)
    except JoinError as err:
        print(f"pyk3s agent: {err}", file=sys.stderr)
        return 1
    data_dir = Path(f.data_dir or default_data_dir()).expanduser().absolute()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        await run_joined_agent(f, data_dir)

    from pyk3s.agent.cni.ipcmd import CniError
    from pyk3s.agent.node import NodeError

    try:
        asyncio.run(runner())
    except (asyncio.CancelledError, KeyboardInterrupt):
        log.info("pyk3s agent stopped")
    except BaseException as exc:  # noqa: BLE001 - report the first real cause, by its message
        err = _first_error(exc)
        if isinstance(err, JoinError | NodeError | CniError | OSError):
            print(f"pyk3s agent: {err}", file=sys.stderr)
            return 1
        if isinstance(err, asyncio.CancelledError | KeyboardInterrupt):
            return 0
        raise
    return 0
