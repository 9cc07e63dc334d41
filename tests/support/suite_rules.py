"""Suite-wide rules (a pytest plugin loaded by tests/conftest.py).

- End-to-end tests (tests/e2e) are always collected; without root they are reported as skipped with
  the reason, so a run as a normal user shows what it did not test.
- Only tests marked ``timing_sensitive`` are rerun once on failure (both runs are reported); any
  other failure fails the run the first time.
- ``--require-areas`` (CI) fails the run when every test of a file was skipped, unless the file is an
  end-to-end one and the run is not root: a missing binary or service then fails CI instead of
  silently turning a whole area into skips.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
E2E = TESTS / "e2e"
NOT_ROOT_REASON = "end-to-end tests need root (network namespaces, nftables): run pytest as root"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--require-areas", action="store_true", default=False,
                     help="fail when every test of a file is skipped (CI: nothing may silently not run)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_outcomes] = defaultdict(list)


def is_e2e(item: pytest.Item) -> bool:
    return E2E in Path(str(item.fspath)).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    not_root = os.geteuid() != 0
    for item in items:
        if is_e2e(item):
            item.add_marker(pytest.mark.e2e)
            if not_root:
                item.add_marker(pytest.mark.skip(reason=NOT_ROOT_REASON))
        if item.get_closest_marker("timing_sensitive") is not None:
            # asserts a bound on wall time on a shared 2-core machine: one rerun (pytest-rerunfailures)
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))


_outcomes = pytest.StashKey[defaultdict[str, list[tuple[str, str]]]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    report = yield
    if report.when == "setup" and report.skipped or report.when == "call":
        reason = str(report.longrepr[2]) if report.skipped and isinstance(report.longrepr, tuple) else ""
        reason = reason.removeprefix("Skipped: ")
        item.config.stash[_outcomes][area(item)].append(
            ("skipped" if report.skipped else report.outcome, reason))
    return report


def area(item: pytest.Item) -> str:
    """A test file, relative to the checkout when inside it."""
    path = Path(str(item.fspath)).resolve()
    return str(path.relative_to(TESTS.parent)) if TESTS.parent in path.parents else str(path)


def skipped_areas(outcomes: dict[str, list[tuple[str, str]]], root: bool) -> list[tuple[str, str]]:
    """Files whose every test was skipped, with the first reason; end-to-end files are exempt when
    not root (they cannot run there)."""
    bad = []
    for path, results in sorted(outcomes.items()):
        if results and all(outcome == "skipped" for outcome, _ in results):
            reason = results[0][1]
            if not root and NOT_ROOT_REASON in reason:
                continue
            bad.append((path, reason))
    return bad


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.getoption("--require-areas") or exitstatus not in (0, 1):
        return
    bad = skipped_areas(config.stash[_outcomes], os.geteuid() == 0)
    if bad:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        lines = ["", "--require-areas: every test of these files was skipped on a machine that should run them:"]
        lines += [f"  {path}: {reason}" for path, reason in bad]
        if tr is not None:
            tr.write_line("\n".join(lines), red=True)
        else:
            print("\n".join(lines), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
