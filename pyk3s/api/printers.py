"""Per-kind Table printers: kubectl's usual columns as kube-apiserver's printers render them.

Each :class:`Printer` is a tuple of column definitions and a function from (object, now) to cells.
The server renders with ``Wide: true`` (every column; kubectl hides ``priority`` > 0 unless ``-o wide``).
:data:`PRINTERS` is the registry, keyed by (group, plural).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AGE", "GENERIC", "NAME", "PRINTERS", "Column", "Printer", "human_duration", "since"]

NONE = "<none>"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> dict:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


Cells = Callable[[dict, dt.datetime], list[Any]]


@dataclass(frozen=True, slots=True)
class Printer:
    columns: tuple[Column, ...]
    cells: Cells


NAME = Column("Name", format="name", description="Name must be unique within a namespace.")
AGE = Column("Age", description="CreationTimestamp is a timestamp representing the server time when this "
                                "object was created.")


# -- helpers ----------------------------------------------------------------------------------


def human_duration(d: dt.timedelta) -> str:
    """apimachinery duration.HumanDuration: 5s, 3m20s, 15m, 5h, 7h30m, 2d3h, 30d, 2y100d."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def since(value: Any, now: dt.datetime) -> str:
    t = parse_time(value)
    return "<unknown>" if t is None else human_duration(now - t)


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def age(obj: dict, now: dt.datetime) -> str:
    return since(_meta(obj).get("creationTimestamp"), now)


def format_labels(labels: dict | None) -> str:
    if not labels:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_selector(sel: dict | None) -> str:
    """metav1.FormatLabelSelector."""
    if not sel:
        return NONE
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or ():
        op, key, values = e.get("operator", ""), e.get("key", ""), e.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or NONE


def _containers(spec: dict) -> tuple[str, str]:
    cs = spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _pod_template(obj: dict) -> dict:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def _lb_ingress(status: dict | None) -> str:
    ing = ((status or {}).get("loadBalancer") or {}).get("ingress") or []
    return ",".join(i.get("ip") or i.get("hostname") or "" for i in ing if i.get("ip") or i.get("hostname"))


# -- pods ---------------------------------------------------------------------------------------


def _condition_true(conditions: Sequence[dict] | None, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions or ())


def pod_cells(pod: dict, now: dt.datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    restartable_init = {c.get("name") for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or ()) + len(restartable_init)
    reason = status.get("reason") or status.get("phase") or ""
    restarts = ready = 0
    last_restart: dt.datetime | None = None

    def note_restart(cs: dict) -> None:
        nonlocal restarts, last_restart
        restarts += int(cs.get("restartCount") or 0)
        t = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if t and (last_restart is None or t > last_restart):
            last_restart = t

    initializing = False
    init_specs = spec.get("initContainers") or []
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        note_restart(cs)
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if cs.get("name") in restartable_init and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term:
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        restarts, has_running = 0, False
        for cs in status.get("initContainerStatuses") or ():
            if cs.get("name") in restartable_init:
                note_restart(cs)
        for cs in reversed(status.get("containerStatuses") or []):
            note_restart(cs)
            state = cs.get("state") or {}
            term, wait = state.get("terminated"), state.get("waiting")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and "running" in state:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status.get("conditions"), "Ready") else "NotReady"
    if _meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"
    gates = spec.get("readinessGates") or []
    if gates:
        true_conds = {c.get("type") for c in status.get("conditions") or () if c.get("status") == "True"}
        gates_text = f"{sum(1 for g in gates if g.get('conditionType') in true_conds)}/{len(gates)}"
    else:
        gates_text = NONE
    return [_meta(pod).get("name", ""), f"{ready}/{total}", reason, restarts_text, age(pod, now),
            status.get("podIP") or NONE, spec.get("nodeName") or NONE,
            status.get("nominatedNodeName") or NONE, gates_text]


POD = Printer((
    NAME,
    Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", description="The aggregate status of the containers in this pod."),
    Column("Restarts", description="The number of times the containers in this pod have been restarted and when "
                                   "the last container in this pod has restarted."),
    AGE,
    Column("IP", priority=1, description="IP address allocated to the pod. Routable at least within the cluster."),
    Column("Node", priority=1, description="Name of the node where the pod is scheduled."),
    Column("Nominated Node", priority=1, description="Name of the node where the pod is nominated to run."),
    Column("Readiness Gates", priority=1, description="The readiness gates of this pod."),
), pod_cells)


# -- services, endpoints, ingresses --------------------------------------------------------------


def service_external_ip(svc: dict) -> str:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or ())
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if kind == "LoadBalancer":
        lb = _lb_ingress(svc.get("status"))  # the server renders with Wide: true, no truncation
        results = [*external, lb] if lb else external
        return ",".join(results) if results else "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def service_ports(svc: dict) -> str:
    out = []
    for p in (svc.get("spec") or {}).get("ports") or ():
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) if out else NONE


SERVICE = Printer((
    NAME,
    Column("Type", description="The type of the service."),
    Column("Cluster-IP", description="The IP address of the service."),
    Column("External-IP", description="The external IP address of the service."),
    Column("Port(s)", description="The port(s) of the service."),
    AGE,
    Column("Selector", priority=1, description="Route service traffic to pods with label keys and values matching "
                                               "this selector."),
), lambda s, now: [
    _meta(s).get("name", ""), (s.get("spec") or {}).get("type") or "ClusterIP",
    (s.get("spec") or {}).get("clusterIP") or NONE, service_external_ip(s), service_ports(s), age(s, now),
    format_labels((s.get("spec") or {}).get("selector")),
])


def _format_endpoints(subsets: Sequence[dict] | None) -> str:
    items: list[str] = []
    count = 0
    for ss in subsets or ():
        ports = ss.get("ports") or [{}]
        for addr in ss.get("addresses") or ():
            for p in ports:
                count += 1
                if len(items) < 3:
                    items.append(f"{addr.get('ip')}:{p['port']}" if p.get("port") else str(addr.get("ip")))
    if not items:
        return NONE
    text = ",".join(items)
    return text + f" + {count - 3} more..." if count > 3 else text


ENDPOINTS = Printer((NAME, Column("Endpoints", description="Endpoints of the service."), AGE),
                    lambda e, now: [_meta(e).get("name", ""), _format_endpoints(e.get("subsets")), age(e, now)])


def _slice_ports(s: dict) -> str:
    ports = s.get("ports")
    if not ports:
        return "<unset>"
    return ",".join(str(p["port"]) if p.get("port") is not None else "<unset>" for p in ports)


def _slice_endpoints(s: dict) -> str:
    addrs = [a for ep in s.get("endpoints") or () for a in ep.get("addresses") or ()]
    if not addrs:
        return "<unset>"
    text = ",".join(addrs[:3])
    return text + f" + {len(addrs) - 3} more..." if len(addrs) > 3 else text


ENDPOINTSLICE = Printer((
    NAME, Column("AddressType", description="Type of address carried by this EndpointSlice."),
    Column("Ports", description="Ports allowed by this EndpointSlice"),
    Column("Endpoints", description="Endpoints in this EndpointSlice"), AGE,
), lambda s, now: [_meta(s).get("name", ""), s.get("addressType", ""), _slice_ports(s), _slice_endpoints(s),
                   age(s, now)])


def _ingress_cells(ing: dict, now: dt.datetime) -> list[Any]:
    spec = ing.get("spec") or {}
    hosts = [r["host"] for r in spec.get("rules") or () if r.get("host")]
    return [_meta(ing).get("name", ""), spec.get("ingressClassName") or NONE, ",".join(hosts) or "*",
            _lb_ingress(ing.get("status")), "80, 443" if spec.get("tls") else "80", age(ing, now)]


INGRESS = Printer((
    NAME, Column("Class", description="The name of the IngressClass resource that should be used."),
    Column("Hosts", description="Hosts that incoming requests are matched against."),
    Column("Address", description="Address is a list containing ingress points for the load-balancer."),
    Column("Ports", description="Ports of TLS configurations that open"), AGE,
), _ingress_cells)


# -- workloads ----------------------------------------------------------------------------------


def _wide_workload(obj: dict, selector: Any) -> list[Any]:
    names, images = _containers(_pod_template(obj))
    return [names, images, selector]


_WORKLOAD_WIDE = (
    Column("Containers", priority=1, description="Names of each container in the template."),
    Column("Images", priority=1, description="Images referenced by each container in the template."),
    Column("Selector", priority=1, description="Label selector for pods."),
)


def _deployment_cells(d: dict, now: dt.datetime) -> list[Any]:
    spec, st = d.get("spec") or {}, d.get("status") or {}
    desired = spec.get("replicas", 1)
    return [_meta(d).get("name", ""), f"{st.get('readyReplicas', 0)}/{desired}", int(st.get("updatedReplicas", 0)),
            int(st.get("availableReplicas", 0)), age(d, now), *_wide_workload(d, format_selector(spec.get("selector")))]


DEPLOYMENT = Printer((
    NAME, Column("Ready", description="Number of the pod with ready state"),
    Column("Up-to-date", "integer", "Total number of non-terminated pods targeted by this deployment that have the "
                                    "desired template spec."),
    Column("Available", "integer", "Total number of available pods (ready for at least minReadySeconds)"),
    AGE, *_WORKLOAD_WIDE,
), _deployment_cells)


def _replicaset_cells(r: dict, now: dt.datetime) -> list[Any]:
    spec, st = r.get("spec") or {}, r.get("status") or {}
    return [_meta(r).get("name", ""), int(spec.get("replicas", 1)), int(st.get("replicas", 0)),
            int(st.get("readyReplicas", 0)), age(r, now), *_wide_workload(r, format_selector(spec.get("selector")))]


REPLICASET = Printer((
    NAME, Column("Desired", "integer", "Number of desired pods."),
    Column("Current", "integer", "Number of actual replicas."),
    Column("Ready", "integer", "Number of ready replicas."), AGE, *_WORKLOAD_WIDE,
), _replicaset_cells)


def _daemonset_cells(ds: dict, now: dt.datetime) -> list[Any]:
    spec, st = ds.get("spec") or {}, ds.get("status") or {}
    return [_meta(ds).get("name", ""), int(st.get("desiredNumberScheduled", 0)),
            int(st.get("currentNumberScheduled", 0)), int(st.get("numberReady", 0)),
            int(st.get("updatedNumberScheduled", 0)), int(st.get("numberAvailable", 0)),
            format_labels(_pod_template(ds).get("nodeSelector")), age(ds, now),
            *_wide_workload(ds, format_selector(spec.get("selector")))]


DAEMONSET = Printer((
    NAME, Column("Desired", "integer", "The desired number of nodes that should be running the daemon pod."),
    Column("Current", "integer", "The number of nodes that are running at least 1 daemon pod."),
    Column("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more "
                               "of the daemon pod running and ready."),
    Column("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    Column("Available", "integer", "The number of nodes that should be running the daemon pod and have one or "
                                   "more of the daemon pod running and available."),
    Column("Node Selector", description="NodeSelector is a selector which must be true for the pod to fit on a "
                                        "node."),
    AGE, *_WORKLOAD_WIDE,
), _daemonset_cells)


def _job_cells(j: dict, now: dt.datetime) -> list[Any]:
    spec, st = j.get("spec") or {}, j.get("status") or {}
    completions = spec.get("completions")
    done = f"{st.get('succeeded', 0)}/{completions if completions is not None else 1}"
    conds = {c.get("type") for c in st.get("conditions") or () if c.get("status") == "True"}
    status = ("Complete" if "Complete" in conds else "Failed" if "Failed" in conds
              else "Suspended" if "Suspended" in conds else "Running")
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = human_duration((end or now) - start) if start else ""
    return [_meta(j).get("name", ""), status, done, duration, age(j, now),
            *_wide_workload(j, format_selector(spec.get("selector")))]


JOB = Printer((
    NAME, Column("Status", description="Status of the job."),
    Column("Completions", description="The desired number of successfully finished pods the job should be run "
                                      "with."),
    Column("Duration", description="Time required to complete the job."), AGE, *_WORKLOAD_WIDE,
), _job_cells)


# -- cluster objects ----------------------------------------------------------------------------


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
    for k, v in (_meta(node).get("labels") or {}).items():
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

    return [_meta(node).get("name", ""), node_status(node), node_roles(node), age(node, now),
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
                    lambda n, now: [_meta(n).get("name", ""), (n.get("status") or {}).get("phase", ""), age(n, now)])

CONFIGMAP = Printer((NAME, Column("Data", "integer", "Number of data entries in the ConfigMap."), AGE),
                    lambda c, now: [_meta(c).get("name", ""),
                                    len(c.get("data") or {}) + len(c.get("binaryData") or {}), age(c, now)])

SECRET = Printer((NAME, Column("Type", description="The type of the secret"),
                  Column("Data", "integer", "The number of data entries in the secret"), AGE),
                 lambda s, now: [_meta(s).get("name", ""), s.get("type", ""), len(s.get("data") or {}), age(s, now)])

SERVICEACCOUNT = Printer((NAME, Column("Secrets", "integer", "The number of secrets attached"), AGE),
                         lambda s, now: [_meta(s).get("name", ""), len(s.get("secrets") or ()), age(s, now)])

LEASE = Printer((NAME, Column("Holder", description="The holder of the lease"), AGE),
                lambda x, now: [_meta(x).get("name", ""), (x.get("spec") or {}).get("holderIdentity") or "",
                                age(x, now)])

CREATED_AT = Column("Created At", "date", "CreationTimestamp is a timestamp representing the server time when "
                                          "this object was created.")
CREATED = Printer((NAME, CREATED_AT),
                  lambda o, now: [_meta(o).get("name", ""), _meta(o).get("creationTimestamp", "")])


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
), lambda b, now: [_meta(b).get("name", ""),
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
            (e.get("message") or "").strip(), first, int(count), _meta(e).get("name", "")]


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
), lambda p, now: [_meta(p).get("name", ""), int(p.get("value", 0)), bool(p.get("globalDefault", False)),
                   age(p, now), p.get("preemptionPolicy", "")])

INGRESSCLASS = Printer((
    NAME, Column("Controller", description="Controller that is responsible for handling this class"),
    Column("Parameters", description="A reference to a resource with additional parameters"), AGE,
), lambda c, now: [_meta(c).get("name", ""), (c.get("spec") or {}).get("controller", ""),
                   _params((c.get("spec") or {}).get("parameters")), age(c, now)])


def _params(p: dict | None) -> str:
    if not p:
        return NONE
    group = p.get("apiGroup") or ""
    kind = f"{p.get('kind', '')}.{group}" if group else p.get("kind", "")
    return f"{kind}/{p.get('name', '')}"


GENERIC = Printer((NAME, AGE), lambda o, now: [_meta(o).get("name", ""), age(o, now)])

PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "pods"): POD,
    ("", "services"): SERVICE,
    ("", "endpoints"): ENDPOINTS,
    ("", "nodes"): NODE,
    ("", "namespaces"): NAMESPACE,
    ("", "configmaps"): CONFIGMAP,
    ("", "secrets"): SECRET,
    ("", "serviceaccounts"): SERVICEACCOUNT,
    ("", "events"): EVENT,
    ("events.k8s.io", "events"): EVENT,
    ("apps", "deployments"): DEPLOYMENT,
    ("apps", "replicasets"): REPLICASET,
    ("apps", "daemonsets"): DAEMONSET,
    ("batch", "jobs"): JOB,
    ("discovery.k8s.io", "endpointslices"): ENDPOINTSLICE,
    ("networking.k8s.io", "ingresses"): INGRESS,
    ("networking.k8s.io", "ingressclasses"): INGRESSCLASS,
    ("coordination.k8s.io", "leases"): LEASE,
    ("apiextensions.k8s.io", "customresourcedefinitions"): CREATED,
    ("rbac.authorization.k8s.io", "roles"): CREATED,
    ("rbac.authorization.k8s.io", "clusterroles"): CREATED,
    ("rbac.authorization.k8s.io", "rolebindings"): BINDING,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): BINDING,
    ("scheduling.k8s.io", "priorityclasses"): PRIORITYCLASS,
}
