"""Fixtures for these tests live in store_servers.py (a unique module name, so test files can import its helpers)."""

from store_servers import *  # noqa: F403
