"""The measured figures of docs/ALLOCATION_RESULTS.md §2–§5, from the experiments themselves.

Runs, with seed 0 and the replications the doc states, every experiment `repo-market experiment NAME` runs
(the same pure functions of ``market.allocation.experiments``, through the same ``EXPERIMENTS`` table and
``headline``), the §3 comparison of the five mechanisms at the defaults with m = 100 and m = 50, and the §5
on-chain fixed-point measurements (worked example 1 and 20 agents × 50 rounds on the embedded EVM, or
``--rpc URL``). Each experiment draws from a fresh ``numpy.random.default_rng(seed)``, as the command does.

Writes compact summaries only — the figures the doc shows, with seed, replications, wall seconds per
experiment and the machine — to bench-results/bench_allocation_results.json, and prints a table;
``python benchmarks/doc_tables.py`` then renders the doc's regions from it.

Usage: .venv/bin/python benchmarks/bench_allocation_results.py [--seed 0] [--skip-chain] [--rpc URL] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
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

from market.allocation import LogLinear, StepRule, adjust_prices, draw_log_linear  # noqa: E402
from market.allocation import lipschitz_bound, solve_equilibrium  # noqa: E402
from market.allocation.experiments import EXPERIMENTS  # noqa: E402
from protocol.allocation_report import headline, to_jsonable  # noqa: E402
from protocol.clearing_agents import run_onchain_clearing  # noqa: E402
from protocol.commands.experiment import _fmt  # noqa: E402


# (key in the JSON, experiment, keyword arguments): the replications are the ones the doc states
RUNS = (
    ("fee-sweep", "fee-sweep", {"replications": 1000}),
    ("fee-sweep-m50", "fee-sweep", {"replications": 1000, "m": 50.0}),
    ("dashboard", "dashboard", {"replications": 50}),
    ("pareto", "pareto", {"replications": 100}),
    ("fee-shock", "fee-shock", {"replications": 50}),
    ("participation-shock-leave", "participation-shock", {"replications": 50, "mode": "leave"}),
    ("participation-shock-join", "participation-shock", {"replications": 50, "mode": "join"}),
    ("dynamic-demand", "dynamic-demand", {"replications": 50}),
    ("fee-volatility", "fee-volatility", {"replications": 50}),
    ("regret", "regret", {"replications": 20}),
    ("regret-constant", "regret", {"replications": 20, "step_kind": "constant"}),
    ("step-sweep", "step-sweep", {"replications": 20}),
)
COMPARISON_TAU = 0.5  # the default τ: the §3 comparison is the fee sweep's column at it
BINDING_TAUS = (0.0, 0.4, 0.8)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _index(grid, value: float) -> int:
    i = int(np.argmin(np.abs(np.asarray(grid, dtype=float) - value)))
    if not np.isclose(grid[i], value):
        raise SystemExit(f"τ = {value} is not on the experiment's grid")
    return i


def comparison(result: dict) -> dict:
    """Every mechanism's metrics at τ = COMPARISON_TAU (mean and 95 % half-width over the replications)."""
    i = _index(result["taus"], COMPARISON_TAU)
    rows = {}
    for name, row in result["baselines"].items():
        rows[name] = {metric: float(row[metric]["mean"][i]) for metric in
                      ("efficiency", "gross_surplus", "gini", "jain", "participation")}
        rows[name] |= {"efficiency_ci95": float(row["efficiency"]["ci95"][i]),
                       "gini_ci95": float(row["gini"]["ci95"][i]),
                       "over_capacity_share": float(row["over_capacity_share"][i])}
    return {"tau": COMPARISON_TAU, "m": result["m"], "n": result["n"], "g": result["g"],
            "capacity_slack_share": 1.0 - float(result["binding_share"][i]), "mechanisms": rows}


def fee_sweep_figures(result: dict) -> dict:
    taus = np.asarray(result["taus"])
    gini = np.asarray(result["baselines"]["proposed"]["gini"]["mean"])
    binding = np.asarray(result["binding_share"])
    zero = np.flatnonzero(np.cumsum(binding[::-1]) == 0)  # from the end: the run of τ with no binding draw
    return {"taus": [float(taus[0]), float(taus[-1])], "gini_ends": [float(gini[0]), float(gini[-1])],
            "gini_min": float(gini.min()), "gini_argmin_tau": float(taus[int(gini.argmin())]),
            "binding_share_at": {f"{t:g}": float(binding[_index(taus, t)]) for t in BINDING_TAUS},
            "binding_zero_from_tau": float(taus[len(taus) - 1 - zero[-1]]) if zero.size else None}


def dashboard_figures(result: dict) -> dict:
    return {"taus": [float(result["taus"][0]), float(result["taus"][-1])],
            "gs": [float(result["gs"][0]), float(result["gs"][-1])],
            "fairness_falls_with_g_share": float(np.mean(np.asarray(result["fairness_gradient_g"]) < 0))}


def pareto_figures(result: dict) -> dict:
    front = np.asarray(result["frontier"])
    taus = np.asarray(result["taus"])[front]
    order = np.argsort(taus)
    return {"frontier_ends": [
        {"tau": float(taus[k]), "efficiency": float(np.asarray(result["efficiency"])[front][k]),
         "fairness": float(np.asarray(result["fairness"])[front][k])} for k in (order[0], order[-1])],
        "frontier_contiguous": bool(np.all(np.diff(np.flatnonzero(front)) == 1))}


def dynamic_figures(result: dict) -> dict:
    return {"rounds_after_shock": int(result["rounds"]) - int(result["shock_at"])}


def regret_figures(result: dict) -> dict:
    return {"horizons": [int(h) for h in result["horizons"]], "regret": [float(v) for v in result["regret"]["mean"]]}


def step_sweep_figures(result: dict) -> dict:
    c = np.asarray(result["multiples_of_2_over_L"])
    not_all = c[np.asarray(result["converged_share"]) < 1.0]
    all_diverge = c[np.asarray(result["diverged_share"]) == 1.0]
    return {"first_multiple_not_all_converge": float(not_all.min()) if not_all.size else None,
            "first_multiple_all_diverge": float(all_diverge.min()) if all_diverge.size else None}


FIGURES = {"fee-sweep": fee_sweep_figures, "dashboard": dashboard_figures, "pareto": pareto_figures,
           "fee-shock": dynamic_figures, "participation-shock": dynamic_figures, "regret": regret_figures,
           "step-sweep": step_sweep_figures}


def run_experiments(seed: int) -> dict:
    out = {}
    for key, name, kwargs in RUNS:
        _say(f"[{len(out) + 1}/{len(RUNS)}] {key} ({kwargs['replications']} replications) ...")
        started = time.perf_counter()
        result = EXPERIMENTS[name](np.random.default_rng(seed), **kwargs)
        seconds = time.perf_counter() - started
        entry = {"experiment": name, "replications": int(result["replications"]), "seconds": seconds,
                 "parameters": {k: v for k, v in kwargs.items() if k != "replications"},
                 "headline": headline(name, result)}
        entry |= {k: result[k] for k in ("m", "mode", "fraction", "sigma") if k in result}
        if name in FIGURES:
            entry |= FIGURES[name](result)
        if name == "fee-sweep":
            entry["comparison"] = comparison(result)
        out[key] = to_jsonable(entry)
        _say(f"      {seconds:.1f} s")
    return out


def worked_example_1(rpc_url: str | None) -> dict:
    """μ* of worked example 1 by bisection, by Algorithm 1 (the `allocate --method adjust` defaults) and on
    chain (η = 0.5, γ = 0, tol 1e-9: the contract declares convergence), as in the doc's §7 commands."""
    agents = LogLinear([10.0, 15.0, 20.0], [1.0, 1.0, 1.0])
    tau, g, m = 0.5, 0.0, 5.0
    eq = solve_equilibrium(agents, tau, g, m)
    eta = float(1.0 / lipschitz_bound(agents, tau))
    adj = adjust_prices(agents, tau, g, m, step=StepRule("constant", eta), gamma=0.5, tol=1e-8, max_iter=2000)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_onchain_clearing(agents, tau=tau, g=g, m=m, eta=0.5, gamma=0.0, tol=1e-9, max_rounds=60,
                                   data_dir=Path(tmp) / "data", rpc_url=rpc_url)
    return {"bisection_mu": float(eq.mu),
            "algorithm1": {"mu": float(adj.mu), "iterations": int(adj.iterations), "eta": eta, "gamma": 0.5,
                           "tol": 1e-8},
            "onchain": {"mu": run.mu, "rounds": run.rounds, "converged": bool(run.converged),
                        "max_deviation_from_float": run.max_deviation, "bound": run.bound, "eta": 0.5,
                        "gamma": 0.0, "tol": 1e-9, "seconds": time.perf_counter() - started}}


def twenty_agents(seed: int, rpc_url: str | None) -> dict:
    """The run of test_twenty_agents_fifty_rounds_match_the_float_reference: 20 agents × 50 rounds, m = 50."""
    agents = draw_log_linear(np.random.default_rng(seed), 20)
    eta = float(1.0 / lipschitz_bound(agents, 0.5))
    with tempfile.TemporaryDirectory() as tmp:
        run = run_onchain_clearing(agents, tau=0.5, g=1.0, m=50.0, eta=eta, gamma=0.5, max_rounds=50,
                                   data_dir=Path(tmp) / "data", rpc_url=rpc_url)
    return {"agents": 20, "rounds": run.rounds, "max_deviation_from_float": run.max_deviation,
            "bound": run.bound, "seconds": run.seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-chain", action="store_true", help="leave out the on-chain measurements")
    parser.add_argument("--rpc", default=None, help="JSON-RPC URL for the on-chain runs (default: embedded EVM)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_allocation_results.json")
    args = parser.parse_args()

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    doc: dict = {"benchmark": "allocation_results", "seed": args.seed,
                 "experiments": run_experiments(args.seed), "onchain": None}
    if not args.skip_chain:
        _say("on chain: worked example 1 ...")
        t = time.perf_counter()
        example = worked_example_1(args.rpc)
        _say(f"      {time.perf_counter() - t:.1f} s\non chain: 20 agents × 50 rounds ...")
        t = time.perf_counter()
        doc["onchain"] = {"backend": "rpc" if args.rpc else "embedded", "worked_example_1": example,
                          "twenty_agents": twenty_agents(args.seed, args.rpc)}
        _say(f"      {time.perf_counter() - t:.1f} s")
    doc["wall_seconds"] = time.perf_counter() - started
    doc["machine"] = machine(numpy=np.__version__, load_average_1m_before=load_before,
                             load_average_1m_after=os.getloadavg()[0])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(args.out)

    table = Table(title=f"allocation results (seed {args.seed}, {doc['wall_seconds']:.0f} s)")
    for col in ("experiment", "replications", "seconds", "headline"):
        table.add_column(col, justify="left" if col in ("experiment", "headline") else "right")
    for key, entry in doc["experiments"].items():
        table.add_row(key, str(entry["replications"]), f"{entry['seconds']:.1f}",
                      ", ".join(f"{k} {_fmt(v)}" for k, v in entry["headline"].items()))
    console = Console(width=max(Console().width, 160))
    console.print(table)
    if doc["onchain"]:
        o = doc["onchain"]
        ex = o["worked_example_1"]["onchain"]
        console.print(f"on chain ({o['backend']}): 20 × 50 deviation "
                      f"{o['twenty_agents']['max_deviation_from_float']:.2g}"
                      f", example 1 μ = {ex['mu']!r} deviation {ex['max_deviation_from_float']:.2g}")
    console.print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
