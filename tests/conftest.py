import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "support"))

collect_ignore_glob: list[str] = []
if os.geteuid() != 0:
    # End-to-end tests need root (network namespaces, nftables, binding node addresses).
    collect_ignore_glob.append("e2e/*")
