"""The deploy controller for ``<data-dir>/server/manifests`` (K3s's Addon controller)."""

from .controller import DeployController
from .objectset import owner_hash, three_way_patch
from .parse import ManifestError, parse_manifest
from .scan import ManifestFile, addon_name, scan

__all__ = [
    "DeployController",
    "ManifestError",
    "ManifestFile",
    "addon_name",
    "owner_hash",
    "parse_manifest",
    "scan",
    "three_way_patch",
]
