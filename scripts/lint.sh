#!/usr/bin/env bash
# `make lint`: the import contracts (.importlinter), no import cycle between modules, and
# ruff's lint rules (ruff.toml). `make test` runs it first.
# LINT_FORMAT=1 adds `ruff format --check` (switched on in the Makefile once the project
# has had its one formatting pass).
source "$(dirname "$0")/lib.sh"

ensure_venv

say "import contracts (lint-imports)"
"$VENV/bin/lint-imports" --no-cache
say "no import cycle between modules"
"$PY" -m devtools.import_cycles
say "ruff check"
"$VENV/bin/ruff" check .
if [ "${LINT_FORMAT:-0}" = 1 ]; then
  say "ruff format --check"
  "$VENV/bin/ruff" format --check .
fi
