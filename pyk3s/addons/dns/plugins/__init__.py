"""CoreDNS-compatible plugins, one module (or package) each, and the table that names them.

`ORDER` is the plugin.cfg order of CoreDNS 1.13.1, the version K3s packages (the chain order whatever
the Corefile says); `PLUGINS` maps a directive name to its plugin class. `import` is handled by the
Corefile parser itself. A new plugin is a module here (contract: ../plugin.py), a row in PLUGINS and its
place in ORDER.
"""

from __future__ import annotations

from ..plugin import Plugin
from .acl import AclPlugin
from .any import AnyPlugin
from .autopath import AutopathPlugin
from .bind import BindPlugin
from .cache import CachePlugin
from .chaos import ChaosPlugin
from .errors import ErrorsPlugin
from .file import FilePlugin
from .forward import ForwardPlugin
from .header import HeaderPlugin
from .health import HealthPlugin
from .hosts import HostsPlugin
from .k8s_external import K8sExternalPlugin
from .kubernetes import KubernetesPlugin
from .loadbalance import LoadbalancePlugin
from .local import LocalPlugin
from .log import LogPlugin
from .loop import LoopPlugin
from .minimal import MinimalPlugin
from .multisocket import MultisocketPlugin
from .prometheus import PrometheusPlugin
from .ready import ReadyPlugin
from .reload import ReloadPlugin
from .rewrite import RewritePlugin
from .template import TemplatePlugin
from .whoami import WhoamiPlugin

__all__ = ["ORDER", "PLUGINS"]

ORDER: tuple[str, ...] = (
    "reload", "bind", "multisocket", "ready", "health", "prometheus", "errors", "log", "local", "acl", "any",
    "chaos", "loadbalance", "cache", "rewrite", "header", "autopath", "minimal", "template", "hosts", "k8s_external",
    "kubernetes", "file", "loop", "forward", "whoami",
)

PLUGINS: dict[str, type[Plugin]] = {
    "reload": ReloadPlugin,
    "bind": BindPlugin,
    "multisocket": MultisocketPlugin,
    "ready": ReadyPlugin,
    "health": HealthPlugin,
    "prometheus": PrometheusPlugin,
    "errors": ErrorsPlugin,
    "log": LogPlugin,
    "local": LocalPlugin,
    "any": AnyPlugin,
    "chaos": ChaosPlugin,
    "loadbalance": LoadbalancePlugin,
    "autopath": AutopathPlugin,
    "acl": AclPlugin,
    "cache": CachePlugin,
    "header": HeaderPlugin,
    "minimal": MinimalPlugin,
    "rewrite": RewritePlugin,
    "template": TemplatePlugin,
    "hosts": HostsPlugin,
    "k8s_external": K8sExternalPlugin,
    "kubernetes": KubernetesPlugin,
    "file": FilePlugin,
    "loop": LoopPlugin,
    "forward": ForwardPlugin,
    "whoami": WhoamiPlugin,
}
