"""`pyk3s images build`: the built-in images as an OCI archive in the node's air-gap folder, so the
agent imports them into containerd at its next start (``--default-runtime containerd`` then runs every
pod there), or for another node, a K3s one included, to import."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pyk3s.k3s.paths import default_data_dir

__all__ = ["main"]


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="pyk3s images", description="the built-in images as OCI images")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the built-in images into the air-gap folder "
                                     "(<data-dir>/agent/images), imported at the next agent start")
    b.add_argument("--data-dir", "-d",
                   default=os.environ.get("PYK3S_DATA_DIR") or os.environ.get("K3S_DATA_DIR") or default_data_dir(),
                   help="the node's data dir (default %(default)s; K3S_DATA_DIR)")
    b.add_argument("--output", "-o", help="write the archive here instead (a file name)")
    a = p.parse_args(argv)
    from pyk3s.images.builtin import archive_name, build_builtin_images

    out = Path(a.output) if a.output else Path(a.data_dir) / "agent" / "images" / archive_name()
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"pyk3s images: building {out} from {sys.executable} ...", flush=True)
    try:
        built = build_builtin_images(out)
    except OSError as err:
        print(f"pyk3s images: {err}", file=sys.stderr)
        return 1
    r = built.rootfs
    print(f"pyk3s images: wrote {out} ({_mib(out.stat().st_size)}; one shared layer of {_mib(r.size)} "
          f"uncompressed: {len(r.packages)} packages, {len(r.libraries)} shared libraries"
          f"{', ' + ', '.join(r.tools) if r.tools else ''})")
    for command, names in built.images.items():
        print(f"  {command:<11} {', '.join(names)}")
    for problem in r.missing:
        print(f"pyk3s images: warning: {problem}", file=sys.stderr)
    print(f"The images carry this machine's Python (as {r.interpreter}): they run on "
          "this CPU architecture, and hold the pyk3s installed now (build again after an upgrade).")
    return 0
