#!/usr/bin/env bash
# `make run`: set up everything on a fresh machine, then run web, sandbox, worker and beat.
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/dev_env.sh"

ensure_venv
ensure_redis
say "migrating the database (${DATABASE_URL:-SQLite file var/gateway.sqlite3})"
"$PY" manage.py migrate --no-input -v0
if [ "${GATEWAY_ENV:-dev}" = dev ]; then
  say "loading demo data"
  logins="$("$PY" manage.py seed_demo)"
else
  logins="No demo data outside dev: create the first staff user with $PY manage.py createsuperuser"
fi

# The sandbox's demo subscribers (Open API logins; demo-only passwords published in the seed file).
subscribers="$("$PY" - "${SANDBOX_SEED_FILE:-demo/accounts.json}" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1])).get("subscribers", []):
    print(f"demo subscriber: {s['email']} / {s['password']} (site {s['site_id']})")
PY
)"

cat <<TXT

  Pelcro MCP Gateway ($("$PY" -c 'import pelcro_gateway; print(pelcro_gateway.__version__)'), environment ${GATEWAY_ENV:-dev})
  MCP endpoint     $PUBLIC_URL/        (claude mcp add --transport http pelcro-api-core $PUBLIC_URL/)
  Sign in          $PUBLIC_URL/login
  Your connections $PUBLIC_URL/connections
  Open server      $PUBLIC_URL/open    (for subscribers: claude mcp add --transport http pelcro-api-open $PUBLIC_URL/open)
  Subscribers      $PUBLIC_URL/open/sign-in, then $PUBLIC_URL/open/connections
  Ops dashboard    $PUBLIC_URL/ops/
  Admin            $PUBLIC_URL/admin/
  Health           $PUBLIC_URL/health
  Core API sandbox http://127.0.0.1:$SANDBOX_PORT/api/v1/core
  Open API sandbox http://127.0.0.1:$SANDBOX_PORT/api/v1/sdk
$(echo "$logins" | sed 's/^/  /')
$(echo "$subscribers" | sed 's/^/  /')

  Ctrl-C stops everything.

TXT
export PATH="$VENV/bin:$PATH"
exec honcho start -f Procfile
