"""Write the packaged manifests into ``<data-dir>/server/manifests`` on every server start.

As K3s does (specs/k3s.md 3.1): every packaged file not named by ``--disable`` (full name, name
without its last extension, or a parent folder) is written, overwriting local edits, with mode 0600
in 0700 folders and the template variables substituted. pyk3s also remembers the SHA-256 of what it
wrote (``<data-dir>/server/staged-manifests.json``), so the deploy controller can tell its own copy of
a disabled component from a user's modified copy under the same name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

__all__ = ["StageSettings", "forget_staged", "is_disabled", "packaged_files", "render", "stage", "staged_checksums"]

log = logging.getLogger("pyk3s.manifests")

STAGED_RECORD = "staged-manifests.json"


@dataclass(frozen=True, slots=True)
class StageSettings:
    server_dir: Path
    cluster_dns: tuple[str, ...] = ("10.43.0.10",)
    cluster_domain: str = "cluster.local"
    system_default_registry: str = ""
    disable: frozenset[str] = frozenset()
    data_dir: Path = Path("/var/lib/rancher/pyk3s")
    flannel_external_ip: bool = False

    @property
    def manifests_dir(self) -> Path:
        return self.server_dir / "manifests"


def template_vars(s: StageSettings) -> dict[str, str]:
    reg = s.system_default_registry.rstrip("/")
    return {
        "%{CLUSTER_DNS}%": s.cluster_dns[0],
        "%{CLUSTER_DNS_LIST}%": "[" + ",".join(s.cluster_dns) + "]",
        "%{CLUSTER_DNS_IPFAMILYPOLICY}%": "RequireDualStack" if len(s.cluster_dns) > 1 else "SingleStack",
        "%{CLUSTER_DOMAIN}%": s.cluster_domain,
        "%{DEFAULT_LOCAL_STORAGE_PATH}%": str(s.data_dir / "storage"),
        "%{SYSTEM_DEFAULT_REGISTRY}%": f"{reg}/" if reg else "",
        "%{SYSTEM_DEFAULT_REGISTRY_RAW}%": reg,
        "%{PREFERRED_ADDRESS_TYPES}%": (
            "ExternalIP,InternalIP,Hostname" if s.flannel_external_ip else "InternalIP,ExternalIP,Hostname"
        ),
    }


def render(text: bytes, s: StageSettings) -> bytes:
    for key, value in template_vars(s).items():
        text = text.replace(key.encode(), value.encode())
    return text


def packaged_files() -> dict[str, bytes]:
    """Relative name -> raw content of every manifest shipped inside the package."""
    out: dict[str, bytes] = {}
    root = resources.files("pyk3s.manifests")

    def walk(node, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for child in node.iterdir():
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                if not child.name.startswith(("_", ".")):
                    walk(child, rel + "/")
            elif child.name.endswith((".yaml", ".yml", ".json")):
                out[rel] = child.read_bytes()

    walk(root, "")
    return dict(sorted(out.items()))


def is_disabled(rel: str, disable: frozenset[str]) -> bool:
    """K3s's rule: full name, name minus its last extension, or any parent folder."""
    if not disable:
        return False
    p = PurePosixPath(rel)
    if rel in disable or p.name in disable:
        return True
    if p.suffix.lower() in (".yaml", ".yml", ".json") and p.name[: -len(p.suffix)] in disable:
        return True
    parts = p.parts[:-1]
    return any("/".join(parts[: i + 1]) in disable for i in range(len(parts)))


def staged_checksums(server_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((server_dir / STAGED_RECORD).read_text())
        return {str(k): str(v) for k, v in data.items()}
    except (OSError, ValueError):
        return {}


def forget_staged(server_dir: Path, rel: str) -> None:
    """Drop ``rel`` from the record once its staged copy has been uninstalled."""
    record = staged_checksums(server_dir)
    if record.pop(rel, None) is not None:
        _write_private(server_dir / STAGED_RECORD, json.dumps(record, indent=1, sort_keys=True).encode())


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def stage(s: StageSettings) -> dict[str, str]:
    """Write every packaged manifest not disabled; returns relative name -> SHA-256 of what was written.

    The record keeps the checksums of disabled components from earlier starts, so a restart with
    ``--disable`` can still recognise (and uninstall) pyk3s's own copy.
    """
    mdir = s.manifests_dir
    mdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(mdir, 0o700)
    record = staged_checksums(s.server_dir)
    for rel, raw in packaged_files().items():
        if is_disabled(rel, s.disable):
            continue
        content = render(raw, s)
        target = mdir / rel
        log.info("Writing manifest: %s", target)
        _write_private(target, content)
        record[rel] = hashlib.sha256(content).hexdigest()
    _write_private(s.server_dir / STAGED_RECORD, json.dumps(record, indent=1, sort_keys=True).encode())
    return record
