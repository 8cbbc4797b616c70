"""Helpers of the tests (server processes, clients, constants), one module per concern;
the fixtures built from them are in tests/conftest.py."""
