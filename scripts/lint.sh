#!/usr/bin/env bash
# `make lint`: the import contracts (.importlinter), no import cycle between modules,
# ruff's lint rules and its formatting (ruff.toml). `make test` runs it first.
source "$(dirname "$0")/lib.sh"

ensure_venv

say "import contracts (lint-imports)"
"$VENV/bin/lint-imports" --no-cache
say "no import cycle between modules"
"$PY" -m devtools.import_cycles
say "ruff check"
"$VENV/bin/ruff" check .
say "ruff format --check (run '.venv/bin/ruff format .' to fix)"
"$VENV/bin/ruff" format --check .
