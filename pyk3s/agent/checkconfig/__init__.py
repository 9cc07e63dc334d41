"""`pyk3s check-config`: whether this machine can run pyk3s (the node and its server), each check with PASS/WARN/FAIL and the fix.

The checks live in :mod:`pyk3s.agent.checkconfig.checks` (one table, :data:`CHECKS`); `pyk3s server` and
`pyk3s agent` run the blocking ones at start.
"""

from .checks import (
    CHECKS,
    Check,
    CheckResult,
    CheckSettings,
    Status,
    blocking_failures,
    format_results,
    run_checks,
)

__all__ = [
    "CHECKS",
    "Check",
    "CheckSettings",
    "CheckResult",
    "Status",
    "blocking_failures",
    "format_results",
    "run_checks",
]
