#!/usr/bin/env bash
# Idempotent project setup: a project-local virtualenv (.venv) with the project installed editable,
# and optionally anvil and cast (Foundry 1.7.1) from the npm registry into .tools/ (for the test suite;
# cast runs the docs/AUDIT.md walkthrough in tests/protocol/test_audit_cast.py).
# A stamp keyed on the dependency files makes a second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

want_anvil=0
for arg in "$@"; do
  case "$arg" in
    --with-anvil) want_anvil=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
venv="$root/.venv"
stamp="$venv/.repo-market-installed"
key=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating virtualenv $venv"
  "$PY" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$key" ]; then
  echo "setup: installing Python dependencies (first run: a few minutes, ~2 GB)"
  "$venv/bin/python" -m pip install -q --upgrade "pip>=24" "setuptools<81" wheel
  # torch first, from the CPU wheel, so nothing later resolves to a CUDA build.
  "$venv/bin/python" -m pip install -q -c constraints.txt torch==2.13.0
  "$venv/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
  if "$venv/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "setup: a CUDA package was installed; refusing (see constraints.txt)" >&2
    exit 1
  fi
  echo "$key" > "$stamp"
else
  echo "setup: Python dependencies up to date"
fi

# The fixed FFT plan library (crypto/fixed_fft_plan.c): FHE evaluations byte-identical across processes.
echo "setup: fixed FFT plan library $("$venv/bin/python" -m crypto.fhe_runtime)"

# node-tfhe 0.10.0 (the tfhe-rs that concrete-python 2.11 embeds, as WASM): dealers' owner encryption and
# input proofs (crypto/tfhers). Pinned: 1.x changes the serialization.
node_tfhe="$root/.tools/node_modules/node-tfhe/package.json"
if [ ! -f "$node_tfhe" ] || ! grep -q '"version": "0.10.0"' "$node_tfhe"; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup: installing node-tfhe 0.10.0 from the npm registry into .tools/"
    mkdir -p "$root/.tools"
    npm install --silent --no-audit --no-fund --prefix "$root/.tools" node-tfhe@0.10.0
  else
    echo "setup: npm not found; node-tfhe (owner encryption) not installed" >&2
  fi
fi

if [ "$want_anvil" = 1 ]; then
  anvil="$root/.tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
  cast="$root/.tools/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
  if [ ! -x "$anvil" ] || [ ! -x "$cast" ]; then
    echo "setup: installing anvil 1.7.1 and cast 1.7.1 from the npm registry into .tools/"
    mkdir -p "$root/.tools"
    # one install command for both: a second `npm install --prefix` would be computed without the first
    npm install --silent --no-audit --no-fund --prefix "$root/.tools" \
      @foundry-rs/anvil-linux-amd64@1.7.1 @foundry-rs/cast-linux-amd64@1.7.1
    chmod +x "$anvil" "$cast" 2>/dev/null || true
  fi
  "$anvil" --version | head -n1
  "$cast" --version | head -n1
fi
