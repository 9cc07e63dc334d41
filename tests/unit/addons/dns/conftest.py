"""Fixtures for these tests live in dns_support.py (a unique module name, so test files can import its helpers)."""

from dns_support import *  # noqa: F403
