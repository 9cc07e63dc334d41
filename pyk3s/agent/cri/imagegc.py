"""Image garbage collection, as the kubelet does it for the CRI runtime's images.

Every five minutes (and once as soon as the runtime answers) the kubelet looks at the file system that
holds the images (the runtime's ``ImageFsInfo``). When its usage reaches ``--image-gc-high-threshold``
(85 %), it removes images no container uses, the least recently used first, until usage is back at
``--image-gc-low-threshold`` (80 %). An image younger than ``--image-minimum-gc-age`` (2 minutes since
the kubelet first saw it) is kept (it may be about to be used), and so is a pinned image: the pause
image, the air-gap folder's images (labelled ``io.cri-containerd.pinned=pinned`` at import, which the
CRI of containerd 1.6 does not report, so the kubelet asks containerd for the label) and any image the
runtime reports pinned. When not enough can be freed the Node gets a ``FreeDiskSpaceFailed`` event,
with the kubelet's wording. :func:`plan_gc` is the pure decision; :class:`ImageGc` the loop around it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GcImage", "GcPlan", "ImageGc", "ImageGcPolicy", "ImageRecord", "plan_gc"]

log = logging.getLogger("pyk3s.agent.kubelet")

GC_PERIOD = 300.0           # the kubelet's ImageGCPeriod


@dataclass(frozen=True, slots=True)
class ImageGcPolicy:
    """The kubelet's image GC settings and defaults (``--kubelet-arg image-gc-high-threshold=…``)."""
    high_threshold: int = 85     # percent of the image file system in use that starts a collection
    low_threshold: int = 80      # the usage a collection brings it down to
    minimum_age: float = 120.0   # seconds since an image was first seen before it may be removed

    def __post_init__(self) -> None:
        for name, value in (("image-gc-high-threshold", self.high_threshold),
                            ("image-gc-low-threshold", self.low_threshold)):
            if not 0 <= value <= 100:
                raise ValueError(f"--kubelet-arg {name}={value}: must be between 0 and 100")
        if self.low_threshold >= self.high_threshold and self.high_threshold != 100:
            raise ValueError(f"--kubelet-arg image-gc-low-threshold={self.low_threshold} must be less than "
                             f"image-gc-high-threshold={self.high_threshold}")
        if self.minimum_age < 0:
            raise ValueError("--kubelet-arg image-minimum-gc-age: must not be negative")

    @property
    def enabled(self) -> bool:
        return self.high_threshold < 100   # the kubelet turns image GC off at 100


@dataclass(frozen=True, slots=True)
class GcImage:
    id: str
    names: tuple[str, ...]
    size: int
    pinned: bool = False


@dataclass(slots=True)
class ImageRecord:
    first_detected: float
    last_used: float = 0.0


@dataclass(frozen=True, slots=True)
class GcPlan:
    usage_percent: int
    amount_to_free: int                   # 0: under the high threshold, nothing to do
    remove: tuple[GcImage, ...] = ()
    freed: int = 0

    @property
    def enough(self) -> bool:
        return self.freed >= self.amount_to_free

    def failure_message(self) -> str:
        """The kubelet's FreeDiskSpaceFailed message."""
        return (f"Failed to garbage collect required amount of images. Attempted to free {self.amount_to_free} "
                f"bytes, but only found {self.freed} bytes eligible to free.")


def update_records(records: dict[str, ImageRecord], images: Iterable[GcImage], in_use: set[str],
                   now: float) -> None:
    """The kubelet's detectImages: first-seen times for new images, last-used times for used ones,
    records of images gone forgotten."""
    seen = set()
    for img in images:
        seen.add(img.id)
        rec = records.setdefault(img.id, ImageRecord(first_detected=now))
        if img.id in in_use or in_use & set(img.names):
            rec.last_used = now
    for gone in set(records) - seen:
        del records[gone]


def plan_gc(images: Iterable[GcImage], records: Mapping[str, ImageRecord], in_use: set[str], capacity: int,
            available: int, policy: ImageGcPolicy, now: float) -> GcPlan:
    """What to remove: unused, unpinned images older than the minimum age, least recently used first
    (then first seen), until the usage is back at the low threshold."""
    available = min(available, capacity)
    usage = 100 - int(available * 100 / capacity) if capacity > 0 else 0
    if capacity <= 0 or usage < policy.high_threshold:
        return GcPlan(usage, 0)
    amount = capacity * (100 - policy.low_threshold) // 100 - available
    candidates = [img for img in images if not img.pinned and img.id in records]
    candidates.sort(key=lambda img: (records[img.id].last_used, records[img.id].first_detected))
    remove: list[GcImage] = []
    freed = 0
    for img in candidates:
        rec = records[img.id]
        if img.id in in_use or in_use & set(img.names) or rec.last_used >= now:
            continue
        if now - rec.first_detected < policy.minimum_age:
            continue
        remove.append(img)
        freed += img.size
        if freed >= amount:
            break
    return GcPlan(usage, amount, tuple(remove), freed)


@dataclass
class ImageGc:
    """The loop: ``client`` is the CRI client, ``pinned_names()`` the names pinned outside the CRI,
    ``node_event(type, reason, message)`` records an event on this node."""
    client: Any
    policy: ImageGcPolicy
    pinned_names: Callable[[], Awaitable[set[str]]]
    node_event: Callable[[str, str, str], Awaitable[None]]
    records: dict[str, ImageRecord] = field(default_factory=dict)
    period: float = GC_PERIOD
    clock: Callable[[], float] = time.time

    async def _usage(self) -> tuple[int, int]:
        info = await self.client.image_fs_info()
        mounts = [fs.fs_id.mountpoint for fs in info.image_filesystems if fs.fs_id.mountpoint]
        if not mounts:
            return 0, 0
        st = await asyncio.to_thread(os.statvfs, mounts[0])
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    async def collect(self) -> GcPlan:
        """One pass: detect, decide, remove; the Node hears when not enough could be freed."""
        now = self.clock()
        pinned = await self.pinned_names()
        images = [GcImage(i.id, tuple(i.repo_tags), int(i.size),
                          bool(i.pinned) or bool(pinned & set(i.repo_tags)) or i.id in pinned)
                  for i in await self.client.list_images()]
        in_use = set()
        for c in await self.client.list_containers():
            in_use.add(c.image_ref)
            in_use.add(c.image.image)
        update_records(self.records, images, in_use, now)
        capacity, available = await self._usage()
        if capacity <= 0:
            await self.node_event("Warning", "InvalidDiskCapacity", "invalid capacity 0 on image filesystem")
            return GcPlan(0, 0)
        plan = plan_gc(images, self.records, in_use, capacity, available, self.policy, now)
        if not plan.amount_to_free:
            return plan
        log.info("kubelet: image file system %d%% used (high threshold %d%%): freeing %d bytes down to %d%%",
                 plan.usage_percent, self.policy.high_threshold, plan.amount_to_free, self.policy.low_threshold)
        freed = 0
        for img in plan.remove:
            try:
                await self.client.remove_image(img.id)
            except Exception as exc:  # noqa: BLE001 - one image that cannot go does not stop the others
                log.warning("kubelet: removing image %s: %s", img.names[0] if img.names else img.id, exc)
                continue
            self.records.pop(img.id, None)
            freed += img.size
            log.info("kubelet: image garbage collection removed %s (%d bytes)",
                     ", ".join(img.names) or img.id, img.size)
        done = GcPlan(plan.usage_percent, plan.amount_to_free, plan.remove, freed)
        if not done.enough:
            log.warning("kubelet: %s", done.failure_message())
            await self.node_event("Warning", "FreeDiskSpaceFailed", done.failure_message())
        return done

    async def run(self, ready: Callable[[], Awaitable[bool]]) -> None:
        """Once the runtime answers, a pass now and one every period; as the kubelet, a failing pass is
        a Node event only when the one before failed too (the first may come before any stats)."""
        if not self.policy.enabled or not await ready():
            return
        failed_before = False
        while True:
            try:
                await self.collect()
                failed_before = False
            except Exception as exc:  # noqa: BLE001 - the next period tries again, as the kubelet does
                log.warning("kubelet: image garbage collection failed: %s", exc)
                if failed_before:
                    await self.node_event("Warning", "ImageGCFailed", str(exc))
                failed_before = True
            await asyncio.sleep(self.period)
