# ruff: noqa: ASYNC221, ASYNC240
"""run_agent against the real API server in-process (memory store): node registration, lease, pod
status through the API, ClusterIP/NodePort from EndpointSlices, graceful deletion and teardown."""

import asyncio
import ipaddress
import os
import shutil
import subprocess

import pytest
from pyk3s_server import ClusterNets

from pyk3s.agent.cri.settings import RuntimeSettings
from pyk3s.agent.run import AgentSettings, nft_table_for, run_agent
from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store import open_store
from pyk3s.client import Client, NotFound
from pyk3s.controllers.common.settings import ControllerSettings
from pyk3s.controllers.nodeipam import NodeIpamController

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

BRIDGE, NODE = "pkbrip", "pk-inproc"


async def until(pred, timeout=20.0):
    for _ in range(int(timeout / 0.1)):
        try:
            if await pred():
                return True
        except NotFound:
            pass
        await asyncio.sleep(0.1)
    return False


async def kubelet_api_checks(port, pod_ip):
    import aiohttp

    curl(f"http://{pod_ip}:8080/logged")
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{base}/containerLogs/default/who/w?tailLines=5") as r:
            assert r.status == 200
        async with http.get(f"{base}/containerLogs/default/who/nope") as r:
            assert r.status == 400
        url = f"{base}/exec/default/who/w?command=sh&command=-c&command=echo%20hi%3B%20cat%20/etc/hostname%20%3E/dev/null%3B%20exit%204&stdout=true&stderr=true"
        async with http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
            frames = [m.data async for m in ws]
    assert b"\x01hi\n" in frames
    status = [f for f in frames if f[:1] == b"\x03"][0]
    assert b"NonZeroExitCode" in status and b'"message": "4"' in status


def curl(url):
    return subprocess.run(["curl", "-s", "-m", "3", url], capture_output=True, text=True)


async def _has_cidr(nodes):
    return (await nodes.get(NODE)).get("spec", {}).get("podCIDR")


async def test_agent_in_process(tmp_path):
    store = open_store("memory://", tmp_path)
    nets = ClusterNets.pick()  # K3s's defaults unless another cluster on this machine routes them
    pod_cidr = str(next(ipaddress.ip_network(nets.cluster_cidr).subnets(new_prefix=24)))
    settings = AgentSettings(data_dir=tmp_path, node_name=NODE, node_ips=("127.0.0.1",), bridge_name=BRIDGE,
                             kubelet_port=0, cluster_cidrs=(nets.cluster_cidr,), service_cidrs=(nets.service_cidr,),
                             cluster_dns=(nets.cluster_dns,), runtime=RuntimeSettings(enabled=False))
    api = ApiServer(store, ApiConfig(service_cidrs=(nets.service_cidr,)))
    await api.start()
    client = Client.in_process(api)
    # the server's allocator hands out pod CIDRs; the agent waits for one
    ipam = asyncio.create_task(NodeIpamController(client, ControllerSettings(cluster_cidrs=(nets.cluster_cidr,))).run())
    agent = asyncio.create_task(run_agent(settings, client))
    pods = client.resource("v1", "pods")
    try:
        nodes = client.resource("v1", "nodes")
        async def registered():
            return (await nodes.get(NODE))["spec"].get("podCIDR")
        assert await until(registered), "node registered with a pod CIDR"
        assert await until(lambda: _has_cidr(nodes)), "podCIDR assigned"
        node = await nodes.get(NODE)
        assert node["spec"]["podCIDR"] == pod_cidr and node["spec"]["providerID"] == f"k3s://{NODE}"
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == NODE
        assert await until(lambda: client.resource("coordination.k8s.io/v1", "leases").get(NODE, "kube-node-lease"))
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "who", "namespace": "default", "labels": {"a": "b"}},
               "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5,
                        # this bare API server issues no tokens (and no controller makes ServiceAccounts)
                        "automountServiceAccountToken": False, "containers": [{
                   "name": "w", "image": "traefik/whoami", "args": ["--port", "8080"],
                   "ports": [{"containerPort": 8080}]}]}}
        await pods.create(pod, "default")

        async def running():
            p = await pods.get("who", "default")
            cs = (p.get("status") or {}).get("containerStatuses") or [{}]
            return p["status"].get("podIP") and cs[0].get("ready") and p
        assert await until(running), "pod running and ready"
        p = await pods.get("who", "default")
        ip = p["status"]["podIP"]
        port = (await nodes.get(NODE))["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        await kubelet_api_checks(port, ip)
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(pod_cidr)
        svc = await client.resource("v1", "services").create({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "who", "namespace": "default"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}], "selector": {"a": "b"}}}, "default")
        slices = client.resource("discovery.k8s.io/v1", "endpointslices")
        try:
            await slices.create({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                                 "metadata": {"name": "who-manual", "namespace": "default",
                                              "labels": {"kubernetes.io/service-name": "who"}},
                                 "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
                                 "endpoints": [{"addresses": [ip], "nodeName": NODE, "conditions": {"ready": True}}]},
                                "default")
        except Exception:  # noqa: BLE001 - an EndpointSlice controller may already have published it
            pass
        cip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]

        async def answers():
            return curl(f"http://{cip}/").stdout.startswith("Hostname: who")
        assert await until(answers), "ClusterIP answers"
        assert curl(f"http://127.0.0.1:{node_port}/").stdout.startswith("Hostname: who")

        await pods.delete("who", "default")

        async def gone():
            try:
                await pods.get("who", "default")
                return False
            except NotFound:
                return True
        assert await until(gone), "pod deleted after graceful termination"
        assert f"pk-{p['metadata']['uid'].replace('-', '')[:12]}" not in subprocess.run(
            ["ip", "netns"], capture_output=True, text=True).stdout
    finally:
        ipam.cancel()
        agent.cancel()
        await asyncio.gather(agent, return_exceptions=True)
        await api.stop()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        subprocess.run(["nft", "delete", "table", "inet", nft_table_for(BRIDGE)], capture_output=True)
    assert nft_table_for(BRIDGE) not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
