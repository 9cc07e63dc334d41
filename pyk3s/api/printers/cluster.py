"""Printers of cluster and configuration kinds: Node, Namespace, ConfigMap, Secret, ServiceAccount, Lease,
RBAC roles and bindings, CustomResourceDefinition, Event, PriorityClass."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from .base import AGE, NAME, NONE, Column, Printer, age, meta, since

__all__ = [
    "BINDING", "CONFIGMAP", "CREATED", "EVENT", "LEASE", "NAMESPACE", "NODE", "PRIORITYCLASS", "SECRET",
    "SERVICEACCOUNT", "node_roles", "node_status",
]


def node_status(node: dict) -> str:
    out = []
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            out.append("Ready" if c.get("status") == "True" else "NotReady")
    if not out:
        out.append("Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        out.append("SchedulingDisabled")
    return ",".join(out)


def node_roles(node: dict) -> str:
    roles = set()
    for k, v in (meta(node).get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/") and k != "node-role.kubernetes.io/":
            roles.add(k.removeprefix("node-role.kubernetes.io/"))
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or NONE


def _node_cells(node: dict, now: dt.datetime) -> list[Any]:
    st = node.get("status") or {}
    info = st.get("nodeInfo") or {}

    def address(kind: str) -> str:
        return next((a["address"] for a in st.get("addresses") or () if a.get("type") == kind), NONE)

    return [meta(node).get("name", ""), node_status(node), node_roles(node), age(node, now),
            info.get("kubeletVersion", ""), address("InternalIP"), address("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


NODE = Printer((
    NAME, Column("Status", description="The status of the node"),
    Column("Roles", description="The roles of the node"), AGE,
    Column("Version", description="Kubelet Version reported by the node."),
    Column("Internal-IP", priority=1, description="List of addresses reachable to the node."),
    Column("External-IP", priority=1, description="List of addresses reachable to the node."),
    Column("OS-Image", priority=1, description="OS Image reported by the node from /etc/os-release."),
    Column("Kernel-Version", priority=1, description="Kernel Version reported by the node from 'uname -r'."),
    Column("Container-Runtime", priority=1, description="Container Runtime Version reported by the node."),
), _node_cells)

NAMESPACE = Printer((NAME, Column("Status", description="The status of the namespace"), AGE),
                    lambda n, now: [meta(n).get("name", ""), (n.get("status") or {}).get("phase", ""), age(n, now)])

CONFIGMAP = Printer((NAME, Column("Data", "integer", "Number of data entries in the ConfigMap."), AGE),
                    lambda c, now: [meta(c).get("name", ""),
                                    len(c.get("data") or {}) + len(c.get("binaryData") or {}), age(c, now)])

SECRET = Printer((NAME, Column("Type", description="The type of the secret"),
                  Column("Data", "integer", "The number of data entries in the secret"), AGE),
                 lambda s, now: [meta(s).get("name", ""), s.get("type", ""), len(s.get("data") or {}), age(s, now)])

SERVICEACCOUNT = Printer((NAME, Column("Secrets", "integer", "The number of secrets attached"), AGE),
                         lambda s, now: [meta(s).get("name", ""), len(s.get("secrets") or ()), age(s, now)])

LEASE = Printer((NAME, Column("Holder", description="The holder of the lease"), AGE),
                lambda x, now: [meta(x).get("name", ""), (x.get("spec") or {}).get("holderIdentity") or "",
                                age(x, now)])

CREATED_AT = Column("Created At", "date", "CreationTimestamp is a timestamp representing the server time when "
                                          "this object was created.")
CREATED = Printer((NAME, CREATED_AT),
                  lambda o, now: [meta(o).get("name", ""), meta(o).get("creationTimestamp", "")])


def _subjects(kind: str) -> Callable[[dict], str]:
    def pick(b: dict) -> str:
        out = []
        for s in b.get("subjects") or ():
            if s.get("kind") == kind:
                out.append(f"{s.get('namespace')}/{s.get('name')}" if kind == "ServiceAccount" else s.get("name", ""))
        return ", ".join(out)
    return pick


BINDING = Printer((
    NAME, Column("Role", description="Role referenced by this binding"), AGE,
    Column("Users", priority=1, description="Users in the binding"),
    Column("Groups", priority=1, description="Groups in the binding"),
    Column("ServiceAccounts", priority=1, description="ServiceAccounts in the binding"),
), lambda b, now: [meta(b).get("name", ""),
                   f"{(b.get('roleRef') or {}).get('kind', '')}/{(b.get('roleRef') or {}).get('name', '')}",
                   age(b, now), _subjects("User")(b), _subjects("Group")(b), _subjects("ServiceAccount")(b)])


def _event_cells(e: dict, now: dt.datetime) -> list[Any]:
    first = since(e.get("firstTimestamp"), now) if e.get("firstTimestamp") else since(e.get("eventTime"), now)
    last = since(e.get("lastTimestamp"), now) if e.get("lastTimestamp") else first
    count = e.get("count") or 0
    if e.get("series"):
        last = since(e["series"].get("lastObservedTime"), now)
        count = e["series"].get("count", count)
    inv = e.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = e.get("source") or {}
    component, host = src.get("component") or e.get("reportingComponent", ""), src.get("host") or ""
    source = f"{component}, {host}" if host else component
    return [last, e.get("type", ""), e.get("reason", ""), target, inv.get("fieldPath", ""), source,
            (e.get("message") or "").strip(), first, int(count), meta(e).get("name", "")]


EVENT = Printer((
    Column("Last Seen", description="Time when this Event was last observed."),
    Column("Type", description="Type of this event (Normal, Warning), new types could be added in the future."),
    Column("Reason", description="This should be a short, machine understandable string that gives the reason "
                                 "for this event being generated."),
    Column("Object", description="The object that this event is about."),
    Column("Subobject", priority=1, description="The subobject that this event is about."),
    Column("Source", priority=1, description="The component reporting this event."),
    Column("Message", description="A human-readable description of the status of this operation."),
    Column("First Seen", priority=1, description="The time at which the event was first recorded."),
    Column("Count", "integer", "The number of times this event has occurred.", priority=1),
    Column("Name", priority=1, format="name", description="Name must be unique within a namespace."),
), _event_cells)

PRIORITYCLASS = Printer((
    NAME, Column("Value", "integer", "The value of this priority class."),
    Column("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered "
                                        "as the default priority."), AGE,
    Column("PreemptionPolicy", description="PreemptionPolicy is the Policy for preempting pods with lower "
                                           "priority."),
), lambda p, now: [meta(p).get("name", ""), int(p.get("value", 0)), bool(p.get("globalDefault", False)),
                   age(p, now), p.get("preemptionPolicy", "")])
