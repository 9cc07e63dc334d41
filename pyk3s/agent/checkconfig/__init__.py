"""`pyk3s check-config`: whether this machine can run pyk3s (the node and its server), each check with PASS/WARN/FAIL and the fix.

The checks live in :mod:`pyk3s.agent.checkconfig.checks` (one table, :data:`CHECKS`); `pyk3s server` and
`pyk3s agent` run the blocking ones at start. This package exports what that module exports.
"""

from .checks import *  # noqa: F403
from .checks import __all__ as __all__
