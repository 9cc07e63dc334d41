"""Which files in the manifests directory count, in which order, and what to do with each (pure).

Rules (specs/k3s.md 3.2-3.4 and Appendix B): walk recursively, sorted by path; dotfiles and files not
ending in .yaml/.yml/.json are ignored; a file named ``X.skip`` anywhere skips every file named ``X``;
``--disable`` matches a parent folder or the base name minus its last extension, and wins over
``.skip``. The Addon of a file is its base name up to the first dot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

__all__ = ["ManifestFile", "addon_name", "scan"]

EXTENSIONS = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class ManifestFile:
    path: Path
    rel: str
    action: Literal["apply", "skip", "disabled"]

    @property
    def addon(self) -> str:
        return addon_name(self.path.name)


def addon_name(filename: str) -> str:
    return filename.split(".", 1)[0]


def _disabled(rel: str, disable: frozenset[str]) -> bool:
    p = PurePosixPath(rel)
    parts = p.parts[:-1]
    if any("/".join(parts[: i + 1]) in disable or parts[i] in disable for i in range(len(parts))):
        return True
    suffix = p.suffix
    return suffix.lower() in EXTENSIONS and p.name[: -len(suffix)] in disable


def scan(root: Path, disable: frozenset[str] = frozenset()) -> list[ManifestFile]:
    if not root.is_dir():
        return []
    files: list[Path] = []
    skips: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.endswith(".skip"):
                skips.add(name[: -len(".skip")])
            full = Path(dirpath) / name
            if name.startswith(".") or not name.lower().endswith(EXTENSIONS):
                continue
            files.append(full)
    out: list[ManifestFile] = []
    for full in sorted(files, key=lambda p: str(p)):
        rel = full.relative_to(root).as_posix()
        if _disabled(rel, disable):
            action: Literal["apply", "skip", "disabled"] = "disabled"
        elif full.name in skips:
            action = "skip"
        else:
            action = "apply"
        out.append(ManifestFile(full, rel, action))
    return out
