"""A conflict (the informer cache behind a write) is retried quietly; only a key that keeps conflicting,
or any other failure, is a warning."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pyk3s.client.controller import CONFLICTS_BEFORE_WARNING, Controller, Result
from pyk3s.client.errors import Conflict, NotFound
from pyk3s.client.workqueue import WorkQueue


def conflict() -> Conflict:
    return Conflict(409, "Conflict", 'Operation cannot be fulfilled on deployments.apps "x": the object has been '
                    "modified; please apply your changes to the latest version and try again")


async def drive(failures: list[Exception], caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    done = asyncio.Event()
    calls = 0

    async def reconcile(key: str) -> Result | None:
        nonlocal calls
        calls += 1
        if calls <= len(failures):
            raise failures[calls - 1]
        done.set()
        return None

    ctl = Controller("test", reconcile)
    ctl.queue = WorkQueue(base_delay=0.001, max_delay=0.001)
    ctl.enqueue("ns/x")
    worker = asyncio.create_task(ctl._worker())
    with caplog.at_level(logging.DEBUG, logger="pyk3s.controller.test"):
        await asyncio.wait_for(done.wait(), 10)
    worker.cancel()
    assert ctl.conflicts == {}                       # forgotten once reconciled
    return [r for r in caplog.records if r.name == "pyk3s.controller.test"]


async def test_a_few_conflicts_are_retried_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    records = await drive([conflict(), conflict()], caplog)
    assert [r.levelno for r in records] == [logging.DEBUG, logging.DEBUG]
    assert "conflict 2 in a row" in records[-1].getMessage()


async def test_a_key_that_keeps_conflicting_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    records = await drive([conflict()] * CONFLICTS_BEFORE_WARNING, caplog)
    assert [r.levelno for r in records][-1] == logging.WARNING
    assert sum(r.levelno == logging.WARNING for r in records) == 1


async def test_other_failures_stay_warnings(caplog: pytest.LogCaptureFixture) -> None:
    records = await drive([NotFound(404, "NotFound", "gone")], caplog)
    assert any(r.levelno == logging.WARNING and "failed" in r.getMessage() for r in records)
