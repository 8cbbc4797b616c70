"""Moved: helpers to `tests.support.oauth`, fixtures to tests/conftest.py. Kept importable
for tests written against the old place while the suite moves; new tests import
tests.support.oauth."""

from devtools.oauth_client import *  # noqa: F403
from tests.support.oauth import *  # noqa: F403
