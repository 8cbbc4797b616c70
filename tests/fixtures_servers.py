"""Moved: helpers to `tests.support.servers`, fixtures to tests/conftest.py. Kept importable
for tests written against the old place while the suite moves; new tests import
tests.support.servers."""

from tests.support.servers import *  # noqa: F403
