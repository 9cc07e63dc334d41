"""Install, upgrade and uninstall a release's objects through the API, as ``helm upgrade --install`` does.

Before anything is written every object is looked up: one that exists but belongs to no release or
to another one stops the whole install with Helm's "invalid ownership metadata" message (unless the
HelmChart sets ``takeOwnership``), so a conflict never leaves half a release behind. Then each object
is created, or three-way patched (the previous revision's object is the original, fields nobody set
in the chart stay as they are), in Helm's install order; objects of the previous revision that the new
one no longer has are deleted. Every object carries Helm's ownership marks: label
``app.kubernetes.io/managed-by: Helm`` and annotations ``meta.helm.sh/release-name`` and
``meta.helm.sh/release-namespace``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyk3s.client import AlreadyExists, ApiError, Client, NotFound

from ..deploy.objectset import three_way_patch
from .chart import Manifest
from .release import INSTALL_ORDER

__all__ = ["MANAGED_BY", "RELEASE_NAME", "RELEASE_NAMESPACE", "ApplyError", "Applier", "ApplyResult", "describe", "owned",
           "ownership_problem", "with_ownership"]

log = logging.getLogger("pyk3s.helm")

MANAGED_BY = "app.kubernetes.io/managed-by"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
FIELD_MANAGER = "helm-controller"

Ident = tuple[str, str, str, str]


class ApplyError(Exception):
    pass


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def with_ownership(obj: Mapping[str, Any], release: str, namespace: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), MANAGED_BY: "Helm"}
    meta["annotations"] = {**(meta.get("annotations") or {}), RELEASE_NAME: release, RELEASE_NAMESPACE: namespace}
    return out


def owned(live: Mapping[str, Any], release: str, namespace: str) -> bool:
    return ownership_problem(live, release, namespace) is None


def ownership_problem(live: Mapping[str, Any], release: str, namespace: str) -> str | None:
    """Helm's reason why ``live`` cannot be part of ``release``, or None when it already is."""
    meta = live.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    errors = []
    if MANAGED_BY not in labels:
        errors.append(f'label validation error: missing key "{MANAGED_BY}": must be set to "Helm"')
    elif labels[MANAGED_BY] != "Helm":
        errors.append(f'label validation error: key "{MANAGED_BY}" must equal "Helm": current value is '
                      f'"{labels[MANAGED_BY]}"')
    for key, want in ((RELEASE_NAME, release), (RELEASE_NAMESPACE, namespace)):
        if key not in annotations:
            errors.append(f'annotation validation error: missing key "{key}": must be set to "{want}"')
        elif annotations[key] != want:
            errors.append(f'annotation validation error: key "{key}" must equal "{want}": current value is '
                          f'"{annotations[key]}"')
    if not errors:
        return None
    return "invalid ownership metadata; " + "; ".join(errors)


def ident_of(obj: Mapping[str, Any]) -> Ident:
    meta = obj.get("metadata") or {}
    return (str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("namespace") or ""),
            str(meta.get("name") or ""))


def _rank(obj: Mapping[str, Any]) -> int:
    kind = str(obj.get("kind", ""))
    return INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)


class Applier:
    """Writes one release's objects; ``namespace`` is where namespaced objects without one go."""

    def __init__(self, client: Client, release: str, namespace: str) -> None:
        self.client = client
        self.release = release
        self.namespace = namespace

    async def _locate(self, obj: Mapping[str, Any]) -> tuple[Any, str | None]:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        try:
            res = await self.client.resource_for_kind(api_version, kind)
            _plural, namespaced = await self.client.discover(api_version, kind)
        except NotFound:
            raise ApplyError(f'resource mapping not found for {describe(obj)}: no matches for kind "{kind}" in '
                             f'version "{api_version}" (ensure CRDs are installed first)') from None
        ns = ((obj.get("metadata") or {}).get("namespace") or self.namespace) if namespaced else None
        return res, ns

    def desired(self, manifests: Iterable[Manifest]) -> list[dict[str, Any]]:
        out = []
        for m in manifests:
            obj = with_ownership(m.obj, self.release, self.namespace)
            out.append(obj)
        return sorted(out, key=_rank)

    async def check(self, desired: list[dict[str, Any]], take_ownership: bool) -> None:
        """Refuse the install when an object exists outside this release (nothing is written)."""
        for obj in desired:
            res, ns = await self._locate(obj)
            live = await res.get_or_none(obj["metadata"]["name"], ns)
            if live is None or take_ownership:
                continue
            problem = ownership_problem(live, self.release, self.namespace)
            if problem is not None:
                where = f' in namespace "{ns}"' if ns else ""
                raise ApplyError(f'Unable to continue with install: {obj["kind"]} "{obj["metadata"]["name"]}"{where} '
                                 f"exists and cannot be imported into the current release: {problem}")

    async def apply(self, desired: list[dict[str, Any]], previous: list[dict[str, Any]]) -> ApplyResult:
        outcome = ApplyResult()
        before = {ident_of(o): o for o in previous}
        wanted: set[Ident] = set()
        for obj in desired:
            res, ns = await self._locate(obj)
            if ns is not None:
                obj["metadata"]["namespace"] = ns
            wanted.add(ident_of(obj))
            name = obj["metadata"]["name"]
            live = await res.get_or_none(name, ns)
            if live is None:
                try:
                    await res.create(obj, ns, field_manager=FIELD_MANAGER)
                    outcome.created.append(describe(obj))
                    continue
                except AlreadyExists:
                    live = await res.get(name, ns)
            original = before.get(ident_of(obj))
            patch = three_way_patch(with_ownership(original, self.release, self.namespace) if original else None,
                                    obj, live)
            if patch:
                await res.patch(name, patch, ns, patch_type="merge", field_manager=FIELD_MANAGER)
                outcome.updated.append(describe(obj))
        stale = [o for i, o in before.items() if i not in wanted]
        outcome.deleted += await self.delete(stale)
        return outcome

    async def delete(self, objects: list[dict[str, Any]]) -> list[str]:
        """Delete ``objects`` in Helm's uninstall order (the reverse of install order); gone ones are skipped."""
        done: list[str] = []
        for obj in sorted(objects, key=_rank, reverse=True):
            try:
                res, ns = await self._locate(obj)
            except ApplyError:
                continue  # the kind is no longer served (its CRD went first): nothing left to delete
            name = obj["metadata"]["name"]
            try:
                live = await res.get(name, ns)
            except NotFound:
                continue
            if not owned(live, self.release, self.namespace):
                log.info("helm: %s no longer belongs to release %s/%s; left in place", describe(obj),
                         self.namespace, self.release)
                continue
            try:
                await res.delete(name, ns, propagation_policy="Background")
                done.append(describe(obj))
            except NotFound:
                pass
            except ApiError as err:
                raise ApplyError(f"deleting {describe(obj)}: {err.message}") from None
        return done
