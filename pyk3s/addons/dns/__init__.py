"""CoreDNS-compatible cluster DNS: Corefile parser, plugin chain, and a precompiled fast path.

`ORDER` is CoreDNS's plugin.cfg order (the chain order whatever the Corefile says); `PLUGINS` maps a
directive name to its plugin class. `import` is handled by the Corefile parser itself.
"""

from __future__ import annotations

from .plugin import Plugin
from .plugins.bind import BindPlugin
from .plugins.cache import CachePlugin
from .plugins.errors import ErrorsPlugin
from .plugins.forward import ForwardPlugin
from .plugins.health import HealthPlugin
from .plugins.hosts import HostsPlugin
from .plugins.kubernetes import KubernetesPlugin
from .plugins.loadbalance import LoadbalancePlugin
from .plugins.log import LogPlugin
from .plugins.loop import LoopPlugin
from .plugins.multisocket import MultisocketPlugin
from .plugins.prometheus import PrometheusPlugin
from .plugins.ready import ReadyPlugin
from .plugins.reload import ReloadPlugin
from .plugins.rewrite import RewritePlugin
from .plugins.whoami import WhoamiPlugin

__all__ = ["ORDER", "PLUGINS"]

ORDER: tuple[str, ...] = (
    "reload", "bind", "multisocket", "ready", "health", "prometheus", "errors", "log", "loadbalance", "cache",
    "rewrite", "hosts", "kubernetes", "loop", "forward", "whoami",
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
    "loadbalance": LoadbalancePlugin,
    "cache": CachePlugin,
    "rewrite": RewritePlugin,
    "hosts": HostsPlugin,
    "kubernetes": KubernetesPlugin,
    "loop": LoopPlugin,
    "forward": ForwardPlugin,
    "whoami": WhoamiPlugin,
}
