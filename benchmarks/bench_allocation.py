"""Benchmark of the contract-clearing allocation mechanism.

Targets: KKT equilibrium by bisection for n = 10^6 agents in <= 1 s; Algorithm 1 for n = 10^5 agents and
1,000 iterations in <= 5 s; the 1,000-replication fee sweep (21 fees x every baseline, the centralized one
included) in <= 60 s; gas per clearing round for n = 20 agents on chain (JSON + table).

Times are wall-clock seconds (best and median of ``--repeats`` runs) on the paper's log/linear family with
α ~ U(5, 20), β ~ U(0.5, 5), τ = 0.5, g = 1 and a capacity that binds (m = half of demand at μ = 0).
Gas is measured on the embedded EVM (or ``--rpc URL``; ``--anvil`` starts a node for the run); the gas of a
transaction does not depend on the backend.

Usage: .venv/bin/python benchmarks/bench_allocation.py [--repeats 3] [--rounds 10] [--anvil] [--out FILE]
Writes JSON (default bench-results/bench_allocation.json) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from chain import connect  # noqa: E402
from chain.clearing import Clearing  # noqa: E402
from chain.node import start_anvil as launch  # noqa: E402
from market.allocation import (  # noqa: E402
    StepRule,
    adjust_prices,
    aggregate_demand,
    draw_log_linear,
    lipschitz_bound,
    solve_equilibrium,
)
from market.allocation.experiments import fee_sweep  # noqa: E402
from protocol.clearing_agents import run_onchain_clearing  # noqa: E402


TARGETS = {"bisection_1e6": 1.0, "algorithm1_1e5_x1000": 5.0, "fee_sweep_1000": 60.0}


def _times(fn, repeats: int) -> tuple[list[float], object]:
    out, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - start)
    return out, result


def _row(name: str, times: list[float], target: float, **extra) -> dict:
    return {"name": name, "best_s": min(times), "median_s": statistics.median(times), "runs": len(times),
            "target_s": target, "meets_target": min(times) <= target, **extra}


def bench_bisection(repeats: int) -> dict:
    agents = draw_log_linear(np.random.default_rng(0), 10**6)
    m = 0.5 * float(aggregate_demand(agents, 0.0, 0.5, 1.0))
    times, eq = _times(lambda: solve_equilibrium(agents, 0.5, 1.0, m), repeats)
    return _row("bisection_1e6", times, TARGETS["bisection_1e6"], agents=10**6, m=m, mu=float(eq.mu),
                iterations=eq.iterations, slack=float(eq.slack))


def bench_algorithm1(repeats: int) -> dict:
    agents = draw_log_linear(np.random.default_rng(1), 10**5)
    m = 0.5 * float(aggregate_demand(agents, 0.0, 0.5, 1.0))
    eta = float(1.0 / lipschitz_bound(agents, 0.5))
    times, res = _times(lambda: adjust_prices(agents, 0.5, 1.0, m, step=StepRule("constant", eta), gamma=0.5,
                                              max_iter=1000, stop_early=False), repeats)
    eq = solve_equilibrium(agents, 0.5, 1.0, m)
    return _row("algorithm1_1e5_x1000", times, TARGETS["algorithm1_1e5_x1000"], agents=10**5, iterations=1000,
                mu=float(res.mu), equilibrium_mu=float(eq.mu), primal_residual=float(res.primal_residual))


def bench_fee_sweep(repeats: int) -> dict:
    times, out = _times(lambda: fee_sweep(np.random.default_rng(2), replications=1000), repeats)
    return _row("fee_sweep_1000", times, TARGETS["fee_sweep_1000"], replications=1000, fees=len(out["taus"]),
                baselines=list(out["baselines"]))


def bench_gas(rounds: int, rpc_url: str | None, start_anvil: bool) -> dict:
    agents = draw_log_linear(np.random.default_rng(3), 20)
    eta = float(1.0 / lipschitz_bound(agents, 0.5))
    with tempfile.TemporaryDirectory() as tmp:
        node_dir = Path(tmp) / "node"
        if start_anvil:
            rpc_url = launch(node_dir).url
        try:
            chain = connect(Path(tmp) / "data", rpc_url)
            run = run_onchain_clearing(agents, tau=0.5, g=1.0, m=50.0, eta=eta, gamma=0.5, max_rounds=rounds,
                                       chain=chain)
            clearing = Clearing(chain, run.contract)
            reports = clearing.events("DemandReported")
            per_tx = []
            for ev in reports:
                receipt = chain.w3.eth.get_transaction_receipt(ev.tx_hash)
                per_tx.append((int(ev.args["round_id"]), int(receipt["gasUsed"])))
        finally:
            if start_anvil:
                from chain.node import stop_anvil

                stop_anvil(node_dir)
    steady = run.gas_per_round[1:] or run.gas_per_round
    by_round: dict[int, list[int]] = {}
    for r, g in per_tx:
        by_round.setdefault(r, []).append(g)
    plain = [g for r, gs in by_round.items() if r > 1 for g in gs[:-1]]
    closing = [gs[-1] for r, gs in by_round.items() if r > 1]
    return {
        "name": "gas_per_round_n20", "agents": 20, "rounds": run.rounds, "backend": chain.backend,
        "gas_per_round": run.gas_per_round, "first_round_gas": run.gas_per_round[0],
        "steady_round_gas_median": int(statistics.median(steady)),
        "report_gas_median": int(statistics.median(plain)) if plain else None,
        "closing_report_gas_median": int(statistics.median(closing)) if closing else None,
        "seconds": run.seconds, "max_deviation_from_float": run.max_deviation, "fixed_point_bound": run.bound,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10, help="clearing rounds on chain for the gas figure")
    parser.add_argument("--rpc", default=None, help="JSON-RPC URL for the gas run (default: embedded chain)")
    parser.add_argument("--anvil", action="store_true", help="start a local anvil node for the gas run")
    parser.add_argument("--skip-gas", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_allocation.json")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats = {args.repeats}: must be at least 1")

    err = Console(stderr=True)
    rows = []
    for label, fn in (("bisection, n = 10^6", bench_bisection), ("Algorithm 1, n = 10^5 x 1000", bench_algorithm1),
                      ("fee sweep, 1000 replications", bench_fee_sweep)):
        with err.status(f"{label} ..."):
            rows.append(fn(args.repeats))
    gas = None
    if not args.skip_gas:
        with err.status(f"gas: 20 agents x {args.rounds} rounds on chain ..."):
            gas = bench_gas(args.rounds, args.rpc, args.anvil)
    doc = {
        "benchmark": "allocation",
        "machine": machine(numpy=np.__version__),
        "timings": rows,
        "gas": gas,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(args.out)

    table = Table(title="allocation benchmarks (seconds)")
    for col in ("benchmark", "best", "median", "target", "ok"):
        table.add_column(col, justify="right" if col != "benchmark" else "left")
    for r in rows:
        table.add_row(r["name"], f"{r['best_s']:.3f}", f"{r['median_s']:.3f}", f"{r['target_s']:.0f}",
                      "yes" if r["meets_target"] else "NO")
    console = Console()
    console.print(table)
    if gas:
        g = Table(title=f"gas per clearing round, n = 20 ({gas['backend']}, {gas['rounds']} rounds)")
        g.add_column("figure"); g.add_column("gas", justify="right")
        g.add_row("first round (cold storage)", f"{gas['first_round_gas']:,}")
        g.add_row("steady round (median)", f"{gas['steady_round_gas_median']:,}")
        g.add_row("one report (median)", f"{gas['report_gas_median']:,}")
        g.add_row("closing report incl. price update (median)", f"{gas['closing_report_gas_median']:,}")
        console.print(g)
    console.print(f"JSON: {args.out}")
    return 0 if all(r["meets_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
