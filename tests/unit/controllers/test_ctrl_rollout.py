"""The pure rollout planner, driven step by step with a simulated ReplicaSet controller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pyk3s.controllers.rollout import (
    HASH_LABEL,
    REVISION,
    max_surge,
    max_unavailable,
    plan_deployment,
    resolve_int_or_percent,
    templates_equal,
)

NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


def deployment(replicas: int = 4, image: str = "v1", strategy: dict | None = None, **spec) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "default", "uid": "d-uid", "generation": 1, "annotations": {}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}},
                              "spec": {"containers": [{"name": "c", "image": image}]}},
                 "strategy": strategy or {"type": "RollingUpdate"}, "revisionHistoryLimit": 10, **spec},
        "status": {},
    }


class World:
    """Applies plans like the API + ReplicaSet controller would, with every pod instantly available."""

    def __init__(self, d: dict, available: bool = True) -> None:
        self.d = d
        self.rss: dict[str, dict] = {}
        self.available = available
        self.clock = NOW
        self.n = 0

    def step(self):
        self.clock += timedelta(seconds=1)
        plan = plan_deployment(self.d, list(self.rss.values()), [], self.clock, dict(self.rss))
        if plan.create is not None:
            rs = plan.create
            self.n += 1
            rs["metadata"].update(uid=f"rs{self.n}", generation=1,
                                  creationTimestamp=(NOW + timedelta(minutes=self.n)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            self.rss[rs["metadata"]["name"]] = rs
        for rs in plan.updates:
            self.rss[rs["metadata"]["name"]] = rs
        for rs in plan.deletes:
            self.rss.pop(rs["metadata"]["name"])
        if plan.annotations is not None:
            self.d["metadata"]["annotations"] = plan.annotations
        self.d["status"] = plan.status
        for rs in self.rss.values():   # the ReplicaSet controller converges instantly
            n = rs["spec"]["replicas"]
            rs["status"] = {"replicas": n, "readyReplicas": n if self.available else 0,
                            "availableReplicas": n if self.available else 0, "observedGeneration": 1}
        return plan

    def converge(self, max_steps: int = 30) -> list:
        history = []
        for _ in range(max_steps):
            plan = self.step()
            history.append({name: rs["spec"]["replicas"] for name, rs in self.rss.items()})
            if not (plan.create or plan.updates or plan.deletes or plan.status_changed or plan.annotations):
                return history
        raise AssertionError("did not converge")

    def cond(self, type_: str) -> dict:
        return next(c for c in self.d["status"]["conditions"] if c["type"] == type_)


@pytest.mark.parametrize(("value", "total", "up", "want"), [
    ("25%", 4, True, 1), ("25%", 5, True, 2), ("25%", 5, False, 1), ("25%", 3, False, 0), (2, 10, True, 2),
    ("0%", 10, True, 0), ("100%", 3, False, 3),
], ids=["25%-of-4", "surge-rounds-up", "unavailable-rounds-down", "floor-to-0", "int", "zero", "all"])
def test_percent_rounding(value, total, up, want):
    assert resolve_int_or_percent(value, total, up) == want


def test_fenceposts_never_both_zero():
    d = deployment(3, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}})
    assert (max_surge(d), max_unavailable(d)) == (0, 1)
    assert max_unavailable(deployment(3, strategy={"type": "Recreate"})) == 0


def test_first_rollout_creates_hashed_replicaset_and_completes():
    w = World(deployment(4))
    w.converge()
    (rs,) = w.rss.values()
    h = rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL]
    assert rs["metadata"]["name"] == f"app-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "app", HASH_LABEL: h}
    assert rs["metadata"]["labels"] == {"app": "app", HASH_LABEL: h}
    assert rs["metadata"]["ownerReferences"][0]["uid"] == "d-uid"
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "4"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "5"
    assert w.d["metadata"]["annotations"][REVISION] == "1"
    st = w.d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["availableReplicas"], st["observedGeneration"]) == (4, 4, 4, 1)
    assert w.cond("Available")["reason"] == "MinimumReplicasAvailable"
    assert w.cond("Progressing")["reason"] == "NewReplicaSetAvailable"
    assert w.cond("Progressing")["message"] == f'ReplicaSet "app-{h}" has successfully progressed.'


def test_rolling_update_respects_surge_and_unavailability():
    w = World(deployment(4))
    w.converge()
    w.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    w.d["metadata"]["generation"] = 2
    history = w.converge()
    for snapshot in history:
        assert sum(snapshot.values()) <= 5  # maxSurge 25% of 4 → 1
    assert sorted(w.rss[n]["metadata"]["annotations"][REVISION] for n in w.rss) == ["1", "2"]
    old, new = sorted(w.rss.values(), key=lambda rs: rs["metadata"]["annotations"][REVISION])
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 4)
    assert w.d["status"]["updatedReplicas"] == 4
    assert w.cond("Progressing")["reason"] == "NewReplicaSetAvailable"


def test_undo_reuses_old_replicaset_with_next_revision():
    w = World(deployment(2))
    w.converge()
    first = next(iter(w.rss))
    w.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    w.converge()
    w.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v1"   # what kubectl rollout undo does
    w.converge()
    assert len(w.rss) == 2
    assert w.rss[first]["spec"]["replicas"] == 2
    assert w.rss[first]["metadata"]["annotations"][REVISION] == "3"
    assert w.rss[first]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert w.d["metadata"]["annotations"][REVISION] == "3"


def test_restart_annotation_makes_a_new_replicaset():
    w = World(deployment(1))
    w.converge()
    w.d["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
    w.converge()
    assert len(w.rss) == 2


def test_revision_history_limit_deletes_oldest():
    w = World(deployment(1, revisionHistoryLimit=1))
    for image in ("v1", "v2", "v3", "v4"):
        w.d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        w.converge()
    revisions = sorted(int(rs["metadata"]["annotations"][REVISION]) for rs in w.rss.values())
    assert revisions == [3, 4]


def test_recreate_scales_old_to_zero_before_new():
    w = World(deployment(3, strategy={"type": "Recreate"}))
    w.converge()
    w.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    history = w.converge()
    for snapshot in history:
        live = [n for n, r in snapshot.items() if r > 0]
        assert len(live) <= 1


def test_paused_deployment_does_not_roll_out_but_scales():
    w = World(deployment(2))
    w.converge()
    w.d["spec"]["paused"] = True
    w.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    w.d["spec"]["replicas"] = 3
    w.converge()
    assert len(w.rss) == 1
    assert next(iter(w.rss.values()))["spec"]["replicas"] == 3
    assert w.cond("Progressing")["reason"] == "DeploymentPaused"


def test_progress_deadline_exceeded_when_pods_never_become_available():
    w = World(deployment(2, progressDeadlineSeconds=5), available=False)
    w.converge()
    assert w.cond("Available")["status"] == "False"
    w.clock += timedelta(seconds=30)
    w.converge()
    cond = w.cond("Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"].endswith("has timed out progressing.")


def test_scaling_event_is_proportional():
    w = World(deployment(10), available=False)
    w.converge()
    w.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    w.step()
    w.step()
    sizes_before = sorted(rs["spec"]["replicas"] for rs in w.rss.values())
    assert sum(sizes_before) > 10
    w.d["spec"]["replicas"] = 20
    w.step()
    total = sum(rs["spec"]["replicas"] for rs in w.rss.values())
    assert total == 20 + max_surge(w.d)


def test_templates_equal_ignores_hash_label():
    a = {"metadata": {"labels": {"app": "x", HASH_LABEL: "abc"}}, "spec": {"containers": []}}
    b = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}
    assert templates_equal(a, b)
