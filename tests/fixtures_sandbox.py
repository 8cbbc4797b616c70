"""Moved: helpers to `tests.support.sandbox`, fixtures to tests/conftest.py. Kept importable
for tests written against the old place while the suite moves; new tests import
tests.support.sandbox."""

from tests.support.sandbox import *  # noqa: F403
