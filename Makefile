# The two commands (see README): `make run` and `make test`. Both set up a fresh machine.
# `make bench` runs the benchmarks of BENCHMARKS.md (QUICK=1 for short runs).
.PHONY: run test bench

run:
	./scripts/run.sh

test:
	./scripts/test.sh $(ARGS)

bench:
	./scripts/bench.sh
