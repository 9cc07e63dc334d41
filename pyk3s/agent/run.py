"""The agent: node registration + heartbeats, pod networking, kubelet (+ its HTTPS API) and the
nftables service proxy, all against one API client. ``run_agent`` runs until cancelled; on the way out
it stops this node's process pods and removes its nftables table, unless containerd's pods keep running
(as K3s leaves them): then their Services keep working until the next start adopts them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyk3s.agent.cni.bridge import BridgeConfig, check_route_overlap, ensure_bridge
from pyk3s.agent.cni.ipam import HostLocalIpam
from pyk3s.agent.cni.ipcmd import CniError
from pyk3s.agent.cri.settings import ContainerdPaths, RuntimeSettings
from pyk3s.agent.kubelet.dnsfiles import node_resolv_conf
from pyk3s.agent.kubelet.kubelet import Kubelet, delete_pod_now, write_pod_status
from pyk3s.agent.kubelet.server import KubeletServer, server_ssl_context
from pyk3s.agent.kubelet.volumes import VolumeSources
from pyk3s.agent.kubelet.worker import KubeletContext, PodWorker
from pyk3s.agent.netpol.controller import NetpolController, netpol_table_for
from pyk3s.agent.node import NodeAgent, detect_node_ip, node_labels, resolve_node_name
from pyk3s.agent.overlay.config import (
    OverlaySettings,
    ipv6_available,
    node_families,
    order_node_ips,
    prepare_overlay,
    start_overlay,
)
from pyk3s.agent.overlay.model import NodeProblem, family_of
from pyk3s.agent.proxy.apply import delete_table
from pyk3s.agent.proxy.compile import FAMILY, ProxyConfig
from pyk3s.agent.proxy.proxier import Proxier
from pyk3s.client import ApiError, NotFound
from pyk3s.client.informer import Informer
from pyk3s.k3s.network import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_CLUSTER_DNS,
    DEFAULT_CLUSTER_DOMAIN,
    DEFAULT_SERVICE_CIDR,
)

__all__ = ["AgentCerts", "AgentSettings", "nft_table_for", "run_agent"]

log = logging.getLogger("pyk3s.agent")


@dataclass(frozen=True, slots=True)
class AgentSettings:
    data_dir: Path
    node_name: str | None = None
    with_node_id: bool = False
    node_ips: tuple[str, ...] = ()
    node_external_ips: tuple[str, ...] = ()
    cluster_cidrs: tuple[str, ...] = (DEFAULT_CLUSTER_CIDR,)
    service_cidrs: tuple[str, ...] = (DEFAULT_SERVICE_CIDR,)
    cluster_dns: tuple[str, ...] = (DEFAULT_CLUSTER_DNS,)
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    resolv_conf: str = ""
    bridge_name: str = "pyk3s0"
    is_server: bool = False
    kubelet_port: int = 10250
    node_labels: tuple[str, ...] = ()
    node_taints: tuple[str, ...] = ()
    overlay: OverlaySettings = OverlaySettings()   # --flannel-backend, --flannel-iface, ...
    nft_table: str = ""             # default: nft_table_for(bridge_name)
    runtime: RuntimeSettings = RuntimeSettings()
    disable_network_policy: bool = False


@dataclass(frozen=True, slots=True)
class AgentCerts:
    serving_cert: str = ""
    serving_key: str = ""
    client_ca: str = ""          # CA whose client certs may call the kubelet API (the cluster CA)
    cluster_ca: str = ""         # ca.crt given to pods; defaults to client_ca


def nft_table_for(bridge_name: str) -> str:
    return "pyk3s" if bridge_name == "pyk3s0" else f"pyk3s-{bridge_name}"


def _taint(text: str) -> dict:
    kv, _, effect = text.partition(":")
    key, _, value = kv.partition("=")
    t = {"key": key, "effect": effect or "NoSchedule"}
    if value:
        t["value"] = value
    return t


async def _get_or_none(client: Any, plural: str, ns: str, name: str) -> dict | None:
    try:
        return await client.resource("v1", plural).get(name, ns)
    except NotFound:
        return None


def _cri_runtime(settings: AgentSettings) -> Any:
    """The CRI runtime the kubelet gets: the given endpoint, or pyk3s's own containerd when the binary is
    on PATH; None (process runtime only) otherwise."""
    import shutil

    rt = settings.runtime
    if not rt.enabled:
        return None
    if not rt.endpoint and shutil.which("containerd") is None:
        if rt.required:
            raise RuntimeError("agent: --container-runtime=containerd but containerd is not on PATH "
                               "(install containerd and runc, or give --container-runtime-endpoint)")
        log.info("agent: containerd is not on PATH: pods run only with built-in images "
                 "(install containerd and runc, or give --container-runtime-endpoint)")
        return None
    from pyk3s.agent.cri.runtime import CriRuntime

    return CriRuntime(rt, rt.endpoint or str(ContainerdPaths(Path(settings.data_dir)).socket))


def _pod_worker(ctx: KubeletContext, pod: dict) -> PodWorker:
    """The worker of the runtime the pod gets (see :func:`pyk3s.agent.cri.runtime.pick_runtime`)."""
    from pyk3s.agent.cri.runtime import pick_runtime

    kind, handler = pick_runtime(pod, ctx.cri, ctx.runtime_handlers())
    if kind == "cri":
        from pyk3s.agent.cri.worker import CriPodWorker

        return CriPodWorker(ctx, pod, ctx.cri, handler)
    return PodWorker(ctx, pod)


async def run_agent(settings: AgentSettings, client: Any, certs: AgentCerts | None = None) -> None:
    agent_dir = Path(settings.data_dir) / "agent"
    agent_dir.mkdir(parents=True, exist_ok=True)
    ident = resolve_node_name(settings.node_name, settings.with_node_id, agent_dir)
    for w in ident.warnings:
        log.warning("%s", w)
    name = ident.name
    settings.overlay.check()
    underlay, node_ips = await prepare_overlay(settings.overlay, settings.node_ips)
    internal = order_node_ips(node_ips or [detect_node_ip()], settings.cluster_cidrs)
    families, ipv6_problem = node_families(settings.cluster_cidrs, ipv6_available())
    if not families:
        raise CniError(f"agent: cluster-cidr {','.join(settings.cluster_cidrs)} is IPv6 only, but {ipv6_problem}")
    cluster_cidrs = tuple(c for c in settings.cluster_cidrs if family_of(c) in families)
    service_cidrs = tuple(c for c in settings.service_cidrs if family_of(c) in families)
    cluster_cidr = cluster_cidrs[0]
    await check_route_overlap(BridgeConfig(settings.bridge_name, cluster_cidr, cluster_cidrs, service_cidrs))

    resolv = node_resolv_conf(settings.resolv_conf, agent_dir)
    certs = certs or AgentCerts()
    ca_crt = ""
    for p in (certs.cluster_ca, certs.client_ca):
        if p:
            ca_crt = Path(p).read_text()  # noqa: ASYNC240 - small local file / adopted pid poll
            break

    pods_inf = Informer(client.resource("v1", "pods"), field_selector=f"spec.nodeName={name}")
    rc_inf = Informer(client.resource("node.k8s.io/v1", "runtimeclasses"))
    svc_inf = Informer(client.resource("v1", "services"))
    slice_inf = Informer(client.resource("discovery.k8s.io/v1", "endpointslices"))
    nodes_inf = Informer(client.resource("v1", "nodes"))

    async def token(ns: str, sa: str, expiration: int) -> str:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [], "expirationSeconds": expiration}}
        try:
            res = await client.call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", body=body)
            return res["status"]["token"]
        except (ApiError, KeyError) as exc:
            log.warning("kubelet: token request for %s/%s failed: %s", ns, sa, exc)
            return ""

    async def cm(ns: str, n: str) -> dict | None:
        return await _get_or_none(client, "configmaps", ns, n)

    async def sec(ns: str, n: str) -> dict | None:
        return await _get_or_none(client, "secrets", ns, n)

    async def status_writer(pod: dict, status: dict) -> None:
        await write_pod_status(client, pod, status)

    async def deleter(pod: dict) -> None:
        await delete_pod_now(client, pod)

    async def recorder(pod: dict, type_: str, reason: str, message: str) -> None:
        await client.record_event({**pod, "apiVersion": "v1", "kind": "Pod"}, type=type_, reason=reason,
                                  message=message, component="kubelet", host=name)

    async def policy_recorder(obj: dict, type_: str, reason: str, message: str) -> None:
        await client.record_event(obj, type=type_, reason=reason, message=message, component="pyk3s-netpol",
                                  host=name)

    netpol = None if settings.disable_network_policy else NetpolController.for_node(
        client, name, settings.bridge_name, record=policy_recorder)

    ctx = KubeletContext(
        node_name=name, pods_dir=agent_dir / "pods", host_ip=internal[0], bridge=None, ipam=None,
        host_ips=tuple(internal),
        cluster_dns=settings.cluster_dns, cluster_domain=settings.cluster_domain, node_resolv=resolv.read_text(),
        sources=VolumeSources(cm, sec, token, ca_crt), services=svc_inf.list, config_map=cm, secret=sec,
        write_status=status_writer, delete_pod=deleter, record_event=recorder,
        admit_network=netpol.admit if netpol is not None else None)
    ctx.runtime_handlers = lambda: {o["metadata"]["name"]: o.get("handler", "") for o in rc_inf.list()}
    cri = _cri_runtime(settings)
    ctx.cri = cri
    if cri is not None:
        ctx.worker_factory = _pod_worker
    kubelet = Kubelet(ctx, client, pods_inf)
    server = KubeletServer(kubelet)
    ssl_ctx = server_ssl_context(certs.serving_cert, certs.serving_key, certs.client_ca or None) \
        if certs.serving_cert else None
    if ssl_ctx is None:
        log.warning("agent: kubelet API on port %s without TLS (no serving certificate given)", settings.kubelet_port)
    port = await server.start(internal[0], settings.kubelet_port, ssl_ctx)

    table = settings.nft_table or nft_table_for(settings.bridge_name)
    runtime_tasks: list[asyncio.Task[None]] = []

    async def node_event(type_: str, reason: str, message: str) -> None:
        try:
            node = await client.resource("v1", "nodes").get(name)
            await client.record_event({**node, "apiVersion": "v1", "kind": "Node"}, type=type_, reason=reason,
                                      message=message, component="kubelet", host=name)
        except ApiError as exc:
            log.warning("kubelet: event %s on node %s: %s", reason, name, exc)

    def live_pods() -> set[str]:
        """Pods this node still runs: their sandboxes of an earlier run are adopted, the others removed."""
        return set(kubelet.workers) | {p["metadata"]["uid"] for p in pods_inf.list()
                                       if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                                       and not p["metadata"].get("deletionTimestamp")}

    async def clean_old_sandboxes() -> None:
        from pyk3s.agent.cri.runtime import cleanup_sandboxes

        await pods_inf.wait_synced()
        await cleanup_sandboxes(cri, name, live_pods)
    try:
        node_agent = NodeAgent(client, name, agent_dir=agent_dir, cluster_cidr=cluster_cidr, internal=internal,
                               external=settings.node_external_ips,
                               labels=node_labels(name, settings.is_server, settings.node_labels),
                               taints=[_taint(t) for t in settings.node_taints], kubelet_port=port)
        node = await node_agent.register()
        pod_cidrs = [c for c in node["spec"].get("podCIDRs") or [node["spec"]["podCIDR"]] if family_of(c) in families]
        await nodes_inf.start()
        await nodes_inf.wait_synced()
        overlay = await start_overlay(client, settings.overlay, node=node, nodes=nodes_inf.list(), underlay=underlay,
                                      families=families, cluster_cidrs=cluster_cidrs, bridge=settings.bridge_name,
                                      external_ips=settings.node_external_ips)
        if ipv6_problem:
            overlay.sync.start_problems.append(NodeProblem(name, "IPv6Unavailable", (
                f"cluster-cidr {','.join(settings.cluster_cidrs)} has IPv6, but on node {name} {ipv6_problem}: "
                "its pods get IPv4 addresses only")))
        bridge = BridgeConfig(settings.bridge_name, pod_cidrs[0], cluster_cidrs, service_cidrs,
                              extra_pod_cidrs=tuple(pod_cidrs[1:]), mtu=overlay.pod_mtu)
        await ensure_bridge(bridge)
        ctx.bridge = bridge
        ctx.ipam = HostLocalIpam(agent_dir / "ipam" / settings.bridge_name, pod_cidrs[0], tuple(pod_cidrs[1:]))
        if cri is not None:
            from pyk3s.agent.cri.runtime import run_image_gc, start_runtime

            runtime_tasks += [
                asyncio.create_task(start_runtime(cri, Path(settings.data_dir), bridge, ctx.ipam.dir),
                                    name="containerd"),
                asyncio.create_task(clean_old_sandboxes(), name="old sandboxes"),
                asyncio.create_task(run_image_gc(cri, Path(settings.data_dir), node_event), name="image gc")]
        await delete_table("ip", table)   # the IPv4-only table of earlier releases
        proxier = Proxier(ProxyConfig(name, cluster_cidrs, service_cidrs, settings.bridge_name, table,
                                      masquerade_ipv6=settings.overlay.ipv6_masq,
                                      node_addresses=(*internal, *settings.node_external_ips),
                                      pod_gateways=tuple(gw for gw, _ in bridge.gateways())),
                          svc_inf, slice_inf, pods_inf)
        for inf in (pods_inf, svc_inf, slice_inf, rc_inf):
            await inf.start()
        if netpol is None:  # switched off: rules left by an earlier run go
            await delete_table("inet", netpol_table_for(settings.bridge_name), component="netpol")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(node_agent.heartbeat(), name="node heartbeat")
            tg.create_task(kubelet.run(), name="kubelet")
            tg.create_task(proxier.run(), name="proxy")
            if netpol is not None:
                tg.create_task(netpol.run(), name="network policy")
            tg.create_task(overlay.sync.run(nodes_inf), name="overlay")
    finally:
        for task in runtime_tasks:
            task.cancel()
        if cri is not None:
            await cri.close()
        for inf in (pods_inf, svc_inf, slice_inf, rc_inf, nodes_inf):
            try:
                await inf.stop()
            except Exception:  # noqa: BLE001, S110 - best effort on the way out
                pass
        await server.stop()
        if kubelet.left_running:
            # the pods left running keep their Services and their network policies until the next agent
            # start replaces the rules
            log.info("agent: %d pod(s) keep running under containerd; `pyk3s killall` stops them",
                     kubelet.left_running)
        else:
            await delete_table(FAMILY, table)
            if netpol is not None:  # the pods it guarded were stopped above
                await netpol.delete_table()
