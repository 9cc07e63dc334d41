"""CoreDNS-compatible plugins, one module (or package) each."""
