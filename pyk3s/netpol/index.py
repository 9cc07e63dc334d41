"""Per-pod allow sets, kept incrementally: what a node's data path needs, computed from policies,
pods and namespaces with the predicates of :mod:`pyk3s.netpol.evaluate` (pure, no I/O).

Shape (one per direction; ``in`` judges the destination pod, ``out`` the source pod):

* every local pod selected by a policy of that direction belongs to a **group**: pods isolated by the
  same policies (and, for ingress, whose named ports resolve alike) share one;
* a group holds ``pods``: peer pod address -> the ports the group's rules open to/from that pod
  (selector peers; for egress also named ports on pods inside an ipBlock or matched by "any peer"),
  and ``ranges``: disjoint address ranges -> ports (ipBlock peers and "any peer" rules, numbers only
  where the peer is not a pod);
* ``dispatch``: local pod address -> its group, and ``local``: the addresses of every local pod.

A packet is allowed by a group when its peer address is in ``pods`` with the port, or inside a range
with the port (:meth:`AllowIndex.allows` is that lookup, the same the kernel does).

Changes arrive one object at a time (:meth:`set_pod`, :meth:`set_policy`, :meth:`set_namespace`, and
their deletes); each touches only what depends on it: a pod's label change re-checks that pod
against the rules of the policies active here (those selecting a local pod; the others cost this
node nothing) and rewrites its element in the groups that name it. Groups whose policies changed are
recomputed once, when the result is read. :meth:`take_delta` returns what changed since the last
call, for the kernel (:mod:`pyk3s.netpol.delta`); :meth:`state` the whole thing for a full load.

An address claimed by two pods (one terminating, one new) belongs to the newest live one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import replace

from .delta import Applied, Delta, Group, GroupDelta, IndexState
from .evaluate import ConnectionEnd, peer_matches, selects
from .model import EGRESS, INGRESS, NamespaceInfo, PodInfo, Policy, TrafficRule, parse_ip
from .ports import NONE, PortSet, resolve_ports
from .ranges import AddrRange, block_ranges, disjoint, full_range

__all__ = ["AllowIndex", "Delta", "Group", "GroupDelta", "IndexState", "RuleId"]

RuleId = tuple[str, str, int]  # (policy key, direction, rule index)
DIRECTIONS = (INGRESS, EGRESS)


def _gid(direction: str, policies: frozenset[str], ctx: tuple) -> str:
    text = repr((direction, sorted(policies), ctx))
    return ("i-" if direction == INGRESS else "e-") + hashlib.sha256(text.encode()).hexdigest()[:12]


def _family(ip: str) -> int:
    return 6 if ":" in ip else 4


class AllowIndex:
    """The allow sets of the pods of ``node`` (every pod when ``node`` is None)."""

    def __init__(self, node: str | None = None) -> None:
        self.node = node
        self.ns_labels: dict[str, Mapping[str, str]] = {}
        self.policies: dict[str, Policy] = {}
        self.ns_policies: dict[str, set[str]] = {}
        self.claims: dict[str, PodInfo] = {}  # every pod seen, as given
        self.pods: dict[str, PodInfo] = {}  # taking part, with the addresses they own
        self.pods_by_ns: dict[str, set[str]] = {}
        self.owner: dict[str, str] = {}  # address -> pod key
        self.rules: dict[RuleId, tuple[Policy, TrafficRule]] = {}
        self.policy_rules: dict[str, list[RuleId]] = {}
        # rules that give pods per-address elements: those whose peers select pods of the policy's own
        # namespace only (by namespace), and the others (namespace selectors, egress named ports)
        self.rules_ns: dict[str, set[RuleId]] = {}
        self.rules_wide: set[RuleId] = set()
        self.rule_members: dict[RuleId, set[str]] = {}
        self.pod_rules: dict[str, set[RuleId]] = {}
        # a policy is active on this node while some group (a local pod) uses it: only active policies'
        # rules have members, so a node pays for the policies that select its pods
        self.policy_groups: dict[str, set[str]] = {}
        self.rule_groups: dict[RuleId, set[str]] = {}
        self.groups: dict[str, Group] = {}
        self.pod_group: dict[tuple[str, str], str] = {}
        self.dispatch: dict[str, dict[str, str]] = {INGRESS: {}, EGRESS: {}}
        self.local: set[str] = set()
        self._pod_dispatch: dict[tuple[str, str], dict[str, str]] = {}
        self._pod_local: dict[str, set[str]] = {}
        self._needs_fill: set[str] = set()
        self.applied = Applied()  # what was last handed out (the kernel's view)

    # -- public: changes --------------------------------------------------------------------------------

    def set_namespace(self, ns: NamespaceInfo) -> None:
        if self.ns_labels.get(ns.name) == ns.labels:
            return
        self.ns_labels[ns.name] = dict(ns.labels)
        for key in sorted(self.pods_by_ns.get(ns.name, ())):
            self._peer_changed(key, self.pods[key], self.pods[key], only_wide=True)

    def delete_namespace(self, name: str) -> None:
        if name in self.ns_labels:
            self.set_namespace(NamespaceInfo(name, {}))
            del self.ns_labels[name]

    def set_policy(self, policy: Policy) -> None:
        old = self.policies.get(policy.key)
        if old == policy:
            return
        if old is not None:
            self._drop_rules(old)
        self.policies[policy.key] = policy
        self.ns_policies.setdefault(policy.namespace, set()).add(policy.key)
        self._add_rules(policy)
        if self.policy_groups.get(policy.key):
            self._index_members(policy.key)
        self._policy_changed(policy, old)

    def delete_policy(self, key: str) -> None:
        old = self.policies.pop(key, None)
        if old is None:
            return
        self.ns_policies.get(old.namespace, set()).discard(key)
        self._drop_rules(old)
        self._policy_changed(None, old)

    def set_pod(self, pod: PodInfo) -> None:
        if self.claims.get(pod.key) == pod:
            return
        old = self.claims.get(pod.key)
        self.claims[pod.key] = pod
        self._reclaim({*(old.ips if old else ()), *pod.ips}, {pod.key})

    def delete_pod(self, key: str) -> None:
        old = self.claims.pop(key, None)
        if old is not None:
            self._reclaim(set(old.ips), {key})

    # -- public: reading --------------------------------------------------------------------------------

    def state(self) -> IndexState:
        self._flush()
        return IndexState(self.groups, {d: dict(m) for d, m in self.dispatch.items()}, frozenset(self.local))

    def take_delta(self) -> Delta:
        """What changed since the last call; afterwards the index assumes the kernel holds it."""
        self._flush()
        return self.applied.delta(self.groups, self.dispatch, self.local)

    def mark_applied(self) -> None:
        """The kernel now holds the whole current state (after a full load)."""
        self._flush()
        self.applied.reset(self.groups, self.dispatch, self.local)

    def allows(self, src_ip: str, dst_ip: str, protocol: int, port: int) -> bool:
        """The data path's verdict for a new connection, read from the sets (as the kernel does)."""
        self._flush()
        if src_ip == dst_ip:
            return True
        for direction, me, peer in ((EGRESS, src_ip, dst_ip), (INGRESS, dst_ip, src_ip)):
            gid = self.dispatch[direction].get(me)
            if gid is None:
                continue
            group = self.groups[gid]
            ports = group.pods.get(peer)
            if ports is not None and ports.contains(protocol, port):
                continue
            ip = parse_ip(peer)
            if ip is not None and any(r.contains(ip.version, int(ip)) and p.contains(protocol, port)
                                      for r, p in group.ranges):
                continue
            return False
        return True

    # -- rules and their members ------------------------------------------------------------------------

    @staticmethod
    def _wide(rule: TrafficRule, direction: str) -> bool | None:
        """None: the rule gives no pod elements; False: only pods of the policy's namespace; True: any."""
        if direction == EGRESS and rule.named_ports and (rule.any_peer or any(p.ip_block for p in rule.peers)):
            return True
        selectors = [p for p in rule.peers if p.ip_block is None]
        if not selectors:
            return None
        return any(p.namespace_selector is not None for p in selectors)

    def _candidates(self, policy: Policy, rule: TrafficRule, direction: str) -> Iterable[str]:
        wide = self._wide(rule, direction)
        if wide is None:
            return ()
        if not wide:
            return self.pods_by_ns.get(policy.namespace, ())
        if direction == EGRESS and rule.named_ports and (rule.any_peer or any(p.ip_block for p in rule.peers)):
            return self.pods.keys()
        names: set[str] = set()
        for peer in rule.peers:
            if peer.ip_block is not None:
                continue
            if peer.namespace_selector is None:
                names.add(policy.namespace)
            else:
                names |= {n for n in self.pods_by_ns if peer.namespace_selector.matches(self.ns_labels.get(n, {}))}
        return [k for n in names for k in self.pods_by_ns.get(n, ())]

    def _add_rules(self, policy: Policy) -> None:
        for d in DIRECTIONS:
            if not policy.isolates(d):
                continue
            for i, rule in enumerate(policy.rules(d)):
                rid = (policy.key, d, i)
                self.rules[rid] = (policy, rule)
                self.policy_rules.setdefault(policy.key, []).append(rid)
                self.rule_members[rid] = set()

    def _drop_rules(self, policy: Policy) -> None:
        self._unindex_members(policy.key)
        for rid in self.policy_rules.pop(policy.key, []):
            del self.rules[rid]
            self.rule_members.pop(rid, None)

    def _index_members(self, key: str) -> None:
        """Find the pods each rule of an (active) policy names, and let pod changes re-check them."""
        for rid in self.policy_rules.get(key, ()):
            policy, rule = self.rules[rid]
            wide = self._wide(rule, rid[1])
            if wide is None:
                continue
            if wide:
                self.rules_wide.add(rid)
            else:
                self.rules_ns.setdefault(policy.namespace, set()).add(rid)
            members = {k for k in self._candidates(policy, rule, rid[1]) if self._member(policy, rule, rid[1],
                                                                                           self.pods[k])}
            self.rule_members[rid] = members
            for k in members:
                self.pod_rules.setdefault(k, set()).add(rid)

    def _unindex_members(self, key: str) -> None:
        for rid in self.policy_rules.get(key, ()):
            self.rules_wide.discard(rid)
            self.rules_ns.get(rid[0].partition("/")[0], set()).discard(rid)
            for k in self.rule_members.get(rid, ()):
                rules = self.pod_rules.get(k)
                if rules is not None:
                    rules.discard(rid)
                    if not rules:
                        del self.pod_rules[k]
            self.rule_members[rid] = set()

    def _member(self, policy: Policy, rule: TrafficRule, direction: str, pod: PodInfo) -> bool:
        """Does the pod get per-address elements from this rule (see the module docstring)?"""
        if pod.host_network:
            return False
        for ip in pod.ips:
            ep = ConnectionEnd(ip, pod)
            for peer in rule.peers:
                if peer.ip_block is None:
                    if peer_matches(policy, peer, ep, self.ns_labels):
                        return True
                elif direction == EGRESS and rule.named_ports and peer_matches(policy, peer, ep, self.ns_labels):
                    return True
            if direction == EGRESS and rule.named_ports and rule.any_peer:
                return True
        return False

    def _pod_ports(self, group: Group, pod: PodInfo, ip: str) -> PortSet:
        """The ports ``group`` opens to/from peer ``pod`` at address ``ip``."""
        rids = self.pod_rules.get(pod.key)
        if not rids:
            return NONE
        acc = NONE
        if group.direction == INGRESS:  # named ports take the group's numbers: resolved once per rule
            for rid in rids & group.rules:
                acc = acc.union(group.rule_ports[rid])
                if acc.any:
                    break
            return acc
        several = len(pod.ips) > 1
        for rid in rids & group.rules:
            policy, rule = self.rules[rid]
            if several and not self._member_at(policy, rule, pod, ip):
                continue
            acc = acc.union(resolve_ports(rule.ports, pod))
            if acc.any:
                break
        return acc

    def _member_at(self, policy: Policy, rule: TrafficRule, pod: PodInfo, ip: str) -> bool:
        """Does an egress rule name this one address of a pod (for pods with several)?"""
        ep = ConnectionEnd(ip, pod)
        if any(p.ip_block is None and peer_matches(policy, p, ep, self.ns_labels) for p in rule.peers):
            return True
        return rule.named_ports and (rule.any_peer or any(
            p.ip_block is not None and peer_matches(policy, p, ep, self.ns_labels) for p in rule.peers))

    def _ranges(self, group: Group) -> tuple[tuple[AddrRange, PortSet], ...]:
        rep = self._ctx_pod(group) if group.direction == INGRESS else None
        items: list[tuple[AddrRange, PortSet]] = []
        for key in group.policies:
            policy = self.policies.get(key)
            if policy is None:
                continue
            for rule in policy.rules(group.direction):
                ports = resolve_ports(rule.ports, rep, numeric_only=group.direction == EGRESS)
                if rule.any_peer:
                    items += [(full_range(4), ports), (full_range(6), ports)]
                for peer in rule.peers:
                    if peer.ip_block is not None:
                        items += [(r, ports) for r in block_ranges(peer.ip_block)]
        return tuple(disjoint(items))

    @staticmethod
    def _ctx_pod(group: Group) -> PodInfo:
        named = tuple((n, proto, p) for n, proto, ports in group.ctx for p in ports)
        return PodInfo("", "", {}, (), named_ports=named)

    # -- groups -----------------------------------------------------------------------------------------

    def _ctx(self, policies: Iterable[Policy], pod: PodInfo) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        names = {(spec.port, spec.protocol) for p in policies for r in p.ingress for spec in r.ports
                 if isinstance(spec.port, str)}
        return tuple(sorted((n, proto, tuple(sorted(pod.port_numbers(n, proto)))) for n, proto in names))  # type: ignore[arg-type]

    def _group_for(self, pod: PodInfo, direction: str) -> str | None:
        mine = [p for p in (self.policies[k] for k in self.ns_policies.get(pod.namespace, ()))
                if p.isolates(direction) and selects(p, pod)]
        if not mine:
            return None
        keys = frozenset(p.key for p in mine)
        ctx = self._ctx(mine, pod) if direction == INGRESS else ()
        gid = _gid(direction, keys, ctx)
        if gid not in self.groups:
            group = Group(gid, direction, keys, ctx)
            self.groups[gid] = group
            for key in keys:
                used = self.policy_groups.setdefault(key, set())
                if not used:
                    self._index_members(key)
                used.add(gid)
                for rid in self.policy_rules.get(key, ()):
                    if rid[1] == direction:
                        self.rule_groups.setdefault(rid, set()).add(gid)
            self._needs_fill.add(gid)
        return gid

    def _flush(self) -> None:
        """Compute the groups whose content is pending (created, or their policies changed)."""
        for gid in sorted(self._needs_fill):
            group = self.groups.get(gid)
            if group is not None:
                self._fill(group)
        self._needs_fill.clear()

    def _fill(self, group: Group) -> None:
        """Compute a group's pods and ranges from scratch (new group, or its policies changed)."""
        group.rules = {rid for key in group.policies for rid in self.policy_rules.get(key, ())
                       if rid[1] == group.direction}
        rep = self._ctx_pod(group)
        group.rule_ports = {rid: resolve_ports(self.rules[rid][1].ports, rep) for rid in group.rules} \
            if group.direction == INGRESS else {}
        candidates: set[str] = set()
        for rid in group.rules:
            candidates |= self.rule_members[rid]
        fresh: dict[str, PortSet] = {}
        for k in candidates:
            pod = self.pods[k]
            for ip in pod.ips:
                ports = self._pod_ports(group, pod, ip)
                if not ports.empty:
                    fresh[ip] = ports
        touched = self.applied.dirty_elems.setdefault(group.gid, set())
        touched |= fresh.keys() | group.pods.keys()
        group.pods = fresh
        ranges = self._ranges(group)
        if ranges != group.ranges:
            group.ranges = ranges
            self.applied.dirty_ranges.add(group.gid)

    def _leave(self, key: str, direction: str) -> None:
        gid = self.pod_group.pop((key, direction), None)
        if gid is None:
            return
        group = self.groups[gid]
        group.members.discard(key)
        if not group.members:
            del self.groups[gid]
            for pkey in group.policies:
                for rid in self.policy_rules.get(pkey, ()):
                    self.rule_groups.get(rid, set()).discard(gid)
                used = self.policy_groups.get(pkey, set())
                used.discard(gid)
                if not used:
                    self.policy_groups.pop(pkey, None)
                    self._unindex_members(pkey)
            self.applied.forget(gid)
            self._needs_fill.discard(gid)

    def _place(self, key: str) -> None:
        """Put a local pod in its groups and its addresses in the dispatch maps (or take them out)."""
        pod = self.pods.get(key)
        local = pod is not None and not pod.host_network and (self.node is None or pod.node == self.node)
        for d in DIRECTIONS:
            old_gid = self.pod_group.get((key, d))
            new_gid = self._group_for(pod, d) if (local and pod is not None) else None
            if new_gid != old_gid:
                self._leave(key, d)
                if new_gid is not None:
                    self.pod_group[(key, d)] = new_gid
                    self.groups[new_gid].members.add(key)
            want = {ip: new_gid for ip in pod.ips} if (pod is not None and new_gid is not None) else {}
            have = self._pod_dispatch.pop((key, d), {})
            for ip in have.keys() - want.keys():
                self.dispatch[d].pop(ip, None)
                self.applied.dirty_dispatch[d].add(ip)
            for ip, gid in want.items():
                if self.dispatch[d].get(ip) != gid:
                    self.dispatch[d][ip] = gid
                    self.applied.dirty_dispatch[d].add(ip)
            if want:
                self._pod_dispatch[(key, d)] = want
        ips = set(pod.ips) if (pod is not None and local) else set()
        had = self._pod_local.pop(key, set())
        self.local -= had - ips
        self.local |= ips
        if ips:
            self._pod_local[key] = ips

    # -- reacting to changes ----------------------------------------------------------------------------

    def _peer_changed(self, key: str, old: PodInfo | None, new: PodInfo | None, *, only_wide: bool = False) -> None:
        """Re-check one pod against the rules that could name it and rewrite its elements where they
        changed (``only_wide``: after a namespace label change, only rules with namespace selectors)."""
        before = set(self.pod_rules.get(key, ()))
        pod = new or old
        assert pod is not None
        scope = set(self.rules_wide) if only_wide else self.rules_wide | self.rules_ns.get(pod.namespace, set())
        after = before - scope
        if new is not None:
            for rid in scope:
                policy, rule = self.rules[rid]
                if self._member(policy, rule, rid[1], new):
                    after.add(rid)
        for rid in before - after:
            self.rule_members[rid].discard(key)
        for rid in after - before:
            self.rule_members[rid].add(key)
        if after:
            self.pod_rules[key] = after
        else:
            self.pod_rules.pop(key, None)
        if only_wide and before == after:
            return
        gids: set[str] = set()
        for rid in before | after:
            gids |= self.rule_groups.get(rid, set())
        old_ips = set(old.ips) if old is not None else set()
        new_ips = set(new.ips) if new is not None else set()
        for gid in gids - self._needs_fill:
            group = self.groups[gid]
            touched = self.applied.dirty_elems.setdefault(gid, set())
            for ip in old_ips - new_ips:
                if group.pods.pop(ip, None) is not None:
                    touched.add(ip)
            for ip in new_ips:
                ports = self._pod_ports(group, new, ip) if new is not None else NONE
                if ports.empty:
                    if group.pods.pop(ip, None) is not None:
                        touched.add(ip)
                elif group.pods.get(ip) != ports:
                    group.pods[ip] = ports
                    touched.add(ip)

    def _policy_changed(self, new: Policy | None, old: Policy | None) -> None:
        policy = new or old
        assert policy is not None
        key = policy.key
        before = set(self.groups)
        for rid in [r for r in self.rule_groups if r[0] == key]:
            del self.rule_groups[rid]
        for rid in self.policy_rules.get(key, ()):
            self.rule_groups[rid] = {g.gid for g in self.groups.values()
                                     if key in g.policies and g.direction == rid[1]}
        # only pods this policy selects (before or now) can change groups
        for k in sorted(self.pods_by_ns.get(policy.namespace, ())):
            pod = self.pods[k]
            if (old is not None and selects(old, pod)) or (new is not None and selects(new, pod)):
                self._place(k)
        for group in self.groups.values():
            if key in group.policies and group.gid in before:
                self._needs_fill.add(group.gid)

    def _reclaim(self, ips: set[str], keys: set[str]) -> None:
        """Re-decide who owns ``ips`` and re-index every pod whose owned addresses changed."""
        affected = set(keys)
        for ip in ips:
            claimants = [p for p in self.claims.values() if ip in p.ips and not p.host_network]
            best = max(claimants, key=lambda p: (not p.terminating, p.creation, p.key), default=None)
            prev = self.owner.get(ip)
            if best is None:
                self.owner.pop(ip, None)
            else:
                self.owner[ip] = best.key
                affected.add(best.key)
            if prev is not None:
                affected.add(prev)
        updates: list[tuple[str, PodInfo | None, PodInfo | None]] = []
        for key in sorted(affected):
            claim = self.claims.get(key)
            new: PodInfo | None = None
            if claim is not None:
                owned = tuple(ip for ip in claim.ips if self.owner.get(ip) == key)
                new = replace(claim, ips=owned) if owned else None
            old = self.pods.get(key)
            if old != new:
                updates.append((key, old, new))
        # pods giving up an address go first, so the new owner's entries are not removed after it
        updates.sort(key=lambda u: not (set(u[1].ips if u[1] else ()) - set(u[2].ips if u[2] else ())))
        for key, old, new in updates:
            ns = (new or old).namespace  # type: ignore[union-attr]
            if new is None:
                self.pods.pop(key, None)
                self.pods_by_ns.get(ns, set()).discard(key)
            else:
                self.pods[key] = new
                self.pods_by_ns.setdefault(ns, set()).add(key)
            self._peer_changed(key, old, new)
            self._place(key)
