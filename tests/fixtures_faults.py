"""Moved: helpers to `tests.support.faults`, fixtures to tests/conftest.py. Kept importable
for tests written against the old place while the suite moves; new tests import
tests.support.faults."""

from tests.support.faults import *  # noqa: F403
