#!/usr/bin/env bash
# Runs the whole suite with the project venv. Exit status: pytest's, except that "no tests collected"
# (pytest exit 5) counts as a failure, so an empty run can never look green.
set -uo pipefail
cd "$(dirname "$0")/.."
export REPO_MARKET_ANVIL="${REPO_MARKET_ANVIL:-$(pwd)/.tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}"
# Every FHE evaluation runs under the fixed FFT plan (crypto/fhe_runtime.py): byte-identical across processes.
lib=$(.venv/bin/python -m crypto.fhe_runtime) || { echo "run-tests: cannot build the fixed FFT plan library" >&2; exit 1; }
export LD_PRELOAD="$lib${LD_PRELOAD:+ $LD_PRELOAD}"
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then echo "run-tests: no tests were collected" >&2; exit 1; fi
exit "$rc"
