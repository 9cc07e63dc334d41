"""Namespace controller: empty a Terminating namespace, then finalize it (spec 6.8).

For a namespace with ``deletionTimestamp`` and ``kubernetes`` in ``spec.finalizers``: delete every
object of every served namespaced resource in it (discovery, so CRDs count), list again, report on
the status conditions as upstream (``NamespaceDeletionDiscoveryFailure``,
``NamespaceDeletionGroupVersionParsingFailure``, ``NamespaceDeletionContentFailure``,
``NamespaceContentRemaining`` with ``<resource>.<group> has N resource instances``,
``NamespaceFinalizersRemaining`` with ``<finalizer> in N resource instances``) and look again
shortly while anything is left. When nothing is left: ``PUT namespaces/<n>/finalize`` without
``kubernetes``; the API server then removes the namespace.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from typing import Any

from pyk3s.client import ApiError, NotFound, now_rfc3339
from pyk3s.client.controller import Result

from .common.loop import Loop
from .common.settings import ControllerSettings
from .discovery import ApiResource, discover
from .objects import Obj, deep_copy, is_deleting, name_of, set_condition

__all__ = ["NamespaceController", "deletion_conditions"]

log = logging.getLogger("pyk3s.controllers.namespace")

FINALIZER = "kubernetes"


def deletion_conditions(
    remaining: Counter[str], finalizers: Counter[str], failures: list[str], discovery_error: str = ""
) -> list[dict[str, str]]:
    """The five namespace deletion conditions for what is left (pure)."""
    def cond(type_: str, bad: bool, reason: str, message: str) -> dict[str, str]:
        return {"type": type_, "status": "True" if bad else "False", "reason": reason, "message": message}

    return [
        cond("NamespaceDeletionDiscoveryFailure", bool(discovery_error),
             "DiscoveryFailed" if discovery_error else "ResourcesDiscovered",
             f"Discovery failed for some groups: {discovery_error}" if discovery_error
             else "All resources successfully discovered"),
        cond("NamespaceDeletionGroupVersionParsingFailure", False, "ParsedGroupVersions",
             "All legacy kube types successfully parsed"),
        cond("NamespaceDeletionContentFailure", bool(failures),
             "ContentDeletionFailed" if failures else "ContentDeleted",
             f"Failed to delete all resource types, {len(failures)} remaining: {', '.join(failures)}" if failures
             else "All content successfully deleted, may be waiting on finalization"),
        cond("NamespaceContentRemaining", bool(remaining),
             "SomeResourcesRemain" if remaining else "ContentRemoved",
             "Some resources are remaining: " + ", ".join(sorted(f"{r} has {n} resource instances"
                                                                  for r, n in remaining.items()))
             if remaining else "All content successfully removed"),
        cond("NamespaceFinalizersRemaining", bool(finalizers),
             "SomeFinalizersRemain" if finalizers else "ContentHasNoFinalizers",
             "Some content in the namespace has finalizers remaining: "
             + ", ".join(sorted(f"{f} in {n} resource instances" for f, n in finalizers.items()))
             if finalizers else "All content-preserving finalizers finished"),
    ]


class NamespaceController(Loop):
    name = "namespace"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.namespaces = self.informer("v1", "namespaces")
        self.ns_api = client.resource("v1", "namespaces")
        self.controller.watch(self.namespaces)
        self._resources: list[ApiResource] = []
        self._discovered_at = 0.0

    async def _namespaced(self) -> list[ApiResource]:
        if not self._resources or time.monotonic() - self._discovered_at > self.settings.discovery_interval:
            self._resources = [r for r in await discover(self.client) if r.namespaced and r.can("list", "delete")]
            self._discovered_at = time.monotonic()
        return self._resources

    async def reconcile(self, key: str) -> Result | None:
        ns = self.namespaces.get(key)
        if ns is None or not is_deleting(ns):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        discovery_error = ""
        try:
            resources = await self._namespaced()
        except ApiError as err:
            discovery_error = str(err)
            resources = self._resources
        failures: list[str] = []
        for res in resources:
            api = self.client.resource(res.api_version, res.plural)
            try:
                items = (await api.list(key)).get("items") or []
                for item in items:
                    if not is_deleting(item):
                        with contextlib.suppress(NotFound):
                            await api.delete(name_of(item), key, propagation_policy="Background")
            except ApiError as err:
                log.warning("namespace %s: deleting %s: %s", key, res.plural, err)
                failures.append(f"{res.plural}.{res.group}")
        remaining: Counter[str] = Counter()
        finalizers: Counter[str] = Counter()
        for res in resources:
            try:
                items = (await self.client.resource(res.api_version, res.plural).list(key)).get("items") or []
            except ApiError:
                continue
            for item in items:
                remaining[f"{res.plural}.{res.group}"] += 1
                for f in (item.get("metadata") or {}).get("finalizers") or []:
                    finalizers[f] += 1
        await self._set_conditions(ns, deletion_conditions(remaining, finalizers, failures, discovery_error))
        if remaining or failures or discovery_error:
            return Result.after(self.settings.namespace_recheck)
        fresh = await self.ns_api.get(key)
        body = deep_copy(fresh)
        body.setdefault("spec", {})["finalizers"] = [
            f for f in (fresh.get("spec") or {}).get("finalizers") or [] if f != FINALIZER
        ]
        with contextlib.suppress(NotFound):
            await self.client.call("PUT", self.ns_api.path(None, key, "finalize"), body=body)
        log.info("namespace %s: content removed, finalized", key)
        return None

    async def _set_conditions(self, ns: Obj, wanted: list[dict[str, str]]) -> None:
        status = dict(ns.get("status") or {})
        conditions = list(status.get("conditions") or [])
        now = now_rfc3339()
        for cond in wanted:
            conditions = set_condition(conditions, cond, now)
        if conditions == (status.get("conditions") or []):
            return
        status["conditions"] = conditions
        with contextlib.suppress(NotFound):
            await self.ns_api.update_status({**ns, "status": status})
