"""Moved: helpers to `tests.support.ratelimit`, fixtures to tests/conftest.py. Kept importable
for tests written against the old place while the suite moves; new tests import
tests.support.ratelimit."""

from tests.support.ratelimit import *  # noqa: F403
