"""`pyk3s agent`: parse the flags, print what went wrong, and run :mod:`pyk3s.agent`.

* ``pyk3s agent --server https://<addr>:6443 --token <token>`` joins a cluster
  (:mod:`pyk3s.agent.join`), as K3s's agent does.
* ``pyk3s agent --kubeconfig FILE`` runs against the API server of a kubeconfig, without joining: the
  cluster network (``--cluster-cidr``, ``--service-cidr``, ``--cluster-dns``, ``--cluster-domain``)
  and the kubelet's certificates (``--kubelet-cert``, ``--kubelet-key``, ``--client-ca``) are given
  by hand.

Both read the one flag table of :mod:`pyk3s.cli.flag_tables`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from pyk3s.agent.checkconfig import CheckSettings
from pyk3s.agent.cni.ipcmd import CniError
from pyk3s.agent.config import NodeConfig
from pyk3s.agent.join import JoinError, parse_servers, run_joined_agent
from pyk3s.agent.node import NodeError
from pyk3s.agent.run import AgentCerts, run_agent
from pyk3s.client import Client
from pyk3s.k3s.network import ClusterNetwork
from pyk3s.k3s.paths import default_data_dir
from pyk3s.k3s.token import parse_token, read_token_flags

from .check_config import refuse_start
from .flag_tables import AGENT_FLAGS, AGENT_KUBECONFIG_FLAGS
from .flags import Parsed, parse_flags
from .logs import setup_logging
from .running import run_until_signal

__all__ = ["main"]

log = logging.getLogger("pyk3s.agent.join")


def _token(f: Parsed) -> str:
    try:
        token = read_token_flags(f.token or "", f.token_file or "")
    except ValueError as err:
        raise JoinError(str(err)) from None
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


def _data_dir(f: Parsed) -> Path:
    return Path(f.data_dir or default_data_dir()).expanduser().absolute()


async def _run_with_kubeconfig(f: Parsed) -> None:
    node = NodeConfig.from_flags(f.values, _data_dir(f))
    network = ClusterNetwork.given(f.cluster_cidr, f.service_cidr, f.cluster_dns, f.cluster_domain, agent_config={
        "flannelBackend": f.flannel_backend, "flannelExternalIP": f.flannel_external_ip,
        "flannelIPv6Masq": f.flannel_ipv6_masq})
    certs = AgentCerts(f.kubelet_cert or "", f.kubelet_key or "", f.client_ca or "", f.client_ca or "")
    client = Client.from_env(f.kubeconfig or None)
    try:
        await run_agent(node.agent_settings(network, is_server=False), client, certs)
    finally:
        await client.close()


def _run(agent: Callable[[], Awaitable[None]]) -> int:
    try:
        run_until_signal(agent)
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


def main(argv: list[str]) -> int:
    if any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in argv):
        f = parse_flags("pyk3s agent", "Run a pyk3s node agent against the API server of a kubeconfig",
                        AGENT_KUBECONFIG_FLAGS, argv)
        setup_logging(f.debug)
        if refuse_start(agent_check_settings(NodeConfig.from_flags(f.values, _data_dir(f))), "pyk3s agent"):
            return 1
        return _run(lambda: _run_with_kubeconfig(f))
    f = parse_flags("pyk3s agent", "Run a pyk3s node agent that joins a server", AGENT_FLAGS, argv)
    setup_logging(f.debug)
    try:
        if not f.server:
            raise JoinError("--server is required")
        servers = parse_servers(f.server)
        token = _token(f)
    except JoinError as err:
        print(f"pyk3s agent: {err}", file=sys.stderr)
        return 1
    node = NodeConfig.from_flags(f.values, _data_dir(f))
    if refuse_start(agent_check_settings(node), "pyk3s agent"):
        return 1
    return _run(lambda: run_joined_agent(node, servers, token, int(f.lb_server_port)))


def agent_check_settings(node: NodeConfig) -> CheckSettings:
    """The start-up checks of a node agent: what it cannot run without (root, nft, ip, nf_tables nat, its
    data dir). The cluster's CIDRs come from the server later, and the agent compares them with the
    host's routes itself then; its ports are checked after the server has accepted the node (a node
    name already registered is the clearer error)."""
    return CheckSettings(
        data_dir=node.data_dir, server=False, agent=True, kubelet_port=0, ingress=False,
        cluster_cidrs=(), service_cidrs=(), bridge_name=node.bridge_name,
        container_runtime=node.runtime.mode, runtime_endpoint=node.runtime.endpoint,
    )
