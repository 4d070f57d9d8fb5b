"""`repo-market allocate`: clear one allocation problem (Cha et al.): KKT equilibrium, price adjustment or on chain"""
from __future__ import annotations

import json
import math
import sys
from contextlib import contextmanager

import numpy as np
from rich.console import Console
from rich.table import Table

from market.allocation import (
    AllocationInputError,
    LogLinear,
    StepRule,
    adjust_prices,
    gini,
    jain,
    lipschitz_bound,
    measure,
    solve_equilibrium,
)
from market.allocation.equilibrium import BISECTION_TOL
from market.limits import ALLOCATION_MIN_STEP, LimitError, check_real
from protocol.clearing_agents import run_onchain_clearing
from protocol.cli import UsageError, check_option, check_rpc, given
from protocol.errors import ProtocolPackageError

HELP = "clear one allocation problem (Cha et al.): KKT equilibrium, price adjustment or on chain"
DESCRIPTION = """\
Clear one instance of the contract-clearing mechanism with log/linear agents V_i = α_i·log(1 + x),
C_i = β_i·x, per-unit fee τ, fixed fee g and capacity m.

  --method bisection  the KKT equilibrium μ* = inf{μ >= 0 : S(μ) <= m} by bisection (default)
  --method adjust     Algorithm 1: proximal best responses and the projected price update
  --method onchain    Algorithm 1 with the price held and updated by the Clearing contract on an EVM chain
                      (embedded by default, --rpc URL for a node); one agent account per α_i

Example: repo-market allocate --alpha 10 15 20 --beta 1 1 1 --tau 0.5 --g 0 --m 5 --json
"""


# option -> (attribute, default, the methods that use it); a default of None is computed at run time
_TUNING = {
    "--step": ("step", "constant", ("adjust", "onchain")),
    "--eta": ("eta", None, ("adjust", "onchain")),
    "--gamma": ("gamma", 0.5, ("adjust", "onchain")),
    "--reports": ("reports", 1, ("adjust",)),
    "--noise": ("noise", 0.0, ("adjust",)),
    "--max-iter": ("max_iter", 2000, ("adjust", "onchain")),
    "--tol": ("tol", 1e-8, ("adjust", "onchain")),
    "--rpc": ("rpc", None, ("onchain",)),
    "--seed": ("seed", 0, ("adjust",)),  # the noisy reports' draws
}


def configure(parser) -> None:
    parser.add_argument("--alpha", type=float, nargs="+", required=True, metavar="A",
                        help="value weights α_i (> 0), one per agent")
    parser.add_argument("--beta", type=float, nargs="+", required=True, metavar="B",
                        help="marginal private costs β_i (> 0), one per agent")
    parser.add_argument("--tau", type=float, default=0.5, help="per-unit fee τ >= 0 (default 0.5)")
    parser.add_argument("--g", type=float, default=1.0, help="fixed execution fee g >= 0 (default 1)")
    parser.add_argument("--m", type=float, default=100.0, help="capacity m > 0 (default 100)")
    parser.add_argument("--method", choices=("bisection", "adjust", "onchain"), default="bisection")
    parser.add_argument("--step", choices=("constant", "sqrt", "harmonic"), default="constant",
                        help="adjust/onchain: step rule (default constant)")
    parser.add_argument("--eta", type=float, default=None,
                        help="adjust/onchain: η (or η0); default 1/L with L = Σ α_i/(β_i + τ)²")
    parser.add_argument("--gamma", type=float, default=0.5, help="adjust/onchain: proximal weight γ (default 0.5)")
    parser.add_argument("--reports", type=int, default=1, help="adjust: M noisy reports averaged (default 1)")
    parser.add_argument("--noise", type=float, default=0.0, help="adjust: std of each report's noise (default 0)")
    parser.add_argument("--max-iter", type=int, default=2000, help="adjust/onchain: round limit (default 2000)")
    parser.add_argument("--tol", type=float, default=1e-8, help="adjust/onchain: residual tolerance (default 1e-8)")
    parser.add_argument("--rpc", default=None, help="onchain: JSON-RPC URL of a node (default: embedded chain)")


def _validate(args):
    if len(args.alpha) != len(args.beta):
        raise UsageError(f"--alpha has {len(args.alpha)} values but --beta has {len(args.beta)}: one each per agent")
    try:
        agents = LogLinear(args.alpha, args.beta)
        for name, values in (("--alpha", args.alpha), ("--beta", args.beta)):
            for i, value in enumerate(values):
                check_real(f"{name}[{i}]" if len(values) > 1 else name, value, zero_ok=False)
        for opt, value, zero_ok in (("--tau", args.tau, True), ("--g", args.g, True), ("--m", args.m, False),
                                    ("--gamma", args.gamma, True), ("--noise", args.noise, True)):
            check_real(opt, value, zero_ok=zero_ok)
        check_real("--tol", args.tol, zero_ok=False, low=ALLOCATION_MIN_STEP)
        if args.eta is not None:
            check_real("--eta", args.eta, zero_ok=False, low=ALLOCATION_MIN_STEP)
    except AllocationInputError as exc:
        raise UsageError(f"--{exc}") from None
    except LimitError as exc:
        raise UsageError(str(exc)) from None
    if args.reports < 1:
        raise UsageError(f"--reports = {args.reports}: must be at least 1")
    if args.max_iter < 1:
        raise UsageError(f"--max-iter = {args.max_iter}: must be at least 1")
    check_option("--reports", args.reports, 1, 10_000)  # [decided] bounded runs
    check_option("--max-iter", args.max_iter, 1, 1_000_000)
    for option, (_attr, _default, methods) in _TUNING.items():  # options this method would ignore
        if given(args, option) and args.method not in methods:
            value = getattr(args, _attr)
            raise UsageError(f"{option} {value}: only for --method {' or '.join(methods)} (this run: --method {args.method})")
    if args.method == "onchain":
        check_rpc(args.rpc)
    if args.method == "onchain" and (args.noise > 0 or args.reports != 1):
        raise UsageError("--noise/--reports: the on-chain run takes exact reports (one per agent per round)")
    return agents


class NumericalFailure(ProtocolPackageError):
    """The float computation overflowed or produced a non-finite result: no trustworthy answer."""


@contextmanager
def _floating_point_events(events: list[str]):
    """Record numpy's floating-point events (overflow, invalid, divide) instead of printing warnings."""
    previous = np.seterrcall(lambda kind, flag: events.append(kind))
    try:
        with np.errstate(over="call", invalid="call", divide="call", under="ignore"):
            yield
    finally:
        np.seterrcall(previous)


def run(args) -> int:
    agents = _validate(args)
    events: list[str] = []
    with _floating_point_events(events):
        doc, mu, x = _clear(args, agents)
    bad = [k for k, v in _numbers(doc) if not math.isfinite(v)]
    if events or bad:
        what = ", ".join(sorted(set(events))) or "non-finite results"
        raise NumericalFailure(
            f"the float computation failed ({what}{'; ' + ', '.join(bad[:3]) if bad else ''}) for --alpha "
            f"{' '.join(f'{a:g}' for a in args.alpha)} --beta {' '.join(f'{b:g}' for b in args.beta)} "
            f"--tau {args.tau:g} --g {args.g:g} --m {args.m:g}; no result is reported")
    warnings = _convergence_warnings(args, doc)
    doc["warnings"] = warnings
    if args.json:
        print(json.dumps(doc))
    else:
        _print_table(args, doc, mu, warnings)
    return 0


def _numbers(doc, prefix=""):
    """(path, value) of every float in ``doc``."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _numbers(v, f"{prefix}{k}.")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _numbers(v, f"{prefix}{i}.")
    elif isinstance(doc, float):
        yield prefix.rstrip("."), doc


def _convergence_warnings(args, doc) -> list[str]:
    """Why the reported allocation is not (yet) the equilibrium: shown in the table and the JSON."""
    out = []
    if args.method == "bisection":
        bracket = doc["residuals"]["bracket"]
        doc["converged"] = bracket <= BISECTION_TOL * max(1.0, abs(doc["mu"]))
        if not doc["converged"]:
            out.append(f"bisection bracket {bracket:.3g} after {doc['iterations']} iterations is above "
                       f"{BISECTION_TOL:g} (relative to μ)")
    elif not doc.get("converged", True):
        worst = max(doc["residuals"].items(), key=lambda kv: kv[1] if kv[1] is not None else 0)
        out.append(f"not converged within --max-iter {args.max_iter} rounds: residual {worst[0]} = "
                   f"{worst[1]:.3g} above --tol {args.tol:g}")
    return out


def _clear(args, agents):
    """The document of one clearing (before the checks), μ and x."""
    eta = args.eta if args.eta is not None else float(1.0 / max(float(lipschitz_bound(agents, args.tau)), 1e-12))
    doc: dict = {"method": args.method}
    eq = solve_equilibrium(agents, args.tau, args.g, args.m)
    if args.method == "bisection":
        mu, x = float(eq.mu), eq.x
        doc.update(iterations=eq.iterations,
                   residuals={"primal": float(abs(min(mu, args.m - float(eq.demand)))),
                              "bracket": float(eq.bracket)})
    elif args.method == "adjust":
        res = adjust_prices(agents, args.tau, args.g, args.m, step=StepRule(args.step, eta), gamma=args.gamma,
                            reports=args.reports, noise_std=args.noise, rng=np.random.default_rng(args.seed),
                            tol=args.tol, max_iter=args.max_iter)
        mu, x = float(res.mu), res.x
        doc.update(iterations=res.iterations, converged=bool(res.converged), eta=eta, step=args.step,
                   gamma=args.gamma, residuals={"primal": float(res.primal_residual),
                                                "dual": float(res.dual_residual),
                                                "report": float(res.report_residual)},
                   equilibrium_mu=float(eq.mu))
    else:
        run_ = run_onchain_clearing(agents, tau=args.tau, g=args.g, m=args.m, eta=eta, step=args.step,
                                    gamma=args.gamma, tol=args.tol, max_rounds=args.max_iter,
                                    data_dir=args.data_dir, rpc_url=args.rpc, progress=not args.json)
        mu, x = run_.mu, run_.x
        doc.update(iterations=run_.rounds, converged=run_.converged, eta=eta, step=args.step, gamma=args.gamma,
                   residuals=run_.residuals, equilibrium_mu=float(eq.mu), contract=run_.contract,
                   gas_per_round=run_.gas_per_round, max_deviation_from_float=run_.max_deviation,
                   fixed_point_bound=run_.bound)
    met = measure(agents, x, args.tau, args.g, mu, args.m)
    x_total = float(np.sum(x))
    doc.update(
        mu=mu, x=[float(v) for v in x], efficiency=float(met.efficiency), gini=float(gini(x)),
        jain=float(jain(x)), participation=float(met.participation),
        binding=bool(mu > 0 and abs(args.m - x_total) <= 1e-6 * max(1.0, args.m)),
        slack=args.m - x_total, jump=bool(eq.jump) if args.method == "bisection" else None,
    )
    return doc, mu, x


def _print_table(args, doc, mu, warnings) -> None:
    table = Table(title=f"allocate ({args.method}): μ = {mu:.10g}, Eff = {doc['efficiency']:.6g}")
    table.add_column("agent", justify="right"); table.add_column("α", justify="right")
    table.add_column("β", justify="right"); table.add_column("x", justify="right")
    for i, (a, b, xi) in enumerate(zip(args.alpha, args.beta, doc["x"])):
        table.add_row(str(i), f"{a:g}", f"{b:g}", f"{xi:.8g}")
    console = Console(file=sys.stdout)
    console.print(table)
    console.print(f"Gini {doc['gini']:.6g}  Jain {doc['jain']:.6g}  participation {doc['participation']:.3g}  "
                  f"binding {doc['binding']}  iterations {doc['iterations']}  residuals {doc['residuals']}")
    for warning in warnings:
        console.print(f"[bold red]NOT CONVERGED[/bold red]: {warning}")
