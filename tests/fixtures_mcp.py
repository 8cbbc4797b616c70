"""Moved: helpers to `tests.support.mcp`, fixtures to tests/conftest.py. Kept importable
for tests written against the old place while the suite moves; new tests import
tests.support.mcp."""

from tests.support.mcp import *  # noqa: F403
