#!/usr/bin/env bash
# `make conformance`: the MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# devtools/conformance.py) against a locally started gateway + Core API sandbox with the
# demo data: the server scenarios at 2025-11-25 and 2026-07-28 and the authorization-server
# scenarios (the OAuth flow is run for real; the driver signs in and consents). Results in
# test-output/conformance/; the exit status is non-zero if a scenario fails that README's
# "Conformance" section does not list as not applying. Extra arguments go to the driver
# (e.g. --scenario tools-list --skip-authorization).
source "$(dirname "$0")/lib.sh"

ensure_venv
ensure_redis
say "MCP conformance suite against a local gateway"
"$PY" -m devtools.conformance "$@"
