"""`pyk3s klipper-lb`: the svclb container (image ``pyk3s/klipper-lb``, alias ``rancher/klipper-lb``).

Inside its pod's network namespace it installs the kernel forwarding rules from its environment
(SRC_PORT, SRC_RANGES, DEST_PROTO, DEST_PORT, DEST_IPS) and then waits; the rules die with the pod.
A rule the kernel refuses ends the process with a log line that says which and why.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from .rules import LbConfigError, parse_env, ruleset, table_name

__all__ = ["main"]

log = logging.getLogger("pyk3s.klipper-lb")


def _enable_forwarding(cfg_ips: tuple[str, ...]) -> None:
    paths = []
    if any(":" not in ip for ip in cfg_ips):
        paths.append(Path("/proc/sys/net/ipv4/ip_forward"))
    if any(":" in ip for ip in cfg_ips):
        paths.append(Path("/proc/sys/net/ipv6/conf/all/forwarding"))
    for p in paths:
        try:
            if p.read_text().strip() != "1":
                p.write_text("1")
        except OSError as err:
            log.warning("klipper-lb: cannot enable forwarding in %s: %s", p, err)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = parse_env(dict(os.environ))
    except LbConfigError as err:
        log.error("%s", err)
        return 1
    _enable_forwarding(cfg.dest_ips)
    script = ruleset(cfg)
    table = table_name(cfg)
    existing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.splitlines()
    prefix = "".join(f"delete table {fam} {table}\n" for fam in ("ip", "ip6") if f"table {fam} {table}" in existing)
    proc = subprocess.run(["nft", "-f", "-"], input=prefix + script, capture_output=True, text=True)
    if proc.returncode != 0:
        log.error("klipper-lb: the kernel refused the forwarding rules: %s\nrules:\n%s", proc.stderr.strip(), script)
        return 1
    log.info(
        "klipper-lb: forwarding %s port %d to %s port %d for sources %s",
        cfg.dest_proto, cfg.src_port, ",".join(cfg.dest_ips), cfg.dest_port, ",".join(cfg.src_ranges),
    )
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
