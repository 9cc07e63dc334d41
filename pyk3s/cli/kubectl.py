"""`pyk3s kubectl ...`: the installed kubectl, pointed at this server's kubeconfig (as `k3s kubectl`)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pyk3s.k3s.paths import default_kubeconfig_path

__all__ = ["main"]


def main(argv: list[str]) -> int:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print(
            "pyk3s kubectl: no `kubectl` found on PATH. Install kubectl (for example the Debian/Ubuntu "
            "package `kubectl` or a release binary) and try again.",
            file=sys.stderr,
        )
        return 1
    env = dict(os.environ)
    given = any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in argv)
    if "KUBECONFIG" not in env and not given and argv not in ([], ["--help"], ["-h"]):
        path = default_kubeconfig_path()
        if not Path(path).exists():
            print(
                f"pyk3s kubectl: kubeconfig {path} not found; is `pyk3s server` running "
                "(it writes the kubeconfig on start)? Set KUBECONFIG or pass --kubeconfig to use another file.",
                file=sys.stderr,
            )
            return 1
        env["KUBECONFIG"] = path
    os.execvpe(kubectl, [kubectl, *argv], env)
    return 0  # not reached
