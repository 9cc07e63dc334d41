from __future__ import annotations

import asyncio
import re

import pytest

from pyk3s.controllers import CONTROLLERS, ON_EVERY_SERVER, ControllerSettings, run_controllers, supervise
from pyk3s.controllers.hashing import template_hash
from pyk3s.controllers.objects import labels_match, selector_string, set_condition


def test_template_hash_shape_and_stability():
    t = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}
    h = template_hash(t)
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}", h)
    assert h == template_hash({"spec": {"containers": [{"name": "c"}]}, "metadata": {"labels": {"app": "x"}}})
    assert h != template_hash(t, 1)


@pytest.mark.parametrize(("selector", "labels", "want"), [
    ({}, {"a": "1"}, True), (None, {"a": "1"}, False),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "3"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
], ids=["empty", "nil", "labels", "in", "notin-missing", "doesnotexist"])
def test_label_selectors(selector, labels, want):
    assert labels_match(selector, labels) is want


def test_selector_string():
    assert selector_string({"matchLabels": {"b": "2", "a": "1"},
                            "matchExpressions": [{"key": "t", "operator": "In", "values": ["y", "x"]}]}) == \
        "a=1,b=2,t in (x,y)"


def test_set_condition_keeps_identical_and_transition_time():
    conds = [{"type": "Ready", "status": "True", "reason": "A", "lastTransitionTime": "t0"}]
    assert set_condition(conds, {"type": "Ready", "status": "True", "reason": "A"}, "t1") == conds
    changed = set_condition(conds, {"type": "Ready", "status": "True", "reason": "B"}, "t1")
    assert changed[0]["lastTransitionTime"] == "t0" and changed[0]["reason"] == "B"
    flipped = set_condition(conds, {"type": "Ready", "status": "False", "reason": "B"}, "t1")
    assert flipped[0]["lastTransitionTime"] == "t1"


async def test_run_controllers_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown controller"):
        await run_controllers(None, None, {"nosuch"})
    assert {"replicaset", "deployment", "daemonset", "scheduler", "endpoints", "garbagecollector", "namespace",
            "nodelifecycle", "nodehosts", "servicelb", "deploy"} <= set(CONTROLLERS)
    assert ON_EVERY_SERVER <= set(CONTROLLERS)


async def test_supervisor_restarts_failed_controller():
    runs = []

    class Flaky:
        name = "flaky"

        def __init__(self, client, settings) -> None:
            pass

        async def run(self) -> None:
            runs.append(1)
            raise RuntimeError("boom")

    settings = ControllerSettings(restart_backoff_min=0.01, restart_backoff_max=0.02)
    task = asyncio.create_task(supervise("flaky", Flaky, None, settings))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(runs) >= 3


def test_every_controller_is_a_loop():
    from pyk3s.controllers.common.loop import Loop

    assert all(isinstance(factory, type) and issubclass(factory, Loop) for factory in CONTROLLERS.values())
