"""Printers of the workload kinds: Deployment, ReplicaSet, DaemonSet, Job (wide: containers, images, selector)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .base import (
    AGE,
    NAME,
    Column,
    Printer,
    age,
    format_labels,
    format_selector,
    human_duration,
    meta,
    parse_time,
)

__all__ = ["DAEMONSET", "DEPLOYMENT", "JOB", "REPLICASET"]


def _containers(spec: dict) -> tuple[str, str]:
    cs = spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _pod_template(obj: dict) -> dict:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


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
    return [meta(d).get("name", ""), f"{st.get('readyReplicas', 0)}/{desired}", int(st.get("updatedReplicas", 0)),
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
    return [meta(r).get("name", ""), int(spec.get("replicas", 1)), int(st.get("replicas", 0)),
            int(st.get("readyReplicas", 0)), age(r, now), *_wide_workload(r, format_selector(spec.get("selector")))]


REPLICASET = Printer((
    NAME, Column("Desired", "integer", "Number of desired pods."),
    Column("Current", "integer", "Number of actual replicas."),
    Column("Ready", "integer", "Number of ready replicas."), AGE, *_WORKLOAD_WIDE,
), _replicaset_cells)


def _daemonset_cells(ds: dict, now: dt.datetime) -> list[Any]:
    spec, st = ds.get("spec") or {}, ds.get("status") or {}
    return [meta(ds).get("name", ""), int(st.get("desiredNumberScheduled", 0)),
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
    return [meta(j).get("name", ""), status, done, duration, age(j, now),
            *_wide_workload(j, format_selector(spec.get("selector")))]


JOB = Printer((
    NAME, Column("Status", description="Status of the job."),
    Column("Completions", description="The desired number of successfully finished pods the job should be run "
                                      "with."),
    Column("Duration", description="Time required to complete the job."), AGE, *_WORKLOAD_WIDE,
), _job_cells)
