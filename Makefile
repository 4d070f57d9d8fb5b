# The two commands of the README. Both are idempotent: a second run reuses the installed venv and tools.
.PHONY: demo test setup bench

demo:
	./scripts/setup.sh
	.venv/bin/repo-market demo

test:
	./scripts/setup.sh --with-anvil
	./scripts/run-tests.sh

setup:
	./scripts/setup.sh --with-anvil
