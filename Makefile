# The two commands of the README (demo, test). Both are idempotent: a second run reuses the installed venv and tools.
# `make bench` runs every benchmark script (each writes bench-results/bench_NAME.json and prints a table).
.PHONY: demo test setup bench

demo:
	./scripts/setup.sh
	.venv/bin/repo-market demo

test:
	./scripts/setup.sh --with-anvil
	./scripts/run-tests.sh

setup:
	./scripts/setup.sh --with-anvil

bench:
	./scripts/setup.sh --with-anvil
	for script in benchmarks/bench_*.py; do name=$$(basename $$script .py); .venv/bin/repo-market bench $${name#bench_} || exit 1; done
