"""Regenerate ``api_pb2.py``/``api_pb2_grpc.py`` from ``api.proto`` (needs ``grpcio-tools``).

``python -m pyk3s.agent.cri.gen [OUT_DIR]``: the code is committed; a unit test checks that it matches
what the pinned ``grpcio-tools`` makes of the ``.proto``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROTO = "pyk3s/agent/cri/api.proto"


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # type: ignore[import-untyped]

    out_dir.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(["protoc", f"-I{ROOT}", f"--python_out={out_dir}",
                      f"--grpc_python_out={out_dir}", str(ROOT / PROTO)])
    if rc != 0:
        raise SystemExit(f"protoc failed with {rc}")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    generate(out)


if __name__ == "__main__":
    main()
