"""A controller's dependents: the pods of a ReplicaSet or DaemonSet, the ReplicaSets of a Deployment.

Shared by those controllers as upstream's ``ControllerRefManager`` and expectations helpers are:

* :func:`claim_pods` (pure): a dependent controlled by the owner is kept while it matches the selector
  and released (owner reference removed) when it no longer does; an orphan matching the selector is
  adopted unless it or the owner is being deleted. Dependents controlled by someone else are ignored.
* :func:`apply_claim` writes the adoptions and releases; :func:`owner_keys` names the owners a change
  of a dependent concerns (its controller, or for an orphan every owner whose selector matches it).
* :func:`expectations_observer` and :func:`delete_expecting` keep the :class:`Expectations` of pod
  creations and deletions in step with what the informer shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyk3s.client import NotFound

from .expectations import Expectations
from .objects import (
    Obj,
    controller_ref,
    is_deleting,
    key_of,
    labels_match,
    make_owner_ref,
    name_of,
    namespace_of,
    owner_key,
    uid_of,
)

__all__ = ["Claim", "apply_claim", "claim_pods", "delete_expecting", "expectations_observer", "owner_keys"]


@dataclass(frozen=True, slots=True)
class Claim:
    owned: tuple[Obj, ...]
    adopt: tuple[Obj, ...]
    release: tuple[Obj, ...]


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _selector(owner: Mapping[str, Any]) -> Any:
    return (owner.get("spec") or {}).get("selector")


def claim_pods(owner: Mapping[str, Any], pods: Sequence[Obj]) -> Claim:
    selector = _selector(owner)
    uid = uid_of(owner)
    owned: list[Obj] = []
    adopt: list[Obj] = []
    release: list[Obj] = []
    for pod in pods:
        if namespace_of(pod) != namespace_of(owner):
            continue
        labels = _labels(pod)
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if labels_match(selector, labels):
                owned.append(pod)
            elif not is_deleting(pod):
                release.append(pod)
        elif labels_match(selector, labels) and not is_deleting(pod) and not is_deleting(owner):
            adopt.append(pod)
    return Claim(tuple(owned), tuple(adopt), tuple(release))


async def apply_claim(api: Any, owner: Mapping[str, Any], claim: Claim, api_version: str, kind: str) -> list[Obj]:
    """Patch the owner reference onto the adopted dependents and off the released ones; the dependents
    the owner controls afterwards (a dependent gone meanwhile is skipped)."""
    ns = namespace_of(owner)
    owned = list(claim.owned)
    for dep in claim.adopt:
        refs = [*((dep.get("metadata") or {}).get("ownerReferences") or []), make_owner_ref(owner, api_version, kind)]
        try:
            owned.append(await api.patch(name_of(dep), {"metadata": {"ownerReferences": refs}}, ns))
        except NotFound:
            continue
    for dep in claim.release:
        refs = [r for r in (dep.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid") != uid_of(owner)]
        try:
            await api.patch(name_of(dep), {"metadata": {"ownerReferences": refs}}, ns)
        except NotFound:
            continue
    return owned


def owner_keys(dependent: Obj, kind: str, owners: Callable[[], Iterable[Obj]]) -> list[str]:
    """Keys of the owners of ``kind`` a change of ``dependent`` concerns: its controller (none when that
    is of another kind), or for an orphan each owner of its namespace whose selector matches it."""
    if controller_ref(dependent) is not None:
        return owner_key(dependent, kind)
    ns = namespace_of(dependent)
    labels = _labels(dependent)
    return [key_of(o) for o in owners() if namespace_of(o) == ns and labels_match(_selector(o), labels)]


def expectations_observer(expectations: Expectations, kind: str) -> Callable[[str, Obj | None, Obj | None], None]:
    """An informer handler for pods that marks creations and deletions of the pods of an owner of
    ``kind`` as observed."""

    def observe(typ: str, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        if pod is None:
            return
        keys = owner_key(pod, kind)
        if not keys:
            return
        if typ == "ADDED" and new is not None:
            expectations.creation_observed(keys[0])
        if typ == "DELETED" or (new is not None and is_deleting(new)):
            expectations.deletion_observed(keys[0], key_of(pod))

    return observe


async def delete_expecting(api: Any, expectations: Expectations, key: str, pods: Sequence[Obj], ns: str) -> None:
    """Delete ``pods`` of the owner ``key``, expecting to see each deletion (one already gone counts
    as seen)."""
    expectations.expect(key, deletes={key_of(p) for p in pods})
    for pod in pods:
        try:
            await api.delete(name_of(pod), ns)
        except NotFound:
            expectations.deletion_observed(key, key_of(pod))
