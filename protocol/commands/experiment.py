"""`repo-market experiment`: run an allocation experiment (fee sweep, shocks, frontier, ...) writing JSON and PNG"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from market.allocation import AllocationInputError
from market.allocation.experiments import EXPERIMENTS
from protocol.allocation_report import headline, plot_experiment, to_jsonable, write_result
from protocol.cli import UsageError, check_output_dir, naming

HELP = "run an allocation experiment (fee sweep, shocks, frontier, ...) writing JSON and PNG"
DESCRIPTION = """\
Run one experiment of Cha et al. (arXiv 2510.05504) on the log/linear family with the paper's defaults
(n = 20, α ~ U(5, 20), β ~ U(0.5, 5), τ = 0.5, g = 1; m = 100 for static, m = 50 for dynamic experiments
[decided]). Writes OUT/NAME.json (every series, means/std/95% half-widths over replications) and OUT/NAME.png.

  fee-sweep            every baseline's metrics for τ over [0, 2]
  dashboard            (τ, g) grid: efficiency surface, fairness gradient, Pareto map, elasticity heat map
  pareto               efficiency vs (1 − Gini) over τ and its non-dominated set
  fee-shock            τ 0.5 → 1.5 at t = 50 of 100: resilience, recovery time, regret
  participation-shock  a quarter of the agents leaves at t = 50 (or joins with --mode join)
  dynamic-demand       α random walk; tracking error and dynamic regret
  fee-volatility       τ random walk clipped to [0, 2]
  regret               dynamic regret of η0/√t over horizons T and its log-log slope
  step-sweep           constant step η as a multiple of 2/L: converges / oscillates / diverges
"""

EXPERIMENT_NAMES = (
    "fee-sweep", "dashboard", "pareto", "fee-shock", "participation-shock", "dynamic-demand",
    "fee-volatility", "regret", "step-sweep",
)


def configure(parser) -> None:
    parser.add_argument("name", metavar="NAME", help="one of: " + ", ".join(EXPERIMENT_NAMES))
    parser.add_argument("--replications", type=int, default=None,
                        help="replications of the random agents (default: the experiment's own, 20-100)")
    parser.add_argument("--out", type=Path, required=True, help="directory for NAME.json and NAME.png")
    parser.add_argument("--mode", choices=("leave", "join"), default=None,
                        help="participation-shock only: agents leave or join at the shock (default leave)")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")


def run(args) -> int:
    if args.name not in EXPERIMENTS:
        raise UsageError(f"NAME = {args.name!r}: must be one of {', '.join(EXPERIMENT_NAMES)}")
    if args.replications is not None and args.replications < 1:
        raise UsageError(f"--replications = {args.replications}: must be at least 1")
    if args.mode is not None and args.name != "participation-shock":
        raise UsageError(f"--mode {args.mode}: only participation-shock takes it (NAME = {args.name})")
    check_output_dir("--out", args.out)
    if args.replications is not None and args.replications > 100_000:  # [decided] bounded runs
        raise UsageError(f"--replications = {args.replications}: must be at most 100000")
    kwargs = {}
    if args.replications is not None:
        kwargs["replications"] = args.replications
    if args.name == "participation-shock":
        kwargs["mode"] = args.mode or "leave"

    err = Console(stderr=True)
    started = time.perf_counter()
    try:
        with err.status(f"running {args.name} ...", spinner="dots"):
            result = EXPERIMENTS[args.name](np.random.default_rng(args.seed), **kwargs)
    except AllocationInputError as exc:
        raise UsageError(str(exc)) from None
    elapsed = time.perf_counter() - started
    json_path = args.out / f"{args.name}.json"
    png_path = args.out / f"{args.name}.png"
    document = {"experiment": args.name, "seed": args.seed, "seconds": elapsed, "result": result}
    created = not args.out.exists()
    try:
        with naming(args.out):
            args.out.mkdir(parents=True, exist_ok=True)
        with naming(json_path):
            write_result(json_path, document)
        if not args.no_plot:
            with naming(png_path):
                plot_experiment(args.name, to_jsonable(result), png_path)
    except BaseException:
        json_path.unlink(missing_ok=True)  # no half-written result: the folder is as it was
        if created:
            shutil.rmtree(args.out, ignore_errors=True)
        raise
    summary = {"experiment": args.name, "seed": args.seed, "seconds": round(elapsed, 3),
               "json": str(json_path), "png": None if args.no_plot else str(png_path),
               "headline": headline(args.name, result)}
    if args.json:
        print(json.dumps(summary))
    else:
        table = Table(title=f"experiment {args.name} (seed {args.seed}, {elapsed:.2f} s)")
        table.add_column("figure"); table.add_column("value", justify="right")
        for key, value in summary["headline"].items():
            table.add_row(key, _fmt(value))
        table.add_row("json", str(json_path))
        if not args.no_plot:
            table.add_row("png", str(png_path))
        Console(file=sys.stdout).print(table)
    return 0


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)
