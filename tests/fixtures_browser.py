"""Moved: helpers to `tests.support.browser`, fixtures to tests/conftest.py. Kept importable
for tests written against the old place while the suite moves; new tests import
tests.support.browser."""

from tests.support.browser import *  # noqa: F403
