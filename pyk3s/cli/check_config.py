"""`pyk3s check-config [SERVER FLAGS] [--agent]`: can this machine run pyk3s with these settings?

Takes the server's flags (and its config file), so the ports, CIDRs and data dir checked are the ones
`pyk3s server` would use; `--agent` checks for a node that joins a server (no API port). Prints one
line per check, PASS/WARN/FAIL with the fix; exits 1 when anything FAILs.
"""

from __future__ import annotations

import sys

from pyk3s.checkconfig import CheckSettings, Status, format_results, run_checks

from .flags import parse_flags
from .server_config import ConfigError, ServerConfig
from .server_flags import SERVER_FLAGS

__all__ = ["main", "server_check_settings"]


def server_check_settings(cfg: ServerConfig, *, agent_only: bool = False) -> CheckSettings:
    return CheckSettings(
        data_dir=cfg.data_dir,
        server=not agent_only,
        agent=agent_only or not cfg.disable_agent,
        bind_address=cfg.bind_address,
        https_port=cfg.https_port,
        kubelet_port=cfg.kubelet_port,
        ingress="traefik" not in cfg.disable,
        cluster_cidrs=cfg.cluster_cidrs,
        service_cidrs=cfg.service_cidrs,
        bridge_name=cfg.bridge_name,
    )


def main(argv: list[str]) -> int:
    agent_only = "--agent" in argv
    argv = [a for a in argv if a != "--agent"]
    parsed = parse_flags("pyk3s check-config", "Check whether this machine can run pyk3s (takes the server's "
                         "flags; --agent: as a node joining a server)", SERVER_FLAGS, argv)
    try:
        cfg = ServerConfig.from_flags(parsed)
    except ConfigError as err:
        print(f"pyk3s check-config: {err}", file=sys.stderr)
        return 1
    results = run_checks(server_check_settings(cfg, agent_only=agent_only))
    print(format_results(results))
    failed = [r for r in results if r.status is Status.FAIL]
    warned = [r for r in results if r.status is Status.WARN]
    print(f"\n{len(results) - len(failed) - len(warned)} passed, {len(warned)} warnings, {len(failed)} failed")
    return 1 if failed else 0
