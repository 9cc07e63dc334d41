"""CoreDNS-compatible cluster DNS: Corefile parser, plugin chain, and a precompiled fast path.

The plugins and their chain order are the table in `plugins/__init__.py`; nothing else names a plugin.
"""
