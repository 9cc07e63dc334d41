"""`pyk3s check-config`: whether this machine can run pyk3s, each check with PASS/WARN/FAIL and the fix.

The checks live in :mod:`pyk3s.checkconfig.checks` (one table, :data:`CHECKS`); `pyk3s server` and
`pyk3s agent` run the blocking ones at start.
"""

from .checks import (
    CHECKS,
    Check,
    CheckSettings,
    Result,
    Status,
    blocking_failures,
    format_results,
    run_checks,
)

__all__ = [
    "CHECKS",
    "Check",
    "CheckSettings",
    "Result",
    "Status",
    "blocking_failures",
    "format_results",
    "run_checks",
]
