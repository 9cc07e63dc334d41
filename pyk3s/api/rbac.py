"""RBAC authorizer (rbac.authorization.k8s.io/v1), spec 7.6.

Rules, as kube-apiserver's RBAC authorizer applies them:

* Members of ``system:masters`` may do everything (no RBAC lookup).
* ClusterRoleBindings grant their ClusterRole's rules everywhere; RoleBindings grant their Role's (same
  namespace) or ClusterRole's rules only for requests in the binding's namespace.
* A subject matches by ``User`` name, ``Group`` membership, or ``ServiceAccount``
  (``system:serviceaccount:<ns>:<name>``; an empty subject namespace means the binding's).
* A rule matches when its verbs, apiGroups and resources (``*``, ``res``, ``res/sub``, ``*/sub``) and,
  if set, resourceNames match; non-resource requests match ``nonResourceURLs`` (``*`` or a ``prefix*``).
* ClusterRole aggregation is not evaluated.

The built-in policy (cluster-admin, discovery, basic-user, public-info-viewer, view/edit/admin and a
node role) always applies, even before :data:`BOOTSTRAP_OBJECTS` are written to the store; stored
objects of the same name replace the built-in ones. Objects are read from the store under
``/registry/rbac.authorization.k8s.io/`` and kept current with a watch; the compiled
:class:`RbacSnapshot` is swapped whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyk3s.api.authz import Decision, RequestAttributes
from pyk3s.api.request import UserInfo
from pyk3s.api.store.base import Store

__all__ = ["BOOTSTRAP_OBJECTS", "RbacAuthorizer", "RbacSnapshot", "Rule", "compile_snapshot"]

log = logging.getLogger("pyk3s.api.rbac")
PREFIX = "/registry/rbac.authorization.k8s.io/"
RBAC_V1 = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict) -> Rule:
        return cls(
            verbs=frozenset(d.get("verbs") or ()),
            api_groups=frozenset(d.get("apiGroups") or ()),
            resources=frozenset(d.get("resources") or ()),
            resource_names=frozenset(d.get("resourceNames") or ()),
            non_resource_urls=tuple(d.get("nonResourceURLs") or ()),
        )

    def to_resource_rule(self) -> dict:
        out: dict = {"verbs": sorted(self.verbs), "apiGroups": sorted(self.api_groups),
                     "resources": sorted(self.resources)}
        if self.resource_names:
            out["resourceNames"] = sorted(self.resource_names)
        return out

    def allows(self, attrs: RequestAttributes) -> bool:
        if "*" not in self.verbs and attrs.verb not in self.verbs:
            return False
        if not attrs.resource_request:
            return any(
                u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(u[:-1]))
                for u in self.non_resource_urls
            )
        if "*" not in self.api_groups and attrs.api_group not in self.api_groups:
            return False
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        if not ("*" in self.resources or combined in self.resources
                or (attrs.subresource and f"*/{attrs.subresource}" in self.resources)):
            return False
        return not self.resource_names or attrs.name in self.resource_names


@dataclass(frozen=True, slots=True)
class _Binding:
    kind: str  # RoleBinding | ClusterRoleBinding
    name: str
    namespace: str
    role_kind: str
    role_name: str
    subjects: tuple[tuple[str, str, str], ...]  # (kind, name, namespace)

    def applies_to(self, user: UserInfo) -> str:
        """The matching subject, rendered like upstream's reason ("User \"x\""), or ""."""
        for kind, name, ns in self.subjects:
            if kind == "User" and name == user.name:
                return f'User "{name}"'
            if kind == "Group" and name in user.groups:
                return f'Group "{name}"'
            if kind == "ServiceAccount" and user.name == f"system:serviceaccount:{ns or self.namespace}:{name}":
                return f'ServiceAccount "{name}/{ns or self.namespace}"'
        return ""


@dataclass(frozen=True, slots=True)
class RbacSnapshot:
    cluster_roles: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    roles: dict[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict)
    cluster_bindings: tuple[_Binding, ...] = ()
    bindings_by_ns: dict[str, tuple[_Binding, ...]] = field(default_factory=dict)

    def _role_rules(self, b: _Binding) -> tuple[Rule, ...]:
        if b.role_kind == "ClusterRole":
            return self.cluster_roles.get(b.role_name, ())
        return self.roles.get((b.namespace, b.role_name), ())

    def _granted(self, user: UserInfo, namespace: str) -> Iterable[tuple[_Binding, str, tuple[Rule, ...]]]:
        for b in self.cluster_bindings:
            if who := b.applies_to(user):
                yield b, who, self._role_rules(b)
        if namespace:
            for b in self.bindings_by_ns.get(namespace, ()):
                if who := b.applies_to(user):
                    yield b, who, self._role_rules(b)

    def authorize(self, user: UserInfo, attrs: RequestAttributes) -> Decision:
        if user.is_admin:
            return Decision(True, "")
        namespace = attrs.namespace if attrs.resource_request else ""
        for b, who, rules in self._granted(user, namespace):
            if any(r.allows(attrs) for r in rules):
                bname = f"{b.name}/{b.namespace}" if b.namespace else b.name
                return Decision(True, f'RBAC: allowed by {b.kind} "{bname}" of {b.role_kind} "{b.role_name}" to {who}')
        return Decision(False, "")

    def rules_review(self, user: UserInfo, namespace: str) -> tuple[list[dict], list[dict]]:
        """(resourceRules, nonResourceRules) the user has in ``namespace`` (SelfSubjectRulesReview)."""
        if user.is_admin:
            return ([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                    [{"verbs": ["*"], "nonResourceURLs": ["*"]}])
        resource_rules: list[dict] = []
        non_resource: list[dict] = []
        for _b, _who, rules in self._granted(user, namespace):
            for r in rules:
                if r.non_resource_urls:
                    entry = {"verbs": sorted(r.verbs), "nonResourceURLs": list(r.non_resource_urls)}
                    if entry not in non_resource:
                        non_resource.append(entry)
                if r.resources or r.api_groups:
                    entry = r.to_resource_rule()
                    if entry not in resource_rules:
                        resource_rules.append(entry)
        return resource_rules, non_resource


def _rules(obj: dict) -> tuple[Rule, ...]:
    return tuple(Rule.from_dict(r) for r in obj.get("rules") or () if isinstance(r, dict))


def _binding(obj: dict) -> _Binding | None:
    ref = obj.get("roleRef") or {}
    meta = obj.get("metadata") or {}
    if not ref.get("name"):
        return None
    subjects = tuple(
        (s.get("kind", ""), s.get("name", ""), s.get("namespace", ""))
        for s in obj.get("subjects") or () if isinstance(s, dict)
    )
    return _Binding(obj.get("kind", ""), meta.get("name", ""), meta.get("namespace", ""),
                    ref.get("kind", "ClusterRole"), ref["name"], subjects)


def compile_snapshot(objects: Iterable[dict], *, include_bootstrap: bool = True) -> RbacSnapshot:
    """Pure: index Roles, ClusterRoles and their bindings. Later objects replace earlier ones."""
    by_key: dict[tuple[str, str, str], dict] = {}
    for obj in (*BOOTSTRAP_OBJECTS, *objects) if include_bootstrap else objects:
        meta = obj.get("metadata") or {}
        by_key[(obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))] = obj
    cluster_roles: dict[str, tuple[Rule, ...]] = {}
    roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
    cluster_bindings: list[_Binding] = []
    by_ns: dict[str, list[_Binding]] = {}
    for (kind, ns, name), obj in sorted(by_key.items()):
        if kind == "ClusterRole":
            cluster_roles[name] = _rules(obj)
        elif kind == "Role":
            roles[(ns, name)] = _rules(obj)
        elif kind == "ClusterRoleBinding" and (b := _binding(obj)):
            cluster_bindings.append(b)
        elif kind == "RoleBinding" and (b := _binding(obj)):
            by_ns.setdefault(ns, []).append(b)
    return RbacSnapshot(cluster_roles, roles, tuple(cluster_bindings),
                        {ns: tuple(bs) for ns, bs in by_ns.items()})


class RbacAuthorizer:
    """Authorizer over a store-backed, watch-refreshed :class:`RbacSnapshot`.

    Without a store (tests) call :meth:`load` with objects. A denial first waits (briefly) for the
    watch to reach the store's current revision, so a binding created just before is seen.
    """

    def __init__(self, store: Store | None = None, *, catch_up_timeout: float = 1.0) -> None:
        self._store = store
        self._objects: dict[str, dict] = {}
        self._snapshot = compile_snapshot(())
        self._revision = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self._catch_up_timeout = catch_up_timeout

    @property
    def snapshot(self) -> RbacSnapshot:
        return self._snapshot

    def load(self, objects: Iterable[dict]) -> None:
        self._snapshot = compile_snapshot(objects)

    async def start(self) -> None:
        if self._store is None or self._task is not None:
            return
        await self._relist()
        self._task = asyncio.get_running_loop().create_task(self._watch_loop(), name="rbac-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _relist(self) -> None:
        assert self._store is not None
        rev, kvs = await self._store.list(PREFIX)
        objects: dict[str, dict] = {}
        for kv in kvs:
            with contextlib.suppress(ValueError):
                objects[kv.key] = json.loads(kv.value)
        self._objects = objects
        await self._publish(rev)

    async def _publish(self, revision: int) -> None:
        self._snapshot = compile_snapshot(self._objects.values())
        async with self._changed:
            self._revision = max(self._revision, revision)
            self._changed.notify_all()

    async def _watch_loop(self) -> None:
        assert self._store is not None
        while True:
            try:
                async for batch in self._store.watch(PREFIX, self._revision):
                    for ev in batch:
                        if ev.type == "DELETE":
                            self._objects.pop(ev.kv.key, None)
                        else:
                            with contextlib.suppress(ValueError):
                                self._objects[ev.kv.key] = json.loads(ev.kv.value)
                    if batch:
                        await self._publish(batch[-1].revision)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - compaction, database hiccup: relist and rewatch
                log.warning("api/rbac: watch of %s failed (%s); relisting", PREFIX, err)
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await self._relist()

    async def _catch_up(self) -> bool:
        """Wait until the watch has seen the store's current revision; False if already current."""
        if self._store is None or self._task is None:
            return False
        try:
            current = await self._store.current_revision()
        except Exception:  # noqa: BLE001 - an unreachable store keeps the last snapshot
            return False
        if current <= self._revision:
            return False
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self._revision >= current),
                                       self._catch_up_timeout)
        return True

    async def authorize(self, user: UserInfo, attrs: RequestAttributes) -> Decision:
        decision = self._snapshot.authorize(user, attrs)
        if not decision.allowed and await self._catch_up():
            decision = self._snapshot.authorize(user, attrs)
        return decision

    async def rules_review(self, user: UserInfo, namespace: str) -> tuple[list[dict], list[dict]]:
        await self._catch_up()
        return self._snapshot.rules_review(user, namespace)


# -- built-in policy ---------------------------------------------------------------------------

_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_WORKLOADS = [
    {"apiGroups": [""], "resources": ["pods", "pods/log", "pods/status", "services", "services/status",
                                      "endpoints", "configmaps", "persistentvolumeclaims", "replicationcontrollers",
                                      "serviceaccounts", "events", "limitranges", "resourcequotas", "namespaces"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale", "deployments/status", "replicasets",
                                          "replicasets/scale", "replicasets/status", "daemonsets", "statefulsets"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingresses/status", "networkpolicies"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"]},
]


def _cluster_role(name: str, rules: list[dict]) -> dict:
    return {"apiVersion": RBAC_V1, "kind": "ClusterRole",
            "metadata": {"name": name, "labels": dict(_BOOTSTRAP_LABELS),
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules}


def _cluster_binding(name: str, role: str, groups: list[str]) -> dict:
    return {"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(_BOOTSTRAP_LABELS),
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]}


_PUBLIC_PATHS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
_VIEW = [{**r, "verbs": _READ} for r in _WORKLOADS]
_EDIT = [*_VIEW, *({**r, "verbs": _WRITE} for r in _WORKLOADS),
         {"apiGroups": [""], "resources": ["secrets"], "verbs": [*_READ, *_WRITE]},
         {"apiGroups": [""], "resources": ["pods/exec", "pods/attach", "pods/portforward", "serviceaccounts/token"],
          "verbs": ["create", "get"]}]

BOOTSTRAP_OBJECTS: tuple[dict, ...] = (
    _cluster_role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                    {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
    _cluster_role("system:discovery", [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi",
                                                            "/openapi/*", *_PUBLIC_PATHS], "verbs": ["get"]}]),
    _cluster_role("system:basic-user", [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
         "verbs": ["create"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
    _cluster_role("system:public-info-viewer", [{"nonResourceURLs": _PUBLIC_PATHS, "verbs": ["get"]}]),
    _cluster_role("view", _VIEW),
    _cluster_role("edit", _EDIT),
    _cluster_role("admin", [*_EDIT, {"apiGroups": ["rbac.authorization.k8s.io"],
                                     "resources": ["roles", "rolebindings"], "verbs": [*_READ, *_WRITE]}]),
    _cluster_role("system:pyk3s:node", [
        {"apiGroups": [""], "resources": ["nodes", "nodes/status", "pods", "pods/status", "events", "configmaps",
                                          "secrets", "services", "endpoints", "serviceaccounts",
                                          "serviceaccounts/token", "namespaces"],
         "verbs": [*_READ, *_WRITE]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": [*_READ, *_WRITE]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses", "networkpolicies"],
         "verbs": _READ},
        # the kubelet resolves a pod's runtimeClassName (as the node authorizer allows it to)
        {"apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": _READ}]),
    _cluster_binding("cluster-admin", "cluster-admin", ["system:masters"]),
    _cluster_binding("system:discovery", "system:discovery", ["system:authenticated"]),
    _cluster_binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
    _cluster_binding("system:public-info-viewer", "system:public-info-viewer",
                     ["system:authenticated", "system:unauthenticated"]),
    _cluster_binding("system:pyk3s:node", "system:pyk3s:node", ["system:nodes"]),
)
