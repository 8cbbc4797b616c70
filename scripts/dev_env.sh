# `make run`'s addresses (sourced by scripts/run.sh; tests/test_deploy.py sources it too):
# the web and sandbox ports, and the upstream URLs that follow from the sandbox's port, so a
# `SANDBOX_PORT` other than 8100 moves the Core AND the Open API (the /open server's upstream).
export PORT="${PORT:-8000}"
export SANDBOX_PORT="${SANDBOX_PORT:-8100}"
export CORE_API_BASE_URL="${CORE_API_BASE_URL:-http://127.0.0.1:$SANDBOX_PORT/api/v1/core}"
export OPEN_API_BASE_URL="${OPEN_API_BASE_URL:-http://127.0.0.1:$SANDBOX_PORT/api/v1/sdk}"
export PUBLIC_URL="${PUBLIC_URL:-http://127.0.0.1:$PORT}"
