"""Benchmark: exhaustive pure-equilibrium enumeration of the dealer game versus the rate-grid size.

For each size n the market is the linear family with one bp per unit on both sides
(``D(r) = (r - r_lo)+``, ``S(r) = (r_hi - r)+``) and ``r_hi - r_lo = n - 3``, so the grid of
``repo-market equilibria`` (every breakpoint plus one bp beyond each end) has exactly n rates and the game is
an n × n bimatrix. Times are wall-clock seconds, best and median of ``--repeats`` runs of
``market.equilibria.all_equilibria`` (payoff matrices, both best-response masks, classification), and of the
D2 locus test for comparison. Target: 400 × 400 in under 1 s.

Usage: .venv/bin/python benchmarks/bench_equilibria.py [--sizes 200 400 ...] [--repeats 5] [--out FILE]
Writes JSON (default bench-results/bench_equilibria.json) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from market import equilibrium_volumes, linear_schedules  # noqa: E402
from market.equilibria import all_equilibria, rate_grid  # noqa: E402


DEFAULT_SIZES = (200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000)
R_LO = 100


def _times(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def measure(n: int, repeats: int) -> dict:
    delta = n - 3
    schedules = linear_schedules(R_LO, R_LO + delta, 1, 1, delta)
    rates = rate_grid(schedules)
    assert rates.size == n, (rates.size, n)
    eq = all_equilibria(schedules, rates)
    d2 = equilibrium_volumes(schedules)
    assert eq.volumes.tolist() == d2.tolist(), "exhaustive and D2 disagree"
    exhaustive = _times(lambda: all_equilibria(schedules, rates), repeats)
    locus = _times(lambda: equilibrium_volumes(schedules), repeats)
    return {
        "rate_points": n,
        "volume_grid": int(schedules.grid),
        "profiles": n * n,
        "equilibria": len(eq),
        "equilibrium_volumes": int(eq.volumes.size),
        "largest_volume": eq.largest_volume,
        "jpm_volume": eq.jpm.volume,
        "exhaustive_best_s": min(exhaustive),
        "exhaustive_median_s": statistics.median(exhaustive),
        "d2_best_s": min(locus),
        "d2_median_s": statistics.median(locus),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_equilibria.json")
    args = parser.parse_args(argv)
    if min(args.sizes) < 4:
        parser.error(f"--sizes {min(args.sizes)}: need at least 4 rate points")
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: need at least 1")

    console = Console(stderr=True)
    rows = []
    for n in args.sizes:
        console.print(f"[dim]measuring {n} × {n} ...[/dim]")
        rows.append(measure(n, args.repeats))
    sizes = np.array([r["rate_points"] for r in rows], dtype=float)
    best = np.array([r["exhaustive_best_s"] for r in rows])
    # growth exponent of time in the number of rate points (expected 2: an n × n bimatrix)
    exponent = float(np.polyfit(np.log(sizes), np.log(best), 1)[0]) if len(rows) > 1 else None
    at_400 = next((r["exhaustive_best_s"] for r in rows if r["rate_points"] == 400), None)
    doc = {
        "benchmark": "bench_equilibria",
        "what": "exhaustive pure equilibria of the dealer game on an n x n rate grid (market.equilibria.all_equilibria)",
        "machine": machine(numpy=np.__version__, load_average_1m=os.getloadavg()[0]),
        "repeats": args.repeats,
        "results": rows,
        "growth_exponent": exponent,
        "target": {"rate_points": 400, "limit_s": 1.0, "best_s": at_400,
                   "met": None if at_400 is None else at_400 < 1.0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, args.out)

    table = Table(title="Exhaustive equilibria of the dealer game (best of %d runs)" % args.repeats)
    for col in ("rate grid", "profiles", "equilibria", "eq. volumes", "exhaustive (ms)", "D2 locus (ms)"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['rate_points']} × {r['rate_points']}", f"{r['profiles']:,}", f"{r['equilibria']:,}",
                      str(r["equilibrium_volumes"]), f"{1e3 * r['exhaustive_best_s']:.1f}", f"{1e3 * r['d2_best_s']:.1f}")
    Console().print(table)
    if exponent is not None:
        Console().print(f"time grows like n^{exponent:.2f}; JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
