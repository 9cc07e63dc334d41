"""Object storage with Kubernetes semantics on top of the revisioned store (spec 4, 5.1-5.4, 6.1-6.8).

:class:`Registry` is transport-free: the request handlers and the subresources call it. It is given
what it works with: the store, the resource catalog (to accept another served version of a kind), the
kind hooks, the unknown-field checks and the namespace gate.

A create or update settles the object's identity (kind, namespace, name; the resourceVersion an
update names), runs the admission pipeline (:func:`pyk3s.api.admit.admit`, one for both) and stores
the result between the kind hooks' ``before_write`` (Service allocation, CRD status) and
``after_write``. Updates without a resourceVersion precondition are retried on a store conflict
with a fresh copy; with one they answer 409. An update that leaves nothing to write answers the
stored object; one that leaves a deleting object without finalizers removes it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pyk3s.api.admit import admit, generated_name
from pyk3s.api.catalog import ResourceCatalog
from pyk3s.api.codec import decode_kv, encode_object, now_rfc3339
from pyk3s.api.errors import already_exists, bad_request, conflict, expired, not_found
from pyk3s.api.fieldcheck import FieldChecker
from pyk3s.api.hooks import KindHooks
from pyk3s.api.invalid import invalid_field
from pyk3s.api.namespaces import NamespaceGate
from pyk3s.api.paging import ListResult, decode_continue, encode_continue
from pyk3s.api.request import WriteOptions
from pyk3s.api.resources import ResourceInfo
from pyk3s.api.selectors import FieldSelector, LabelSelector
from pyk3s.api.store.base import Compacted, KeyExists, KeyNotFound, KeyValue, RevisionConflict, Store
from pyk3s.api.strategy import removable

__all__ = ["Registry", "present"]

_RETRIES = 8


def present(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as served at ``info``'s version (custom resources are stored at the version
    they were written with; conversion strategy None only rewrites apiVersion)."""
    if info.is_custom:
        obj["apiVersion"] = info.api_version
    return obj


class Registry:
    def __init__(self, store: Store, catalog: ResourceCatalog, hooks: KindHooks, fields: FieldChecker,
                 namespaces: NamespaceGate) -> None:
        self.store = store
        self.catalog = catalog
        self.hooks = hooks
        self.fields = fields
        self.namespaces = namespaces

    # --- reads ------------------------------------------------------------------------------------

    async def get_kv(self, info: ResourceInfo, namespace: str | None, name: str, revision: int = 0) -> KeyValue:
        try:
            _, kv = await self.store.get(info.key(namespace, name), revision)
        except Compacted as e:
            raise expired(f"too old resource version: {e.requested} ({e.compacted})") from None
        if kv is None:
            raise not_found(info.plural, info.group, name)
        return kv

    async def get(self, info: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any]:
        return present(info, decode_kv(await self.get_kv(info, namespace, name)))

    async def list(
        self,
        info: ResourceInfo,
        namespace: str | None,
        *,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        limit: int = 0,
        continue_token: str = "",
        revision: int = 0,
    ) -> ListResult:
        prefix = info.list_prefix(namespace)
        start_after = ""
        if continue_token:
            revision, start_after = decode_continue(continue_token)
            if not start_after.startswith(prefix):
                raise bad_request("continue key is not valid: key is outside the listed range")
        filtering = bool((labels and not labels.empty) or (fields and not fields.empty))
        name = fields.exact_name() if fields else None
        try:
            if name is not None and (namespace or not info.namespaced):
                rev, kv = await self.store.get(info.key(namespace, name), revision)
                kvs = [kv] if kv is not None and kv.key > start_after else []
                return ListResult(rev, [k for k in kvs if self._matches(k, labels, fields)])
            if not filtering:
                rev, kvs = await self.store.list(prefix, revision=revision, limit=limit + 1 if limit else 0,
                                                 start_after=start_after)
                if limit and len(kvs) > limit:
                    kvs = kvs[:limit]
                    return ListResult(rev, kvs, encode_continue(rev, kvs[-1].key))
                return ListResult(rev, kvs)
            out: list[KeyValue] = []
            page = max(limit * 2, 500) if limit else 0
            while True:
                rev, kvs = await self.store.list(prefix, revision=revision, limit=page, start_after=start_after)
                revision = rev
                for kv in kvs:
                    if self._matches(kv, labels, fields):
                        out.append(kv)
                        if limit and len(out) > limit:
                            out.pop()
                            return ListResult(rev, out, encode_continue(rev, out[-1].key))
                if not page or len(kvs) < page:
                    return ListResult(rev, out)
                start_after = kvs[-1].key
        except Compacted as e:
            if continue_token:
                raise expired("The provided continue parameter is too old to display a consistent list result. "
                              "You can start a new list without the continue parameter.") from None
            raise expired(f"too old resource version: {e.requested} ({e.compacted})") from None

    @staticmethod
    def _matches(kv: KeyValue, labels: LabelSelector | None, fields: FieldSelector | None) -> bool:
        if (labels is None or labels.empty) and (fields is None or fields.empty):
            return True
        obj = json.loads(kv.value)
        if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels")):
            return False
        return fields is None or fields.matches(obj)

    # --- create and update ------------------------------------------------------------------------

    async def create(
        self,
        info: ResourceInfo,
        namespace: str | None,
        obj: dict[str, Any],
        opts: WriteOptions,
        *,
        managed_done: bool = False,
    ) -> dict[str, Any]:
        meta = _metadata(obj)
        self._check_type(info, obj)
        if info.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            namespace = namespace or body_ns
            if not namespace:
                raise bad_request("the server could not find the requested resource: a namespace is required")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        generated = not meta.get("name") and bool(meta.get("generateName"))
        if not meta.get("name") and not generated:
            raise invalid_field(info, "", "metadata.name", None, "name or generateName is required",
                                "FieldValueRequired")
        obj = await self._admit(info, obj, None, opts, managed_done=managed_done)
        meta = obj["metadata"]
        for attempt in range(5):
            try:
                await self._write(info, info.key(namespace, meta["name"]), obj, None, opts)
            except KeyExists:
                if generated and attempt < 4:
                    meta["name"] = generated_name(meta["generateName"])
                    continue
                raise already_exists(info.plural, info.group, meta["name"]) from None
            return obj
        raise AssertionError("unreachable")

    async def update(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        compute: Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]],
        opts: WriteOptions,
        *,
        subresource: str | None = None,
        managed_done: bool = False,
        operation: str = "Update",
        precondition: bool = False,
    ) -> dict[str, Any]:
        """Update ``name`` with ``compute(current)``. A resourceVersion in the computed object that
        differs from the stored one is a conflict (409); a store conflict is one too when the
        caller named a resourceVersion (``precondition``), otherwise it is retried on a fresh copy."""
        key = info.key(namespace, name)
        for _ in range(_RETRIES):
            kv = await self.get_kv(info, namespace, name)
            old = present(info, decode_kv(kv))
            computed = compute(copy.deepcopy(old))
            new = computed if isinstance(computed, dict) else await computed
            meta = _metadata(new)
            if meta.get("name", name) != name:
                raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
            meta["name"] = name
            if info.namespaced:
                if meta.get("namespace") and meta["namespace"] != namespace:
                    raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            self._check_type(info, new)
            rv = meta.get("resourceVersion")
            if rv and str(rv) != str(kv.mod_revision):
                raise conflict(info.plural, info.group, name)
            new = await self._admit(info, new, old, opts, subresource=subresource, operation=operation,
                                    managed_done=managed_done)
            if _same(old, new):
                return old
            if removable(info, new):
                if opts.dry_run:
                    return new
                try:
                    await self._remove(info, key, kv, new)
                except RevisionConflict:
                    if precondition:
                        raise conflict(info.plural, info.group, name) from None
                    continue
                return new
            try:
                await self._write(info, key, new, old, opts, kv.mod_revision)
            except KeyNotFound:
                raise not_found(info.plural, info.group, name) from None
            except RevisionConflict:
                if precondition:
                    raise conflict(info.plural, info.group, name) from None
                continue
            return new
        raise conflict(info.plural, info.group, name)

    async def _admit(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any] | None, opts: WriteOptions,
                     *, subresource: str | None = None, operation: str = "Update",
                     managed_done: bool = False) -> dict[str, Any]:
        return await admit(info, new, old, opts, hooks=self.hooks, fields=self.fields, namespaces=self.namespaces,
                           subresource=subresource, operation=operation, managed_done=managed_done)

    async def _write(self, info: ResourceInfo, key: str, new: dict[str, Any], old: dict[str, Any] | None,
                     opts: WriteOptions, revision: int | None = None) -> None:
        """Store ``new`` at ``key`` (a new key when ``revision`` is None, else over that revision)
        between the kind hooks' before_write and after_write; what before_write allocated is
        released when nothing is stored (dry run, failure)."""
        alloc = await self.hooks.before_write(info, new, old)
        if opts.dry_run:
            await self.hooks.undo(alloc)
            return
        try:
            value = encode_object(new)
            if revision is None:
                kv = await self.store.create(key, value)
            else:
                kv = await self.store.update(key, value, revision)
        except BaseException:
            await self.hooks.undo(alloc)
            raise
        new["metadata"]["resourceVersion"] = str(kv.mod_revision)
        await self.hooks.after_write(info, new, old)

    def _check_type(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != info.api_version:
            other = self.catalog.table.by_api_version_kind(api_version, kind or "")
            if other is None or other.key_prefix != info.key_prefix:
                raise bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                  f"API version ({info.api_version})")
        if kind and kind != info.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind

    async def _remove(self, info: ResourceInfo, key: str, kv: KeyValue, obj: dict[str, Any]) -> KeyValue:
        out = await self.store.delete(key, kv.mod_revision)
        await self.hooks.after_remove(info, obj)
        return out

    # --- delete -----------------------------------------------------------------------------------

    async def delete(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        options: dict[str, Any],
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete per DeleteOptions. Returns (object, removed): removed=False means the object stays
        with a deletionTimestamp (finalizers, graceful pod, terminating namespace)."""
        key = info.key(namespace, name)
        grace_opt = options.get("gracePeriodSeconds")
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy not in (None, "Background", "Foreground", "Orphan"):
            raise invalid_field(info, name, "propagationPolicy", policy,
                                'supported values: "Foreground", "Background", "Orphan"', "FieldValueNotSupported")
        pre = options.get("preconditions") or {}
        for _ in range(_RETRIES):
            kv = await self.get_kv(info, namespace, name)
            obj = present(info, decode_kv(kv))
            meta = obj["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise conflict(info.plural, info.group, name,
                               f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(kv.mod_revision):
                raise conflict(info.plural, info.group, name,
                               f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                               f"ResourceVersion in object meta: {kv.mod_revision}")
            await self.hooks.before_delete(info, obj)
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            elif policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            grace = self._grace(info, obj, grace_opt)
            now = now_rfc3339()
            new = copy.deepcopy(obj)
            nmeta = new["metadata"]
            if meta.get("deletionTimestamp"):
                current = meta.get("deletionGracePeriodSeconds") or 0
                if grace < current:
                    nmeta["deletionGracePeriodSeconds"] = grace
                    nmeta["deletionTimestamp"] = _plus_seconds(grace)
                nmeta["finalizers"] = finalizers
                if not nmeta["finalizers"]:
                    nmeta.pop("finalizers", None)
                if _same(obj, new) and not removable(info, new):
                    return obj, False
            elif (info.group, info.plural) == ("", "namespaces"):
                nmeta["deletionTimestamp"] = now
                nmeta["deletionGracePeriodSeconds"] = 0
                new.setdefault("status", {})["phase"] = "Terminating"
                if finalizers:
                    nmeta["finalizers"] = finalizers
            elif finalizers or grace > 0:
                nmeta["deletionTimestamp"] = _plus_seconds(grace) if grace else now
                nmeta["deletionGracePeriodSeconds"] = grace
                nmeta["finalizers"] = finalizers
                nmeta["generation"] = int(meta.get("generation") or 0) + 1
            if dry_run:
                return new, removable(info, new) or not nmeta.get("deletionTimestamp")
            try:
                if not nmeta.get("deletionTimestamp") or removable(info, new):
                    await self._remove(info, key, kv, obj)
                    return obj, True
                out = await self.store.update(key, encode_object(new), kv.mod_revision)
            except RevisionConflict:
                continue
            except KeyNotFound:
                raise not_found(info.plural, info.group, name) from None
            nmeta["resourceVersion"] = str(out.mod_revision)
            await self.hooks.after_write(info, new, obj)
            return new, False
        raise conflict(info.plural, info.group, name)

    @staticmethod
    def _grace(info: ResourceInfo, obj: dict[str, Any], requested: Any) -> int:
        if (info.group, info.plural) != ("", "pods"):
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(0, int(requested))
        tgp = spec.get("terminationGracePeriodSeconds")
        return 30 if tgp is None else max(0, int(tgp))


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal apart from resourceVersion and managedFields timestamps (no-op writes are skipped)."""
    if old.keys() != new.keys():
        return False
    for k in old:
        if k == "metadata":
            a, b = dict(old[k]), dict(new[k])
            for m in (a, b):
                m.pop("resourceVersion", None)
                m.pop("managedFields", None)
            if a != b or _mf(old[k]) != _mf(new[k]):
                return False
        elif old[k] != new[k]:
            return False
    return True


def _mf(meta: dict[str, Any]) -> list[Any]:
    return [{k: v for k, v in e.items() if k != "time"} for e in meta.get("managedFields") or []]


def _plus_seconds(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
