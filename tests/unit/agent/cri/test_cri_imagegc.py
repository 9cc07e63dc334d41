"""Image garbage collection as the kubelet decides it: thresholds, least recently used first, minimum
age, in-use and pinned images kept; the settings from --kubelet-arg."""

from __future__ import annotations

import pytest

from pyk3s.agent.cri.imagegc import (
    GcImage,
    ImageGcPolicy,
    ImageRecord,
    plan_gc,
    update_records,
)
from pyk3s.agent.cri.settings import image_gc_policy

GiB = 2**30
NOW = 10_000.0
POLICY = ImageGcPolicy()     # 85 % / 80 % / 2 minutes


def images() -> list[GcImage]:
    return [GcImage("sha256:old", ("docker.io/library/old:1",), 3 * GiB),
            GcImage("sha256:older", ("docker.io/library/older:1",), 1 * GiB),
            GcImage("sha256:used", ("docker.io/library/used:1",), 5 * GiB),
            GcImage("sha256:pause", ("docker.io/pyk3s/pause:3.10",), 1000, pinned=True),
            GcImage("sha256:new", ("docker.io/library/new:1",), 2 * GiB)]


def records() -> dict[str, ImageRecord]:
    return {"sha256:old": ImageRecord(first_detected=1000, last_used=5000),
            "sha256:older": ImageRecord(first_detected=1000, last_used=4000),
            "sha256:used": ImageRecord(first_detected=1000, last_used=NOW),
            "sha256:pause": ImageRecord(first_detected=1000),
            "sha256:new": ImageRecord(first_detected=NOW - 60)}   # pulled a minute ago


def test_under_the_high_threshold_nothing_happens() -> None:
    plan = plan_gc(images(), records(), {"sha256:used"}, 100 * GiB, 16 * GiB, POLICY, NOW)
    assert plan.usage_percent == 84 and plan.amount_to_free == 0 and plan.remove == ()


def test_least_recently_used_go_first_down_to_the_low_threshold() -> None:
    # 90 % used: free 10 GiB - ... to reach 80 %: 20 GiB free wanted, 10 available -> 10 GiB to free
    plan = plan_gc(images(), records(), {"sha256:used"}, 100 * GiB, 10 * GiB, POLICY, NOW)
    assert plan.usage_percent == 90 and plan.amount_to_free == 10 * GiB
    # older (last used 4000), then old (5000); used is in use, pause pinned, new too young
    assert [i.id for i in plan.remove] == ["sha256:older", "sha256:old"]
    assert plan.freed == 4 * GiB and not plan.enough
    assert plan.failure_message() == (f"Failed to garbage collect required amount of images. Attempted to free "
                                      f"{10 * GiB} bytes, but only found {4 * GiB} bytes eligible to free.")


def test_stops_once_enough_is_freed() -> None:
    plan = plan_gc(images(), records(), {"sha256:used"}, 100 * GiB, 15 * GiB, ImageGcPolicy(85, 84), NOW)
    assert plan.usage_percent == 85 and plan.amount_to_free == 1 * GiB and [i.id for i in plan.remove] == ["sha256:older"] and plan.enough


def test_minimum_age_zero_and_in_use_by_name() -> None:
    policy = ImageGcPolicy(high_threshold=1, low_threshold=0, minimum_age=0)
    plan = plan_gc(images(), records(), {"docker.io/library/used:1"}, 100 * GiB, 50 * GiB, policy, NOW)
    assert {i.id for i in plan.remove} == {"sha256:older", "sha256:old", "sha256:new"}


def test_records_follow_what_is_seen_and_used() -> None:
    recs: dict[str, ImageRecord] = {"sha256:gone": ImageRecord(1.0)}
    update_records(recs, images(), {"sha256:used"}, NOW)
    assert "sha256:gone" not in recs and recs["sha256:new"].first_detected == NOW
    assert recs["sha256:used"].last_used == NOW and recs["sha256:old"].last_used == 0.0
    update_records(recs, images(), set(), NOW + 5)
    assert recs["sha256:new"].first_detected == NOW and recs["sha256:used"].last_used == NOW


def test_policy_from_kubelet_args() -> None:
    assert image_gc_policy(None) == ImageGcPolicy(85, 80, 120.0)
    assert image_gc_policy(["image-gc-high-threshold=50", "--image-gc-low-threshold=20",
                            "image-minimum-gc-age=30s"]) == ImageGcPolicy(50, 20, 30.0)
    assert not image_gc_policy(["image-gc-high-threshold=100"]).enabled
    with pytest.raises(ValueError, match="must be less than"):
        image_gc_policy(["image-gc-low-threshold=90"])
    with pytest.raises(ValueError, match="between 0 and 100"):
        image_gc_policy(["image-gc-high-threshold=101"])
    with pytest.raises(ValueError, match="does not take 'max-pods'"):
        image_gc_policy(["max-pods=200"])
    with pytest.raises(ValueError, match="invalid value"):
        image_gc_policy(["image-minimum-gc-age=soon"])
