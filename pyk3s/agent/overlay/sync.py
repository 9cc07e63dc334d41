"""The overlay's control loop on one node: Nodes in, kernel state and events out.

Start-up (:meth:`OverlaySync.start`): wait for this Node, let the backend make its devices, and publish
this node's annotations (and, with ``--flannel-external-ip``, its external IPs as the
``public-ip-overwrite`` annotations). Then, on every Node change and at least every 30 s: shrink the
Nodes to peers, check how each peer's address is reached, let the backend plan, apply the difference to
the kernel, re-publish this node's annotations if someone changed them, and record each new problem
once as a Warning event on the Node it is about. Nodes that join or leave therefore update every other
node's tunnel entries within one pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pyk3s.agent.cni.ipcmd import CniError

from .backend import LocalNode, OverlayBackend
from .kernel import apply_plan, flush
from .model import (
    BACKEND_DATA,
    BACKEND_V6_DATA,
    PUBLIC_IP_OVERWRITE,
    PUBLIC_IPV6_OVERWRITE,
    Family,
    NodeProblem,
    Peer,
    family_of,
    peers_from_nodes,
    vtep_mac,
)
from .underlay import reach_all

__all__ = ["OverlaySync"]

log = logging.getLogger("pyk3s.agent.overlay")
RESYNC_SECONDS = 30.0
RETRY_SECONDS = 3.0



class OverlaySync:
    def __init__(self, client: Any, backend: OverlayBackend, local: LocalNode, *, external_ips: Sequence[str] = (),
                 use_external_ip: bool = False, component: str = "pyk3s-overlay") -> None:
        self.client, self.backend, self.local = client, backend, local
        self.external_ips = tuple(external_ips) if use_external_ip else ()
        self.component = component
        self.nodes_api = client.resource("v1", "nodes")
        self.reported: dict[tuple[str, str], str] = {}
        self.want_annotations: dict[str, str] = {}
        self.start_problems: list[NodeProblem] = []     # found by prepare: reported as long as the agent runs
        self.passes = 0

    # -- start-up ---------------------------------------------------------------------------------
    def _overwrites(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for addr in self.external_ips:
            key = PUBLIC_IP_OVERWRITE if family_of(addr) == 4 else PUBLIC_IPV6_OVERWRITE
            out.setdefault(key, addr)
        return out

    async def start(self, node: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> list[NodeProblem]:
        """Make the devices and publish this node's annotations; the problems found on the way."""
        ann = dict((node.get("metadata") or {}).get("annotations") or {})
        ann.update(self._overwrites())
        public: dict[Family, str] = {}
        for fam, key in ((4, PUBLIC_IP_OVERWRITE), (6, PUBLIC_IPV6_OVERWRITE)):
            if ann.get(key):
                public[fam] = ann[key]
        taken: dict[str, str] = {}
        for other in others:
            oname = (other.get("metadata") or {}).get("name", "")
            if oname == self.local.name:
                continue
            oann = (other.get("metadata") or {}).get("annotations") or {}
            for key in (BACKEND_DATA, BACKEND_V6_DATA):
                mac = vtep_mac(oann.get(key, ""))
                if mac:
                    taken[mac] = oname
        self.local = replace(self.local, public_ips=public, stored=ann, taken_macs=taken,
                             created=(node.get("metadata") or {}).get("creationTimestamp", ""))
        published, problems = await self.backend.prepare(self.local)
        self.want_annotations = {**self._overwrites(), **published}
        self.start_problems = list(problems)
        await self._publish(node)
        return problems

    async def _publish(self, node: Mapping[str, Any]) -> None:
        have = (node.get("metadata") or {}).get("annotations") or {}
        diff = {k: v for k, v in self.want_annotations.items() if have.get(k) != v}
        if not diff:
            return
        await self.nodes_api.patch(self.local.name, {"metadata": {"annotations": diff}}, patch_type="merge")
        log.info("overlay: node %s publishes %s", self.local.name,
                 ", ".join(f"{k.rsplit('/', 1)[1]}={v}" for k, v in sorted(diff.items())))

    # -- one pass ----------------------------------------------------------------------------------
    def peers(self, nodes: Sequence[Mapping[str, Any]]) -> tuple[dict[Family, list[Peer]], list[NodeProblem]]:
        peers: dict[Family, list[Peer]] = {}
        problems: list[NodeProblem] = []
        for fam in self.local.families:
            peers[fam], probs = peers_from_nodes(nodes, self.local.name, fam, self.local.cluster_cidrs)
            problems += probs
        return peers, problems

    async def sync_once(self, nodes: Sequence[Mapping[str, Any]]) -> list[NodeProblem]:
        peers, problems = self.peers(nodes)
        problems = [*self.start_problems, *problems]
        reach = await reach_all(p.public_ip for ps in peers.values() for p in ps)
        problems += await self.backend.activate(self.local, {f for f, ps in peers.items() if ps})
        plan = self.backend.plan(self.local, peers, reach)
        problems += plan.problems
        failures = await apply_plan(plan, self.backend.devices())
        for f in failures:
            problems.append(NodeProblem(self.local.name, "OverlayProgrammingFailed", f"overlay: {f}"))
        me = next((n for n in nodes if (n.get("metadata") or {}).get("name") == self.local.name), None)
        if me is not None:
            try:
                await self._publish(me)
            except Exception as exc:  # noqa: BLE001 - the next pass publishes again
                log.warning("overlay: publishing node %s annotations failed: %s", self.local.name, exc)
        self.passes += 1
        return problems

    async def report(self, problems: Sequence[NodeProblem], nodes: Sequence[Mapping[str, Any]]) -> None:
        """Each problem once (again after it was gone), as a Warning event on its Node, and in the log."""
        by_name = {(n.get("metadata") or {}).get("name"): n for n in nodes}
        now = {(p.node, p.reason): p.message for p in problems}
        for (node_name, reason), message in sorted(now.items()):
            if self.reported.get((node_name, reason)) == message:
                continue
            log.warning("overlay: %s: %s", reason, message)
            node = by_name.get(node_name)
            if node is not None:
                await self.client.record_event({**node, "apiVersion": "v1", "kind": "Node"}, type="Warning",
                                               reason=reason, message=message, component=self.component,
                                               host=self.local.name)
        for key in set(self.reported) - set(now):
            log.info("overlay: %s on node %s is resolved", key[1], key[0])
        self.reported = now

    async def run(self, informer: Any) -> None:
        """Until cancelled; removes this node's routes and devices on the way out."""
        changed = asyncio.Event()
        informer.add_handler(lambda *_: changed.set())
        try:
            while True:
                changed.clear()
                nodes = informer.list()
                try:
                    problems = await self.sync_once(nodes)
                except CniError as exc:
                    problems = [NodeProblem(self.local.name, "OverlayProgrammingFailed", str(exc))]
                await self.report(problems, nodes)
                try:
                    async with asyncio.timeout(RETRY_SECONDS if problems else RESYNC_SECONDS):
                        await changed.wait()
                except TimeoutError:
                    pass
                await asyncio.sleep(0.05)   # fold a burst of Node updates into one pass
        finally:
            try:
                await flush()
                await self.backend.teardown()
            except CniError as exc:
                log.warning("overlay: cleanup failed: %s", exc)
