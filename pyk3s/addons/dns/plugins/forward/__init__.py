"""forward plugin: the upstream resolvers (spec dns.md O7). `config` parses the stanza, `transport`
holds the connections to one upstream, `upstream` one upstream server, `handler` the plugin."""

from .config import ForwardOptions, parse_options, read_resolv_conf
from .handler import READ_TIMEOUT, REQUEST_TIMEOUT, ForwardPlugin
from .upstream import Upstream

__all__ = ["READ_TIMEOUT", "REQUEST_TIMEOUT", "ForwardOptions", "ForwardPlugin", "Upstream", "parse_options",
           "read_resolv_conf"]
