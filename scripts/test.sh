#!/usr/bin/env bash
# `make test`: the lint (scripts/lint.sh), the whole suite on PostgreSQL + Redis, then the
# end-to-end tests on SQLite.
# Extra arguments go to pytest (e.g. `make test ARGS="-k sandbox"`).
source "$(dirname "$0")/lib.sh"

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

ensure_venv
"$ROOT/scripts/lint.sh"
ensure_redis
ensure_postgres "$TEST_DATABASE_URL"
ensure_chromium
ensure_node_tools
ensure_compose_client

# pytest-xdist: TEST_WORKERS processes (3 by default; 0 runs in this process), each with its
# own test database, Redis key prefix (tests/run_env.py) and servers; a module stays on one
# worker (--dist loadfile: its module fixtures start once). Most of a test's time is spent
# waiting on servers, so three workers keep two cores busy: the suite takes about half the
# time it takes serially (README "Tests").
PARALLEL=(-n "${TEST_WORKERS:-3}" --dist loadfile)
say "test suite on PostgreSQL"
DATABASE_URL="$TEST_DATABASE_URL" "$PY" -m pytest "${PARALLEL[@]}" "$@"
say "database-facing tests again on SQLite (the run command's default)"
env -u DATABASE_URL "$PY" -m pytest "${PARALLEL[@]}" -m sqlite "$@"
