"""Fixtures for these tests live in ingress_support.py (a unique module name, so test files can import its helpers)."""

from ingress_support import *  # noqa: F403
