#!/usr/bin/env bash
# Runs the whole suite with the project venv. Exit status: pytest's, except that "no tests collected"
# (pytest exit 5) counts as a failure, so an empty run can never look green.
set -uo pipefail
cd "$(dirname "$0")/.."
export REPO_MARKET_ANVIL="${REPO_MARKET_ANVIL:-$(pwd)/.tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}"
# The suite preloads the fixed FFT plan itself (tests/conftest.py restarts pytest with it; crypto/fhe_runtime.py).
# Two workers by default (CI has two cores): an FHE evaluation keeps both cores busy, most other tests keep one;
# tests/conftest.py keeps the tests that share an FHE session fixture on one worker (xdist groups).
# REPO_MARKET_TEST_WORKERS=0 runs in one process.
workers="${REPO_MARKET_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  .venv/bin/python -m pytest "$@"
else
  .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
fi
rc=$?
if [ "$rc" = 5 ]; then echo "run-tests: no tests were collected" >&2; exit 1; fi
exit "$rc"
