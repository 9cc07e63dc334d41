"""`pyk3s check-config [SERVER FLAGS] [--agent]`: can this machine run pyk3s with these settings?

Takes the server's flags (and its config file), so the ports, CIDRs and data dir checked are the ones
`pyk3s server` would use; `--agent` checks for a node that joins a server (no API port). Prints one
line per check, PASS/WARN/FAIL with the fix; exits 1 when anything FAILs. `pyk3s server` and
`pyk3s agent` run the blocking checks at start through :func:`refuse_start`.
"""

from __future__ import annotations

import dataclasses
import sys

from pyk3s.agent.checkconfig import CheckSettings, Status, blocking_failures, format_results, run_checks
from pyk3s.server.config import ServerConfig, ServerConfigError

from .flag_tables import SERVER_FLAGS
from .flags import parse_flags

__all__ = ["main", "refuse_start"]


def refuse_start(settings: CheckSettings, command: str) -> bool:
    """Run the blocking checks; print what fails (with the fix) and return True when start-up must stop."""
    failures = blocking_failures(run_checks(settings, blocking_only=True))
    if not failures:
        return False
    print(f"{command}: this machine cannot run it as configured (`pyk3s check-config` checks everything):\n"
          + format_results(failures), file=sys.stderr)
    return True


def main(argv: list[str]) -> int:
    agent_only = "--agent" in argv
    argv = [a for a in argv if a != "--agent"]
    parsed = parse_flags("pyk3s check-config", "Check whether this machine can run pyk3s (takes the server's "
                         "flags; --agent: as a node joining a server)", SERVER_FLAGS, argv)
    try:
        cfg = ServerConfig.from_flags(parsed.values)
    except ServerConfigError as err:
        print(f"pyk3s check-config: {err}", file=sys.stderr)
        return 1
    settings = cfg.check_settings()
    if agent_only:
        settings = dataclasses.replace(settings, server=False, agent=True)
    results = run_checks(settings)
    print(format_results(results))
    failed = [r for r in results if r.status is Status.FAIL]
    warned = [r for r in results if r.status is Status.WARN]
    print(f"\n{len(results) - len(failed) - len(warned)} passed, {len(warned)} warnings, {len(failed)} failed")
    return 1 if failed else 0
