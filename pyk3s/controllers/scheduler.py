"""Scheduler: bind pods without ``spec.nodeName`` (schedulerName ``default-scheduler``) to a node.

Filters, in kube-scheduler's order; each node fails on the first one (its reason, and whether
preemption could help):

==================  ============================================================  ==============
plugin              reason                                                        preemption
==================  ============================================================  ==============
NodeUnschedulable   ``node(s) were unschedulable``                                not helpful
NodeName            ``node(s) didn't match the requested node name``              not helpful
TaintToleration     ``node(s) had untolerated taint {<key>: <value>}``            not helpful
NodeAffinity        ``node(s) didn't match Pod's node affinity/selector``         not helpful
NodePorts           ``node(s) didn't have free ports for the requested pod ports`` no victims
NodeResourcesFit    ``Too many pods``                                             no victims
==================  ============================================================  ==============

Node conditions act as NoSchedule taints (not Ready → ``node.kubernetes.io/not-ready``, Unknown →
``unreachable``), so DaemonSet pods, which tolerate them, still land on such nodes. Score: fewest
pods, then name. As in kube-scheduler, a chosen pod is *assumed* on its node at once (the next
decisions count it) and bound in the background, so one pod's Binding and Event never hold up the next
pod's decision; a failed binding forgets the pod and retries it with the queue's backoff. The failure message is ``FitError.Error()``: ``0/N nodes are available: <count>
<reason>, ... preemption: 0/N nodes are available: <count> <verdict>.`` with both lists sorted as
strings. Pods that already count on a node: bound there and not Succeeded/Failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyk3s.client import ApiError, NotFound, now_rfc3339
from pyk3s.client.controller import Result
from pyk3s.k3s.names import TAINT_UNSCHEDULABLE

from .common.loop import Loop
from .common.settings import ControllerSettings
from .objects import Obj, get_condition, is_deleting, key_of, name_of, namespace_of, set_condition, uid_of
from .placement import affinity_matches, effective_taints, tolerates, untolerated_taint
from .podutil import is_terminal

__all__ = ["NodeChoice", "SchedulerController", "filter_node", "host_ports", "schedule"]

log = logging.getLogger("pyk3s.controllers.scheduler")

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
UNSCHEDULABLE = "node(s) were unschedulable"
NODE_NAME = "node(s) didn't match the requested node name"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
PORTS = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"


@dataclass(frozen=True, slots=True)
class NodeChoice:
    node: str | None
    message: str = ""


def host_ports(pod: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) the pod claims on its node."""
    spec = pod.get("spec") or {}
    out = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            port = p.get("hostPort") or (p.get("containerPort") if spec.get("hostNetwork") else 0)
            if port:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(port)))
    return out


def _ports_conflict(want: Sequence[tuple[str, str, int]], used: Sequence[tuple[str, str, int]]) -> bool:
    for ip, proto, port in want:
        for uip, uproto, uport in used:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


def _allocatable_pods(node: Mapping[str, Any]) -> int | None:
    raw = ((node.get("status") or {}).get("allocatable") or {}).get("pods")
    try:
        return int(str(raw)) if raw is not None else None
    except ValueError:
        return None


def filter_node(pod: Mapping[str, Any], node: Mapping[str, Any], node_pods: Sequence[Obj]) -> tuple[str, bool] | None:
    """None if the pod fits, else (reason, preemption cannot help)."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable") and not any(
        tolerates(t, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}) for t in tolerations
    ):
        return UNSCHEDULABLE, True
    if spec.get("nodeName") and spec["nodeName"] != name_of(node):
        return NODE_NAME, True
    taint = untolerated_taint(effective_taints(node), tolerations, ("NoSchedule", "NoExecute"))
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}", True
    if not affinity_matches(spec, node):
        return AFFINITY, True
    want = host_ports(pod)
    if want and _ports_conflict(want, [hp for p in node_pods for hp in host_ports(p)]):
        return PORTS, False
    limit = _allocatable_pods(node)
    if limit is not None and len(node_pods) + 1 > limit:
        return TOO_MANY_PODS, False
    return None


def _histogram(counter: Counter[str]) -> str:
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counter.items()))


def schedule(pod: Mapping[str, Any], nodes: Sequence[Obj], pods_by_node: Mapping[str, Sequence[Obj]]) -> NodeChoice:
    if not nodes:
        return NodeChoice(None, "no nodes available to schedule pods")
    reasons: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    feasible: list[tuple[int, str]] = []
    for node in nodes:
        node_pods = pods_by_node.get(name_of(node), ())
        failed = filter_node(pod, node, node_pods)
        if failed is None:
            feasible.append((len(node_pods), name_of(node)))
            continue
        reason, unresolvable = failed
        reasons[reason] += 1
        verdicts[NOT_HELPFUL if unresolvable else NO_VICTIMS] += 1
    if feasible:
        return NodeChoice(min(feasible)[1])
    n = len(nodes)
    message = f"0/{n} nodes are available: {_histogram(reasons)}."
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        message += " preemption: not eligible due to preemptionPolicy=Never."
    else:
        message += f" preemption: 0/{n} nodes are available: {_histogram(verdicts)}."
    return NodeChoice(None, message)


class SchedulerController(Loop):
    name = "scheduler"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.pods = self.informer("v1", "pods")
        self.nodes = self.informer("v1", "nodes")
        self.pod_api = client.resource("v1", "pods")
        # Pods we bound whose binding the cache has not shown yet: key → node.
        self.assumed: dict[str, str] = {}
        self._binding_supported: bool | None = None
        self._binding: set[asyncio.Task[None]] = set()
        self.controller.watch(self.pods, self._pod_keys)
        self.controller.watch(self.nodes, lambda _n: self._pending_keys())
        self.pods.add_handler(self._on_pod)

    def _wants(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and (spec.get("schedulerName") or "default-scheduler") == self.settings.scheduler_name
            and not is_deleting(pod)
            and not is_terminal(pod)
        )

    def _pending_keys(self) -> list[str]:
        return [key_of(p) for p in self.pods.list() if self._wants(p) and key_of(p) not in self.assumed]

    def _pod_keys(self, pod: Obj) -> list[str]:
        return [key_of(pod)] if self._wants(pod) else []

    def _on_pod(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        if pod is None:
            return
        if new is not None and (new.get("spec") or {}).get("nodeName"):
            self.assumed.pop(key_of(new), None)
        freed = typ == "DELETED" or (new is not None and (is_terminal(new) or is_deleting(new)))
        if freed and (pod.get("spec") or {}).get("nodeName"):
            if typ == "DELETED":
                self.assumed.pop(key_of(pod), None)
            for key in self._pending_keys():
                self.controller.enqueue(key)

    def _pods_by_node(self) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for pod in self.pods.list():
            node = (pod.get("spec") or {}).get("nodeName") or self.assumed.get(key_of(pod))
            if node and not is_terminal(pod):
                out.setdefault(node, []).append(pod)
        return out

    async def reconcile(self, key: str) -> Result | None:
        pod = self.pods.get(key)
        if pod is None:
            self.assumed.pop(key, None)
            return None
        if not self._wants(pod) or key in self.assumed:
            return None
        decision = schedule(pod, self.nodes.list(), self._pods_by_node())
        if decision.node is None:
            await self._mark_unschedulable(pod, decision.message)
            return Result.after(30.0)
        self.assumed[key] = decision.node
        task = asyncio.create_task(self._bind_assumed(pod, decision.node), name=f"bind {key}")
        self._binding.add(task)
        task.add_done_callback(self._binding.discard)
        return None

    async def _bind_assumed(self, pod: Obj, node: str) -> None:
        key = key_of(pod)
        try:
            await self._bind(pod, node)
        except asyncio.CancelledError:
            raise
        except NotFound:
            self.assumed.pop(key, None)
            return
        except Exception as err:  # noqa: BLE001 - the pod goes back to the queue with backoff
            if self.assumed.get(key) == node:
                del self.assumed[key]
            delay = self.controller.queue.rate_limited(key)
            log.warning("scheduler: binding %s to %s failed (%s); retry in %.2fs", key, node, err, delay)
            return
        self.controller.queue.forget(key)
        try:
            await self.client.record_event(
                pod, reason="Scheduled", component="default-scheduler",
                message=f"Successfully assigned {namespace_of(pod)}/{name_of(pod)} to {node}",
            )
        except Exception as err:  # noqa: BLE001 - an event is best effort
            log.debug("scheduler: event Scheduled for %s not recorded: %s", key, err)

    async def stop(self) -> None:
        tasks, self._binding = self._binding, set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await super().stop()

    async def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        cond = get_condition(pod, "PodScheduled")
        if cond and cond.get("status") == "False" and cond.get("reason") == "Unschedulable" \
                and cond.get("message") == message:
            return
        status = dict(pod.get("status") or {})
        status.setdefault("phase", "Pending")
        status["conditions"] = set_condition(
            status.get("conditions") or [],
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message},
            now_rfc3339(), probe_fields=True,
        )
        await self.pod_api.update_status({**pod, "status": status})
        await self.client.record_event(pod, type="Warning", reason="FailedScheduling", message=message,
                                       component="default-scheduler")
        log.info("scheduler: %s: %s", key_of(pod), message)

    async def _bind(self, pod: Obj, node: str) -> None:
        ns, name = namespace_of(pod), name_of(pod)
        if self._binding_supported is not False:
            binding = {
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": uid_of(pod)},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            try:
                await self.client.call("POST", self.pod_api.path(ns, name, "binding"), body=binding)
                self._binding_supported = True
                return
            except ApiError as err:
                if err.status not in (404, 405) or self._binding_supported:
                    raise
                try:
                    await self.pod_api.get(name, ns)
                except NotFound:
                    raise err from None
                self._binding_supported = False
        bound = await self.pod_api.patch(name, {"spec": {"nodeName": node}}, ns)
        status = dict(bound.get("status") or {})
        status["conditions"] = set_condition(
            status.get("conditions") or [], {"type": "PodScheduled", "status": "True"}, now_rfc3339(), probe_fields=True
        )
        for c in status["conditions"]:
            if c["type"] == "PodScheduled":
                c.pop("reason", None)
                c.pop("message", None)
        await self.pod_api.update_status({**bound, "status": status})
