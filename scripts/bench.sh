#!/usr/bin/env bash
# `make bench`: the three benchmarks of BENCHMARKS.md, each printing its tables.
# QUICK=1 shortens every run (for trying things out; the published numbers use the defaults).
# Each script starts its own servers on free ports with a scratch database and Redis key
# prefix, and removes them at the end. Outputs are also kept in test-output/bench-*.txt.
source "$(dirname "$0")/lib.sh"

export BENCH_PG_URL="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

ensure_venv
ensure_redis
ensure_postgres "$BENCH_PG_URL"
mkdir -p test-output

if [ "${QUICK:-0}" = 1 ]; then
  overhead=(--duration 4 --warmup 1 --rounds 1)
  concurrency=(--duration 10)
  limiter=(--calls 1000 --duration 60)
else
  overhead=()
  concurrency=()
  limiter=()
fi

# Every benchmark runs even when an earlier one misses its floor; the exit status says if any did.
failed=0
bench() {  # bench <output name> <script> [args...]
  local out="test-output/bench-$1.txt"; shift
  "$PY" "$@" | tee "$out" || failed=1
}

say "uptime (the numbers move with the machine's load): $(uptime)"
say "overhead: the gateway as configured by default (Core and Open calls) vs a bare MCPServer"
bench overhead bench/overhead.py "${overhead[@]}"
say "concurrency: 200 clients, 2 workers"
bench concurrency bench/concurrency.py "${concurrency[@]}"
say "limiter: acquire latency, then every demo account at its own GET /account limit, at once"
bench limiter bench/limiter.py "${limiter[@]}"
exit "$failed"
