"""The admission pipeline: what a create and an update of an object go through before the store.

One function, :func:`admit`, for both (``old`` is None on create); its steps, in order::

    fieldValidation      unknown fields and Go type errors (not for writes through a subresource)
    namespace lifecycle  create only: the namespace exists and is not terminating (spec 6.8)
    strategy             server-owned metadata and status (:mod:`pyk3s.api.strategy`); an update
                         of a deleting object may add no finalizer
    kind hooks           ``KindHooks.validate``: Service values kept on update, the default
                         IngressClass, CRD checks
    defaults             :func:`pyk3s.api.admission.set_defaults`
    generateName         create only: the name's random suffix
    validation           :func:`pyk3s.api.admission.validate`, 422 ``Invalid`` (not for a pod binding)
    generation           update only: bumped when the content changed
    managedFields        the writer's entry, unless server-side apply made them already

The registry then stores the result between the kind hooks' ``before_write`` and ``after_write``.
"""

from __future__ import annotations

import secrets
from typing import Any

from pyk3s.api import admission
from pyk3s.api import patch as patchlib
from pyk3s.api.codec import now_rfc3339
from pyk3s.api.fieldcheck import FieldChecker
from pyk3s.api.hooks import KindHooks
from pyk3s.api.invalid import invalid_field, invalid_object
from pyk3s.api.namespaces import NamespaceGate
from pyk3s.api.request import WriteOptions
from pyk3s.api.resources import ResourceInfo
from pyk3s.api.strategy import bump_generation, prepare_create, prepare_update

__all__ = ["admit", "generated_name"]

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def generated_name(prefix: str) -> str:
    """``generateName`` plus five random characters, as kube-apiserver's name generator makes them."""
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


def _no_new_finalizers(info: ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> None:
    old_meta, meta = old["metadata"], new["metadata"]
    if old_meta.get("deletionTimestamp"):
        added = [f for f in meta.get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])]
        if added:
            raise invalid_field(info, meta.get("name", ""), "metadata.finalizers", added,
                                "no new finalizers can be added if the object is being deleted",
                                "FieldValueForbidden")


async def admit(
    info: ResourceInfo,
    new: dict[str, Any],
    old: dict[str, Any] | None,
    opts: WriteOptions,
    *,
    hooks: KindHooks,
    fields: FieldChecker,
    namespaces: NamespaceGate,
    subresource: str | None = None,
    operation: str = "Update",
    managed_done: bool = False,
) -> dict[str, Any]:
    """Admit ``new`` as a create (``old`` None) or an update of ``old`` through ``subresource``; returns
    the object to store. ``new`` has its metadata, namespace and name (or generateName) settled."""
    now = now_rfc3339()
    if subresource is None:
        fields.check(info, new, opts)
    if old is None:
        if info.namespaced:
            await namespaces.check_create(new["metadata"]["namespace"])
        prepare_create(info, new, now)
    else:
        new = prepare_update(info, old, new, subresource)
        _no_new_finalizers(info, new, old)
    meta = new["metadata"]
    await hooks.validate(info, new, old)
    admission.set_defaults(info.gvk, new)
    if old is None and not meta.get("name"):
        meta["name"] = generated_name(meta["generateName"])
    # A binding is the one sanctioned change of a pod's spec.nodeName; pod update rules forbid it.
    causes = admission.validate(info.gvk, new, old) if subresource != "binding" else []
    if causes:
        raise invalid_object(info, meta.get("name", ""), causes)
    if old is not None:
        bump_generation(info, old, new)
    if not managed_done:
        meta["managedFields"] = patchlib.update_managed_fields(
            old, new, manager=opts.field_manager, operation=operation, api_version=info.api_version,
            subresource=subresource, now=now)
    if not meta.get("managedFields"):
        meta.pop("managedFields", None)
    return new
