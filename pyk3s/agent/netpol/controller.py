"""The agent's NetworkPolicy controller: watch Pods (all nodes), Namespaces and NetworkPolicies, keep
the allow index (:mod:`pyk3s.netpol.index`) and program this node's nftables table from it.

Rules:
* Nothing is written before the three informers have synced; then the whole table is replaced in one
  transaction. Until then a restarted agent leaves its predecessor's table in place, so isolated pods
  are never open while it starts.
* Afterwards each burst of changes (a quiet ``debounce``, at most ``max_delay``) becomes one delta
  transaction: element and map updates, new or removed groups. A delta the kernel refuses is followed
  by a full replace.
* The kubelet calls :meth:`admit` once a pod has its address and before its containers start: the
  pod is programmed (isolated, if a policy selects it) before it can send or receive anything.
* A policy that cannot be read is enforced as "isolate, allow nothing" and reported with a Warning
  event; so are all policies if the kernel refuses the table (then every isolated pod only passes
  replies). A policy using SCTP on a node whose kernel has no SCTP gets a Warning event: those ports
  carry nothing there, its other rules are enforced.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pyk3s.agent.proxy.apply import NftError, delete_table, run_nft
from pyk3s.netpol.index import AllowIndex
from pyk3s.netpol.model import (
    PolicyError,
    fail_closed_policy,
    namespace_info,
    parse_policy,
    pod_info,
)

from .render import NetpolTable, delta_script, full_script

__all__ = ["NetpolController", "kernel_has_sctp", "netpol_table_for"]

log = logging.getLogger("pyk3s.agent.netpol")
COMPONENT = "pyk3s-netpol"
Recorder = Callable[[dict[str, Any], str, str, str], Awaitable[None]]


def netpol_table_for(bridge_name: str) -> str:
    return "pyk3s-netpol" if bridge_name == "pyk3s0" else f"pyk3s-netpol-{bridge_name}"


def kernel_has_sctp() -> bool:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
    except OSError:
        return False
    return True


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


class NetpolController:
    def __init__(self, client: Any, node_name: str, table: NetpolTable, *, informers: tuple[Any, Any, Any],
                 record: Recorder | None = None, debounce: float = 0.01, max_delay: float = 0.25,
                 sctp: bool | None = None) -> None:
        self.client = client
        self.node = node_name
        self.table = table
        self.pods, self.namespaces, self.policies = informers
        self.record = record
        self.debounce = debounce
        self.max_delay = max_delay
        self.sctp = kernel_has_sctp() if sctp is None else sctp
        self.index = AllowIndex(node_name)
        self.deny_only = False
        self._dirty = asyncio.Event()
        self._loaded = asyncio.Event()
        self._applied = asyncio.Condition()
        self._gen = 0  # index changes made
        self._applied_gen = 0  # index changes the kernel holds
        self._admitted: dict[str, tuple[str, tuple[str, ...]]] = {}  # pod key -> (uid, addresses) from the kubelet
        self._reported: set[tuple[str, str, str]] = set()  # (policy uid, generation/resourceVersion, reason)
        self._events: set[asyncio.Task[None]] = set()
        self.applies = 0
        self.last_apply_seconds = 0.0

    # -- events from the informers ----------------------------------------------------------------------

    def _changed(self) -> None:
        self._gen += 1
        self._dirty.set()

    def on_pod(self, typ: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        key = _key(obj)
        if typ == "DELETED" or new is None:
            self._admitted.pop(key, None)
            self.index.delete_pod(key)
        else:
            info = self._pod(new)
            if info is None:
                self.index.delete_pod(key)
            else:
                self.index.set_pod(info)
        self._changed()

    def _pod(self, obj: dict[str, Any]) -> Any:
        """The pod as the index sees it; an admitted pod keeps its address until its status has one."""
        key, uid = _key(obj), (obj.get("metadata") or {}).get("uid", "")
        status = obj.get("status") or {}
        admitted = self._admitted.get(key)
        if admitted is not None:
            if admitted[0] != uid:
                self._admitted.pop(key, None)
            elif not status.get("podIP") and status.get("phase") not in ("Succeeded", "Failed"):
                obj = {**obj, "status": {**status, "podIP": admitted[1][0],
                                         "podIPs": [{"ip": ip} for ip in admitted[1]]}}
            else:
                self._admitted.pop(key, None)
        return pod_info(obj)

    def on_namespace(self, typ: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if typ == "DELETED" or new is None:
            if old is not None:
                self.index.delete_namespace((old.get("metadata") or {}).get("name", ""))
        else:
            self.index.set_namespace(namespace_info(new))
        self._changed()

    def on_policy(self, typ: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if typ == "DELETED" or new is None:
            if old is not None:
                self.index.delete_policy(_key(old))
        else:
            try:
                policy = parse_policy(new)
            except PolicyError as err:
                policy = fail_closed_policy(new, err)
                self._report(new, "NetworkPolicyInvalid",
                             f"node {self.node}: {err}; the pods it selects are isolated and it allows nothing")
            self.index.set_policy(policy)
            if not self.sctp and _uses_sctp(new):
                self._report(new, "ProtocolNotSupported",
                             f"node {self.node}: the kernel has no SCTP, so this policy's SCTP ports carry "
                             "nothing on this node; its other ports are enforced")
        self._changed()

    # -- the kubelet's hook -----------------------------------------------------------------------------

    async def admit(self, pod: dict[str, Any], ips: tuple[str, ...], timeout: float = 10.0) -> None:
        """Program a new local pod with its addresses before its containers start (bounded wait)."""
        key, meta = _key(pod), pod.get("metadata") or {}
        newer = self.pods.get(key)
        if newer is not None and (newer.get("metadata") or {}).get("uid") == meta.get("uid"):
            pod = newer  # the informer's copy may carry newer labels than the kubelet's
        self._admitted[key] = (meta.get("uid", ""), tuple(ips))
        info = self._pod(pod)
        deadline = time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                await self._loaded.wait()
        except TimeoutError:
            log.warning("netpol: %s starts before this node's policy table was loaded", key)
            return
        if info is None:
            return
        self.index.set_pod(info)
        self._changed()
        target = self._gen
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                async with self._applied:
                    await self._applied.wait_for(lambda: self._applied_gen >= target)
        except TimeoutError:
            log.warning("netpol: rules for %s not applied within %.0fs; starting it anyway", key, timeout)

    @classmethod
    def for_node(cls, client: Any, node_name: str, bridge_name: str, *, record: Recorder | None = None,
                 **kwargs: Any) -> NetpolController:
        """A controller with its own informers (every pod, namespace and policy of the cluster)."""
        from pyk3s.client.informer import Informer

        informers = (Informer(client.resource("v1", "pods")), Informer(client.resource("v1", "namespaces")),
                     Informer(client.resource("networking.k8s.io/v1", "networkpolicies")))
        table = NetpolTable(netpol_table_for(bridge_name), bridge_name)
        return cls(client, node_name, table, informers=informers, record=record, **kwargs)

    # -- programming the kernel -------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the informers, load the table once they synced, then apply changes until cancelled
        (the informers stop with it; the table stays: see :meth:`delete_table`)."""
        self.pods.add_handler(self.on_pod)
        self.namespaces.add_handler(self.on_namespace)
        self.policies.add_handler(self.on_policy)
        try:
            for inf in (self.pods, self.namespaces, self.policies):
                await inf.start()
            for inf in (self.pods, self.namespaces, self.policies):
                await inf.wait_synced()
            await self._program()
        finally:
            for inf in (self.pods, self.namespaces, self.policies):
                try:
                    await inf.stop()
                except Exception:  # noqa: BLE001, S110 - best effort on the way out
                    pass

    async def _program(self) -> None:
        backoff = 0.5
        while not self._loaded.is_set():
            try:
                await self._full()
                self._loaded.set()
            except NftError as err:
                log.error("%s; retrying in %.1fs", err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty.wait()
            # a burst (a chart's policies, a rollout's pods) is folded into one transaction: wait for a
            # quiet ``debounce``, but never longer than ``max_delay`` after its first change
            first = loop.time()
            while True:
                self._dirty.clear()
                await asyncio.sleep(self.debounce)
                if not self._dirty.is_set() or loop.time() - first >= self.max_delay:
                    break
            self._dirty.clear()
            try:
                await self._delta()
            except NftError as err:
                log.warning("%s; replacing the whole table", err)
                try:
                    await self._full()
                except NftError as err2:
                    log.error("%s; retrying", err2)
                    await asyncio.sleep(1.0)
                    self._dirty.set()

    async def _delta(self) -> None:
        gen = self._gen
        if self.deny_only:
            await self._full()
            return
        delta = self.index.take_delta()
        if not delta.empty:
            start = time.monotonic()
            try:
                await run_nft(delta_script(self.table, delta), component="netpol")
            except NftError:
                raise
            self.applies += 1
            self.last_apply_seconds = time.monotonic() - start
        await self._mark(gen)

    async def _full(self) -> None:
        gen = self._gen
        state = self.index.state()
        start = time.monotonic()
        try:
            await run_nft(full_script(self.table, state), component="netpol")
            if self.deny_only:
                log.info("netpol: the kernel accepts the policy sets again")
            self.deny_only = False
        except NftError as err:
            # the kernel refused the sets: isolated pods pass nothing but replies, and every policy says so
            await run_nft(full_script(self.table, state, deny_only=True), component="netpol")
            if not self.deny_only:
                log.error("%s; every pod selected by a policy now accepts and sends nothing but replies", err)
                for obj in self.policies.list():
                    self._report(obj, "NetworkPolicyNotProgrammed",
                                 f"node {self.node}: the kernel refused the policy rules ({err}); the pods this "
                                 "policy selects on this node pass nothing but replies")
            self.deny_only = True
        self.index.mark_applied()
        self.applies += 1
        self.last_apply_seconds = time.monotonic() - start
        await self._mark(gen)

    async def _mark(self, gen: int) -> None:
        async with self._applied:
            self._applied_gen = max(self._applied_gen, gen)
            self._applied.notify_all()

    async def delete_table(self) -> None:
        await delete_table(self.table.family, self.table.name, component="netpol")

    # -- events -----------------------------------------------------------------------------------------

    def _report(self, obj: dict[str, Any], reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        mark = (meta.get("uid", ""), str(meta.get("generation") or meta.get("resourceVersion") or ""), reason)
        log.warning("netpol: NetworkPolicy %s: %s", _key(obj), message)
        if mark in self._reported or self.record is None:
            return
        self._reported.add(mark)
        task = asyncio.get_running_loop().create_task(self._send(obj, reason, message))
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    async def _send(self, obj: dict[str, Any], reason: str, message: str) -> None:
        assert self.record is not None
        try:
            await self.record({**obj, "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"},
                              "Warning", reason, message)
        except Exception as exc:  # noqa: BLE001 - an event is best effort
            log.debug("netpol: event %s not recorded: %s", reason, exc)


def _uses_sctp(obj: dict[str, Any]) -> bool:
    spec = obj.get("spec") or {}
    for key in ("ingress", "egress"):
        for rule in spec.get(key) or []:
            for port in (rule or {}).get("ports") or []:
                if (port or {}).get("protocol") == "SCTP":
                    return True
    return False
