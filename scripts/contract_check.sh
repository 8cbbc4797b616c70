#!/usr/bin/env bash
# `make contract-check`: the Core API contract check (manage.py contract_check).
# With CONTRACT_CHECK_BASE_URL, CONTRACT_CHECK_API_KEY and CONTRACT_CHECK_SITE_ID set it
# checks that Core API (e.g. Pelcro staging); without, it starts a sandbox on a free port
# and checks it with the demo account "acme". CONTRACT_CHECK_WRITES=1 adds the writes.
source "$(dirname "$0")/lib.sh"

ensure_venv
if [ -z "${CONTRACT_CHECK_BASE_URL:-}" ]; then
  port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  say "starting a sandbox on 127.0.0.1:$port"
  "$PY" -m sandbox --host 127.0.0.1 --port "$port" >/dev/null &
  sandbox_pid=$!
  trap 'kill "$sandbox_pid" 2>/dev/null' EXIT
  "$PY" - "$port" <<'PYEOF' || { echo "the sandbox did not start" >&2; exit 1; }
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PYEOF
  export CONTRACT_CHECK_BASE_URL="http://127.0.0.1:$port/api/v1/core"
  export CONTRACT_CHECK_API_KEY="$("$PY" -c 'import json; print(next(a["api_key"] for a in json.load(open("demo/accounts.json"))["accounts"] if a["slug"] == "acme"))')"
  export CONTRACT_CHECK_SITE_ID=14
  export CONTRACT_CHECK_WRITES="${CONTRACT_CHECK_WRITES:-1}"  # the sandbox is ours to write to
fi
say "contract check against $CONTRACT_CHECK_BASE_URL"
"$PY" manage.py contract_check
