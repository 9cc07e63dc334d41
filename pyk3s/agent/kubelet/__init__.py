"""Pods as processes: the kubelet's pod workers, launcher, volumes, probes, logs and HTTPS API."""
