"""Leader election with ``coordination.k8s.io/v1`` Leases, the client-go way.

Several servers share one cluster state; loops that must not run twice (ServiceLB, the workload
controllers, the scheduler, GC) run only on the holder of a Lease in ``kube-system``:

* A candidate reads the Lease every ``retry_period`` (2 s). It takes it when it is free (no holder),
  already its own, or expired: the record (holder, renewTime, …) has not changed for
  ``lease_duration`` (15 s) **as observed on this candidate's own clock** (client-go does not trust
  other machines' clocks, so ``renewTime`` is only compared for change, never against local time).
* Taking or renewing is an update with the read ``resourceVersion``: of two candidates at most one
  wins; the other gets a Conflict and stays a candidate. A new holder bumps ``leaseTransitions``.
* The leader renews every ``retry_period``; if it cannot renew for ``renew_deadline`` (10 s) it
  stops leading (its ``on_leading`` task is cancelled) and becomes a candidate again, before the
  others may see the Lease expire (15 s), so two leaders never overlap by this clock.
* On cancellation a leader releases the Lease (holder cleared, duration 1 s) so a graceful restart
  hands over at once; a crashed leader is replaced after ``lease_duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyk3s.api.tasks import until_first_ends

from .errors import AlreadyExists, ApiError, Conflict, NotFound, TransportError

__all__ = ["LeaderElectionConfig", "LeaderElector", "micro_time"]

log = logging.getLogger("pyk3s.client.leader")


def micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig:
    name: str
    identity: str
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError(f"leader election {self.namespace}/{self.name}: identity must not be empty")
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(f"leader election {self.namespace}/{self.name}: need lease_duration > "
                             "renew_deadline > retry_period > 0")


class LeaderElector:
    """``await elector.run(on_leading)``: campaign forever; ``on_leading()`` runs while this is the leader."""

    def __init__(self, client: Any, config: LeaderElectionConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.config, self.clock = client, config, clock
        self.leases = client.resource("coordination.k8s.io/v1", "leases")
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        self.leading = False
        self.leader = ""  # the holder last seen (this identity when leading)

    # -- one attempt ----------------------------------------------------------------------------
    def _record(self, lease: dict[str, Any]) -> tuple[Any, ...]:
        spec = lease.get("spec") or {}
        return (spec.get("holderIdentity") or "", spec.get("renewTime"), spec.get("acquireTime"),
                spec.get("leaseDurationSeconds"), spec.get("leaseTransitions"))

    def _spec(self, old: dict[str, Any] | None) -> dict[str, Any]:
        now = micro_time()
        spec = dict(old or {})
        if spec.get("holderIdentity") != self.config.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if old else 0)
        spec.update(holderIdentity=self.config.identity, leaseDurationSeconds=int(self.config.lease_duration),
                    renewTime=now)
        return spec

    async def try_acquire_or_renew(self) -> bool:
        """One client-go ``tryAcquireOrRenew``: True when this identity holds the Lease afterwards."""
        c = self.config
        try:
            lease = await self.leases.get(c.name, c.namespace)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": c.name, "namespace": c.namespace}, "spec": self._spec(None)}
            try:
                created = await self.leases.create(body, c.namespace)
            except (AlreadyExists, Conflict):
                return False
            self._observe(created)
            return True
        record = self._record(lease)
        if record != self._observed:
            self._observe(lease)
        holder = record[0]
        self.leader = holder
        duration = float((lease.get("spec") or {}).get("leaseDurationSeconds") or c.lease_duration)
        expired = self.clock() >= self._observed_at + duration
        if holder and holder != c.identity and not expired:
            return False
        lease["spec"] = self._spec(lease.get("spec"))
        try:
            updated = await self.leases.update(lease)
        except Conflict:
            return False
        self._observe(updated)
        return True

    def _observe(self, lease: dict[str, Any]) -> None:
        self._observed = self._record(lease)
        self._observed_at = self.clock()
        self.leader = self._observed[0]

    async def release(self) -> None:
        """Give the Lease up (holder cleared) if this identity holds it."""
        c = self.config
        try:
            lease = await self.leases.get(c.name, c.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != c.identity:
                return
            lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": micro_time()}
            await self.leases.update(lease)
            log.info("leader election %s/%s: %s released the lease", c.namespace, c.name, c.identity)
        except (ApiError, TransportError) as exc:
            log.warning("leader election %s/%s: release failed: %s", c.namespace, c.name, exc)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except (ApiError, TransportError) as exc:
            log.warning("leader election %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False

    # -- the loop -------------------------------------------------------------------------------
    async def acquire(self) -> None:
        """Return once this identity holds the Lease."""
        c = self.config
        reported = ""
        while not await self._attempt():
            if self.leader and self.leader != reported:
                log.info("leader election %s/%s: %s is leading; %s waits", c.namespace, c.name, self.leader,
                         c.identity)
                reported = self.leader
            await asyncio.sleep(c.retry_period)
        self._last_renew = self.clock()
        self.leading = True
        log.info("leader election %s/%s: %s became the leader", c.namespace, c.name, c.identity)

    async def renew(self) -> None:
        """Renew every retry_period; return once renewing failed for renew_deadline."""
        c = self.config
        while True:
            await asyncio.sleep(c.retry_period)
            if await self._attempt():
                self._last_renew = self.clock()
            elif self.leader and self.leader != c.identity:
                break  # someone else holds it: lost for sure
            elif self.clock() - self._last_renew >= c.renew_deadline:
                break
        self.leading = False
        log.warning("leader election %s/%s: %s lost the lease (holder now %r)", c.namespace, c.name,
                    c.identity, self.leader)

    async def run(self, on_leading: Callable[[], Awaitable[None]]) -> None:
        """Campaign; while leading run ``on_leading()`` (cancelled when the lease is lost). Until cancelled."""
        try:
            while True:
                await self.acquire()
                work = asyncio.ensure_future(on_leading())
                renew = asyncio.ensure_future(self.renew())
                await until_first_ends(work, renew)
                if work.done() and not work.cancelled() and work.exception() is not None:
                    log.error("leader election %s/%s: leader work failed: %r", self.config.namespace,
                              self.config.name, work.exception())
                self.leading = False
        finally:
            if self._observed is not None and self._observed[0] == self.config.identity:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(self.release())
            self.leading = False
