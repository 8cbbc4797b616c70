# The two commands (see README): `make run` and `make test`. Both set up a fresh machine.
# `make bench` runs the benchmarks of BENCHMARKS.md (QUICK=1 for short runs).
# `make conformance` runs the MCP conformance suite against a local gateway (README "Conformance").
# `make lint` checks the import contracts and ruff's rules; `make test` runs it first.
# `make test-fast` runs only the tests that start no server (a quick loop).
# `make contract-check` checks the Core API client against the sandbox, or against the
# Core API in CONTRACT_CHECK_BASE_URL / _API_KEY / _SITE_ID (e.g. Pelcro staging; README).
.PHONY: run test test-fast lint bench conformance contract-check

run:
	./scripts/run.sh

test:
	./scripts/test.sh $(ARGS)

# The quick loop: the tests that start no server (marker `servers`, tests/conftest.py), on SQLite.
test-fast:
	./scripts/test_fast.sh $(ARGS)

lint:
	./scripts/lint.sh

bench:
	./scripts/bench.sh

conformance:
	./scripts/conformance.sh $(ARGS)

contract-check:
	./scripts/contract_check.sh
