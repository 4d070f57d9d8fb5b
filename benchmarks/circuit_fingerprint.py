"""Fingerprint of the compiled selection circuit: PBS count (total and per ``fhe.tag`` step), SHA-256 of
``graph.format()`` (with and without the tag annotations) and of the MLIR, per grid; prints JSON. Compile only
(no keys, no evaluation); the digests are ``crypto.circuit.compiled.graph_fingerprint`` (which
``tests/crypto/test_circuit_fingerprint.py`` pins for the suite's N = 3 circuit).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/circuit_fingerprint.py --grids 3 16

10-bit offsets, 8-bit hurdles, margin mode, mono parameters (the benchmark's terms). A refactoring that must
leave the circuit unchanged shows identical values before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crypto import circuit  # noqa: E402
from crypto.circuit.compiled import graph_fingerprint  # noqa: E402
from market.terms import MarketTerms  # noqa: E402


def fingerprint(grid: int) -> dict:
    terms = MarketTerms(grid=grid, base_rate=100, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    compiled = circuit._compile(circuit.CircuitShape.from_terms(terms), simulation=False)
    return {"grid": grid, "rule": circuit.RULE_VERSION, **graph_fingerprint(compiled)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[3, 16])
    args = parser.parse_args(argv)
    print(json.dumps([fingerprint(g) for g in args.grids], indent=1), flush=True)
    os._exit(0)  # concrete's runtime may crash on interpreter exit after compiling (tests/conftest.py)


if __name__ == "__main__":
    main()
