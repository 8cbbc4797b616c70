# The two commands (see README): `make run` and `make test`. Both set up a fresh machine.
.PHONY: run test

run:
	./scripts/run.sh

test:
	./scripts/test.sh $(ARGS)

