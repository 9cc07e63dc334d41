"""`pyk3s server`: parse the flags, print what a user needs, and run :mod:`pyk3s.server`."""

from __future__ import annotations

import asyncio
import logging
import sys

from pyk3s.k3s.paths import default_kubeconfig_path
from pyk3s.server.config import ServerConfig, ServerConfigError
from pyk3s.server.embedded_agent import check_agent_config
from pyk3s.server.run import ServerStarted, run_server

from .check_config import refuse_start
from .flag_tables import SERVER_FLAGS
from .flags import parse_flags
from .logs import setup_logging
from .running import run_until_signal

__all__ = ["main"]

log = logging.getLogger("pyk3s.server")


def print_started(cfg: ServerConfig, started: ServerStarted) -> None:
    print(f"pyk3s: API server ready at {started.url} in {started.seconds:.2f}s", flush=True)
    hint = ("pyk3s kubectl get nodes" if str(started.kubeconfig) == default_kubeconfig_path()
            else f"KUBECONFIG={started.kubeconfig} kubectl get nodes")
    print(f"pyk3s: kubeconfig written to {started.kubeconfig} (use: {hint})", flush=True)
    print(
        f"pyk3s: to join an agent: pyk3s agent --server https://<this-host>:{cfg.https_port} "
        f"--token $(cat {started.token_file})",
        flush=True,
    )


def main(argv: list[str]) -> int:
    parsed = parse_flags("pyk3s server", "Run a pyk3s server", SERVER_FLAGS, argv)
    setup_logging(parsed.debug)
    try:
        cfg = ServerConfig.from_flags(parsed.values)
        if not cfg.disable_agent:
            check_agent_config(cfg)
    except ServerConfigError as err:
        print(f"pyk3s server: {err}", file=sys.stderr)
        return 1
    if refuse_start(cfg.check_settings(), "pyk3s server"):
        return 1
    try:
        run_until_signal(lambda: run_server(cfg, on_ready=lambda started: print_started(cfg, started)))
    except asyncio.CancelledError:
        log.info("pyk3s server stopped")
    except ServerConfigError as err:
        print(f"pyk3s server: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    except OSError as err:
        print(f"pyk3s server: {err}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:
        # A part that could not start (the agent refusing overlapping routes, a port in use) ends the
        # server; say what each failure was, with the traceback only in --debug logs.
        failures = [e for e in _leaves(group) if not isinstance(e, asyncio.CancelledError)]
        for failure in failures:
            log.debug("pyk3s server failure", exc_info=failure)
            print(f"pyk3s server: {failure}", file=sys.stderr)
        return 1 if failures else 0
    return 0


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
