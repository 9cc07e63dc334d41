"""pyk3s's version and the Kubernetes version it speaks, spelled as K3s does (``v1.32.4+k3s1``)."""

from __future__ import annotations

__all__ = ["KUBERNETES_VERSION", "PYK3S_VERSION", "RELEASE"]

PYK3S_VERSION = "0.1.0"
KUBERNETES_VERSION = "v1.32.4"
RELEASE = f"{KUBERNETES_VERSION}+pyk3s1"  # what the kubelet and the API report, after K3s's "+k3s1"
