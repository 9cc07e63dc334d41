"""kubernetes plugin: cluster.local records from Services, EndpointSlices, Pods and Namespaces."""

from .config import KubeOptions, parse_options
from .handler import KubernetesPlugin
from .index import KubeIndex, compile_index

__all__ = ["KubeIndex", "KubeOptions", "KubernetesPlugin", "compile_index", "parse_options"]
