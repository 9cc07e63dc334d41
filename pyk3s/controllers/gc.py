"""Garbage collector: ownerReferences across every served resource (spec 6.7).

The graph: one informer per served resource (list, watch and delete verbs; events excluded), an
index uid → object and owner uid → dependents. Work items are uids. For an object:

* being deleted with finalizer ``foregroundDeletion``: delete its dependents (in the foreground if
  they have dependents themselves); once no dependent with ``blockOwnerDeletion: true`` is left,
  remove the finalizer (the API then removes the object);
* being deleted with finalizer ``orphan``: remove its owner reference from every dependent, then
  remove the finalizer;
* otherwise, for its ownerReferences: an owner is *absent* if no object with that uid exists (a live
  GET confirms what the cache does not know: name not found or another uid), *waiting* if it is being
  deleted in the foreground. All owners absent → delete it (Background); absent or waiting owners
  only, some waiting → delete it (Foreground if it has dependents); a live owner left → just remove
  the references to absent and waiting owners. Owners of kinds the API does not serve are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pyk3s.client import ApiError, NotFound
from pyk3s.client.controller import Result
from pyk3s.client.informer import Informer

from .common.loop import Loop
from .common.settings import ControllerSettings
from .discovery import ApiResource, discover
from .objects import Obj, is_deleting, key_of, name_of, namespace_of, split_key, uid_of

__all__ = ["GarbageCollector", "owner_verdict"]

log = logging.getLogger("pyk3s.controllers.gc")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_IGNORED = {("v1", "events"), ("events.k8s.io/v1", "events")}


def owner_verdict(states: list[str]) -> str:
    """What to do with a dependent given its owners' states ("present", "absent", "waiting", "unknown").

    Returns "keep", "delete", "delete-foreground" or "strip" (remove absent/waiting references).
    """
    if not states:
        return "keep"
    if all(s in ("absent", "waiting") for s in states):
        return "delete-foreground" if "waiting" in states else "delete"
    if any(s in ("absent", "waiting") for s in states) and "present" in states:
        return "strip"
    return "keep"


class GarbageCollector(Loop):
    name = "garbagecollector"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.resources: dict[tuple[str, str], ApiResource] = {}
        self.by_kind: dict[tuple[str, str], ApiResource] = {}
        self.watching: dict[tuple[str, str], Informer] = {}
        self.objects: dict[str, tuple[ApiResource, str]] = {}
        self.dependents: dict[str, set[str]] = {}
        self.owners_of: dict[str, set[str]] = {}

    # -- graph ------------------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Discover resources; start informers for new ones, stop those no longer served."""
        found = {(r.api_version, r.plural): r for r in await discover(self.client)}
        self.resources = found
        self.by_kind = {(r.api_version, r.kind): r for r in found.values()}
        for key, res in found.items():
            if key in self.watching or key in _IGNORED or not res.can("list", "watch", "delete"):
                continue
            inf = self.informer(res.api_version, res.plural)
            inf.add_handler(self._handler(res))
            self.watching[key] = inf
            await inf.start()
        for key in [k for k in self.watching if k not in found]:
            inf = self.watching.pop(key)
            self.informers.remove(inf)
            await inf.stop()

    def _handler(self, res: ApiResource) -> Any:
        def handle(typ: str, old: Obj | None, new: Obj | None) -> None:
            obj = new or old
            if obj is None:
                return
            uid = uid_of(obj)
            old_owners = self.owners_of.get(uid, set())
            if typ == "DELETED":
                self.objects.pop(uid, None)
                self.owners_of.pop(uid, None)
                for o in old_owners:
                    self.dependents.get(o, set()).discard(uid)
                for dep in self.dependents.get(uid, set()):
                    self.controller.enqueue(dep)
                for o in old_owners:
                    self.controller.enqueue(o)
                return
            self.objects[uid] = (res, key_of(obj))
            owners = {r.get("uid") for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")}
            for o in old_owners - owners:
                self.dependents.get(o, set()).discard(uid)
                self.controller.enqueue(o)
            for o in owners:
                self.dependents.setdefault(o, set()).add(uid)
            if owners:
                self.owners_of[uid] = owners
            else:
                self.owners_of.pop(uid, None)
            self.controller.enqueue(uid)
            for o in owners:
                if o in self.objects:
                    self.controller.enqueue(o)
        return handle

    def _get(self, uid: str) -> tuple[ApiResource, Obj] | None:
        entry = self.objects.get(uid)
        if entry is None:
            return None
        res, key = entry
        obj = self.watching[(res.api_version, res.plural)].get(key)
        return (res, obj) if obj is not None else None

    # -- lifecycle --------------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self.refresh()
            await self.start()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.controller.run(self.settings.workers))
                tg.create_task(self._rediscover())
        finally:
            await self.stop()

    async def _rediscover(self) -> None:
        while True:
            await asyncio.sleep(self.settings.discovery_interval)
            try:
                await self.refresh()
            except ApiError as err:
                log.warning("garbage-collector: discovery failed: %s", err)

    # -- reconcile --------------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        found = self._get(key)
        if found is None:
            return None
        res, obj = found
        if is_deleting(obj):
            finalizers = (obj.get("metadata") or {}).get("finalizers") or []
            if FOREGROUND in finalizers:
                await self._foreground(res, obj)
            elif ORPHAN in finalizers:
                await self._orphan(res, obj)
            return None
        refs = (obj.get("metadata") or {}).get("ownerReferences") or []
        if not refs:
            return None
        states = [await self._owner_state(ref, res, obj) for ref in refs]
        verdict = owner_verdict(states)
        api = self.client.resource(res.api_version, res.plural)
        ns = namespace_of(obj) or None
        if verdict in ("delete", "delete-foreground"):
            policy = "Foreground" if verdict == "delete-foreground" and self.dependents.get(key) else "Background"
            log.info("garbage-collector: deleting %s %s (owners gone), propagation %s", res.kind, key_of(obj), policy)
            with contextlib.suppress(NotFound):
                await api.delete(name_of(obj), ns, propagation_policy=policy, preconditions={"uid": key})
        elif verdict == "strip":
            keep = [r for r, s in zip(refs, states, strict=True) if s in ("present", "unknown")]
            with contextlib.suppress(NotFound):
                await api.patch(name_of(obj), {"metadata": {"ownerReferences": keep}}, ns)
        return None

    async def _owner_state(self, ref: dict[str, Any], res: ApiResource, obj: Obj) -> str:
        found = self._get(ref.get("uid", ""))
        if found is not None:
            return self._state_of(found[1])
        owner_res = self.by_kind.get((ref.get("apiVersion", ""), ref.get("kind", "")))
        if owner_res is None:
            return "unknown"
        if owner_res.namespaced and not res.namespaced:
            return "unknown"
        ns = namespace_of(obj) if owner_res.namespaced else None
        try:
            live = await self.client.resource(owner_res.api_version, owner_res.plural).get(ref.get("name", ""), ns)
        except NotFound:
            return "absent"
        if uid_of(live) != ref.get("uid"):
            return "absent"
        return self._state_of(live)

    @staticmethod
    def _state_of(owner: Obj) -> str:
        if is_deleting(owner) and FOREGROUND in ((owner.get("metadata") or {}).get("finalizers") or []):
            return "waiting"
        return "present"

    def _dependents(self, uid: str) -> list[tuple[ApiResource, Obj]]:
        return [found for d in sorted(self.dependents.get(uid, ())) if (found := self._get(d)) is not None]

    async def _foreground(self, res: ApiResource, owner: Obj) -> None:
        uid = uid_of(owner)
        blocking = 0
        for dep_res, dep in self._dependents(uid):
            ref: dict[str, Any] = next((r for r in (dep.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid") == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if is_deleting(dep):
                continue
            policy = "Foreground" if self.dependents.get(uid_of(dep)) else "Background"
            with contextlib.suppress(NotFound):
                await self.client.resource(dep_res.api_version, dep_res.plural).delete(
                    name_of(dep), namespace_of(dep) or None, propagation_policy=policy,
                    preconditions={"uid": uid_of(dep)},
                )
        if blocking == 0:
            await self._remove_finalizer(res, owner, FOREGROUND)

    async def _orphan(self, res: ApiResource, owner: Obj) -> None:
        uid = uid_of(owner)
        for dep_res, dep in self._dependents(uid):
            refs = [r for r in (dep.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid") != uid]
            with contextlib.suppress(NotFound):
                await self.client.resource(dep_res.api_version, dep_res.plural).patch(
                    name_of(dep), {"metadata": {"ownerReferences": refs}}, namespace_of(dep) or None
                )
        await self._remove_finalizer(res, owner, ORPHAN)

    async def _remove_finalizer(self, res: ApiResource, obj: Obj, finalizer: str) -> None:
        meta = obj.get("metadata") or {}
        rest = [f for f in meta.get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": rest, "resourceVersion": meta.get("resourceVersion")}}
        ns, name = split_key(key_of(obj))
        with contextlib.suppress(NotFound):
            await self.client.resource(res.api_version, res.plural).patch(name, patch, ns or None)
        log.info("garbage-collector: %s %s: removed finalizer %s", res.kind, key_of(obj), finalizer)
