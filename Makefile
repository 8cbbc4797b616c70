# The two commands (see README): `make run` and `make test`. Both set up a fresh machine.
# `make bench` runs the benchmarks of BENCHMARKS.md (QUICK=1 for short runs).
# `make lint` checks the import contracts and ruff's rules; `make test` runs it first.
.PHONY: run test lint bench

# 1 adds `ruff format --check` to `make lint` (on once the project has been formatted).
LINT_FORMAT ?= 0

run:
	./scripts/run.sh

test:
	LINT_FORMAT=$(LINT_FORMAT) ./scripts/test.sh $(ARGS)

lint:
	LINT_FORMAT=$(LINT_FORMAT) ./scripts/lint.sh

bench:
	./scripts/bench.sh
