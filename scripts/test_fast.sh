#!/usr/bin/env bash
# `make test-fast`: the tests that start no server (sandbox, gateway, worker, own Redis,
# Chromium), on SQLite with the shared Redis: a quick loop while working. tests/conftest.py
# marks the others `servers`. `make test` still runs everything.
source "$(dirname "$0")/lib.sh"

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

ensure_venv
ensure_redis

say "tests that start no server (SQLite)"
env -u DATABASE_URL "$PY" -m pytest -m "not servers" "$@"
