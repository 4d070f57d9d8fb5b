"""Benchmark: `repo-market select --backend simulate` against the volume grid, first run and cached.

For each grid N a linear pair of reports (b rising, a falling by 2 bp per unit; hurdles 5 and 7 bp) is selected
three ways, each in a fresh process (``repo-market select --json``, wall clock, imports included):

* ``before``: the simulation compiled from the FHE compile's inputset (60 random samples besides the structured
  extremes), as every run did before the simulator was cached: ``crypto.circuit.compiled._compile`` timed in
  a fresh process;
* ``first``: today's first run for these terms: the simulation compiled from the structured extremes alone (the
  same MLIR) and saved in ``<data-dir>/circuits/``;
* ``cached``: every later run: the saved simulator loaded.

Every run must select what the plaintext reference selects (``--backend plain``).

Usage: .venv/bin/python benchmarks/bench_simulate.py [--grids 4 8 16 32 64] [--out FILE]
Writes JSON (default bench-results/bench_simulate.json) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from market.limits import MAX_MARKET_GRID, MIN_MARKET_GRID  # noqa: E402


DEFAULT_GRIDS = (4, 8, 16, 32, 64)
OLD_COMPILE = """
import sys, time
from market.terms import MarketTerms
from crypto.circuit.compiled import _compile
from crypto.circuit.shape import CircuitShape
import crypto.circuit.compiled as compiled
terms = MarketTerms(grid=int(sys.argv[1]), base_rate=int(sys.argv[2]), rate_bits=10, hurdle_bits=8)
compiled.SIMULATION_SAMPLES = 60  # the inputset every simulation compiled from before
start = time.perf_counter()
_compile(CircuitShape.from_terms(terms), simulation=True)
print(time.perf_counter() - start)
"""


def schedules(grid: int) -> dict:
    return {"b": [400 + 2 * q for q in range(grid + 1)], "a": [400 + 2 * grid + 200 - 2 * q for q in range(grid + 1)]}


def select(path: Path, data_dir: Path, backend: str) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "protocol", "select", "--schedules", str(path), "--backend",
                          backend, "--hurdle-mm", "5", "--hurdle-rm", "7", "--data-dir", str(data_dir), "--json"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"select --backend {backend} failed: {out.stderr[-2000:]}")
    return wall, json.loads(out.stdout)


def measure(grid: int, work: Path) -> dict:
    path = work / f"schedules-{grid}.json"
    path.write_text(json.dumps(schedules(grid)))
    data_dir = work / f"data-{grid}"
    _, plain = select(path, data_dir, "plain")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    old = subprocess.run([sys.executable, "-c", OLD_COMPILE, str(grid), "400"], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=1800)
    before_wall = time.perf_counter() - start
    if old.returncode != 0:
        raise SystemExit(f"the old compile failed: {old.stderr[-2000:]}")
    first_wall, first = select(path, data_dir, "simulate")
    cached_wall, cached = select(path, data_dir, "simulate")
    agree = first["selected"] == plain["selected"] == cached["selected"]
    if not agree:
        raise SystemExit(f"N = {grid}: simulate {first['selected']} / {cached['selected']} vs plain "
                         f"{plain['selected']}")
    row = {"grid": grid, "before_compile_s": round(float(old.stdout.split()[-1]), 2),
           "before_process_s": round(before_wall, 2),
           "first_s": round(first_wall, 2), "first_evaluate_s": round(first["timings"]["evaluate"], 2),
           "cached_s": round(cached_wall, 2), "cached_evaluate_s": round(cached["timings"]["evaluate"], 2),
           "agrees_with_plain": agree, "volume": first["selected"]["volume"]}
    print(f"  N = {grid:>2}: before {row['before_process_s']:6.1f} s (compile {row['before_compile_s']:.1f} s), "
          f"first {row['first_s']:6.1f} s, cached {row['cached_s']:5.1f} s", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", type=int, nargs="+", default=list(DEFAULT_GRIDS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_simulate.json")
    args = parser.parse_args(argv)

    for g in args.grids:
        if not MIN_MARKET_GRID <= g <= MAX_MARKET_GRID:
            parser.error(f"--grids {g}: must be in {MIN_MARKET_GRID}..{MAX_MARKET_GRID}")
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        rows = [measure(g, Path(tmp)) for g in sorted(set(args.grids))]
    doc = {"benchmark": "simulate", "command": "repo-market select --backend simulate --json", "results": rows,
           "machine": machine(load_average_1m=os.getloadavg()[0])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\n{'N':>3} | {'before (compile per run)':>24} | {'first run':>9} | {'later runs':>10}")
    for r in rows:
        print(f"{r['grid']:>3} | {r['before_process_s']:>22.1f} s | {r['first_s']:>7.1f} s | {r['cached_s']:>8.1f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
