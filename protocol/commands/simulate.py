"""`repo-market simulate`: many rounds with client shocks; the contract's selection vs no coordination.

Each round draws client schedules (linear or random tables), private client shocks theta and hurdle spreads,
then compares the contract (truthful reports, the selection rule, sequential execution) with no
coordination (each dealer picks an equilibrium rate independently, or best-response dynamics). Reports the
equilibrium set, the selected outcome, dealer profits, client volumes and surplus per round, and a summary.

The contract's instruction comes from a *backend* (``--backend``): ``plain`` is the plaintext reference
in ``market.selection``. Further backends register in ``BACKENDS`` (name → factory(args) → selector with the
signature of ``market.selection.select_equilibrium``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from common.plotting import save_figure
from market import limits, select_equilibrium
from market.plots import simulation_figures
from market.simulation import SimulationConfig, SimulationConfigError, simulate
from protocol.cli import UsageError, check_option, check_output_dir, check_rpc, given, naming
from protocol.commands.account_options import add_account_options, signers_from_args
from protocol.deployment import signing_roles
from protocol.selector import ProtocolSelector

HELP = "simulate many rounds with theta shocks; contract vs no-contract welfare"
DESCRIPTION = __doc__


def _plain_selector(args):
    return select_equilibrium


def _signers(args):
    """The key files / keystores given for the simulated market's roles (one evaluator), checked."""
    return signers_from_args(args, signing_roles(evaluators=1))


def _protocol_selector(backend: str) -> Callable:
    """A whole protocol round per simulated round (protocol.selector), on the embedded chain or --rpc."""

    def factory(args):
        # every report must fit the published offsets: base rate below the lowest shocked rate [decided]
        signers = _signers(args)  # checked before any round runs
        # a new fhe market's key holders get one decryption slot per round of this run [decided]
        return ProtocolSelector(args.data_dir, backend, base_rate=max(1, 300 - args.theta - 1), rate_bits=9,
                                rpc_url=getattr(args, "rpc", None), seed=args.seed, signers=signers,
                                slots=args.rounds)

    return factory


# name -> factory(args) -> Selector; "simulate" and "fhe" run the real round machinery (protocol/selector.py)
BACKENDS: dict[str, Callable] = {"plain": _plain_selector, "simulate": _protocol_selector("simulate"),
                                 "fhe": _protocol_selector("fhe")}


def configure(parser) -> None:
    parser.add_argument("--rounds", type=int, default=200, metavar="N", help="number of rounds (default 200)")
    parser.add_argument("--grid", type=int, default=40, metavar="N", help="volume grid 0..N (default 40)")
    parser.add_argument("--family", choices=("linear", "tabular"), default="linear",
                        help="client schedules: random linear, or random weakly monotone tables with flat steps")
    parser.add_argument("--theta", type=int, default=10, metavar="BP", help="client shocks uniform on -BP..BP (default 10)")
    parser.add_argument("--hurdle-max", type=int, default=10, metavar="BP", help="hurdles uniform on 0..BP (default 10)")
    parser.add_argument("--hurdle-mode", choices=("margin", "spread"), default="margin")
    parser.add_argument("--baseline", choices=("independent", "dynamics"), default="independent",
                        help="no-coordination play: independent equilibrium picks, or best-response dynamics")
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="plain",
                        help="how the contract's instruction is computed: plain reference (default), or whole "
                             "protocol rounds (dealers' encrypted reports, evaluators, chain) with the circuit's simulation "
                             "or real FHE")
    parser.add_argument("--rpc", metavar="URL", default=None,
                        help="JSON-RPC node for the simulate/fhe backends (default: embedded chain)")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write PNG plots of the comparison into DIR")

    add_account_options(parser)


def validate(args) -> None:
    """Every option against market.limits before anything is created (the protocol backends make a market)."""
    protocol_backend = args.backend != "plain"
    check_option("--rounds", args.rounds, 1, limits.MAX_PROTOCOL_SIM_ROUNDS if protocol_backend
                 else limits.MAX_SIM_ROUNDS)
    if protocol_backend:  # a market: the same grid limits as demo and select's circuit backends
        check_option("--grid", args.grid, limits.MIN_MARKET_GRID,
                     limits.MAX_PROTOCOL_FHE_SIM_GRID if args.backend == "fhe" else limits.MAX_MARKET_GRID)
    else:
        check_option("--grid", args.grid, 1, limits.MAX_ANALYSIS_GRID)
    check_option("--theta", args.theta, 0, limits.MAX_SHOCK_BP)
    check_option("--hurdle-max", args.hurdle_max, 0, limits.MAX_SHOCK_BP)
    check_output_dir("--plot", args.plot)
    if protocol_backend:
        _signers(args)  # local key files first (cheap, and the user's likeliest mistake), then the node
        check_rpc(args.rpc)
    elif args.rpc is not None:
        raise UsageError(f"--rpc {args.rpc}: only --backend simulate or fhe uses a chain (this run: the plain "
                         "backend, the default)" if not given(args, "--backend") else
                         f"--rpc {args.rpc}: only the simulate and fhe backends use a chain (--backend {args.backend})")


def _config(args):
    for option, value, low in (("--rounds", args.rounds, 1), ("--grid", args.grid, 1),
                               ("--theta", args.theta, 0), ("--hurdle-max", args.hurdle_max, 0)):
        if value < low:
            raise UsageError(f"{option} {value}: must be >= {low}")
    try:
        return SimulationConfig(
            rounds=args.rounds, grid=args.grid, family=args.family, theta=args.theta,
            hurdle_max=args.hurdle_max, hurdle_mode=args.hurdle_mode, baseline=args.baseline,
        )
    except SimulationConfigError as exc:
        raise UsageError(f"simulation parameter {exc}") from None


def _print_summary(result, console) -> None:
    summary = result.summary()
    table = Table(title=f"{result.config.rounds} rounds, seed {result.seed}: contract vs no coordination "
                        f"({result.config.baseline})")
    table.add_column("mean per round")
    for mechanism in ("contract", "none"):
        table.add_column(mechanism, justify="right")
    rows = [
        ("trade rate", "trade_rate", "{:.1%}"), ("reached JPM", "jpm_rate", "{:.1%}"),
        ("no dealer left with inventory", "matched_rate", "{:.1%}"), ("inter-dealer volume", "mean_volume", "{:.2f}"),
        ("BDmm profit (bp·units)", "mean_profit_mm", "{:.1f}"), ("BDrm profit", "mean_profit_rm", "{:.1f}"),
        ("client surplus", "mean_client_surplus", "{:.1f}"), ("total surplus", "mean_total_surplus", "{:.1f}"),
        ("dealer welfare lost vs JPM", "mean_dealer_welfare_lost", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        table.add_row(label, *(fmt.format(summary[m][key]) for m in ("contract", "none")))
    console.print(table)


def run(args) -> int:
    config = _config(args)
    if args.plot is not None and args.plot.exists() and not args.plot.is_dir():
        raise UsageError(f"--plot {args.plot}: exists and is not a directory")
    if args.backend == "plain" and (args.key_files or args.keystores):
        raise UsageError("--key-file/--keystore: the plain backend uses no chain; use --backend simulate or fhe with --rpc")
    selector = BACKENDS[args.backend](args)
    err = Console(stderr=True)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("simulating rounds", total=config.rounds)
        result = simulate(config, seed=args.seed, selector=selector,
                          progress=lambda done, total: progress.update(task, completed=done))
    doc = result.as_dict()
    doc["backend"] = args.backend
    if args.plot is not None:
        with naming(args.plot):
            args.plot.mkdir(parents=True, exist_ok=True)
            doc["plots"] = [str(save_figure(fig, args.plot / name, dpi=120, tight=True))
                            for name, fig in simulation_figures(result).items()]
    if args.json:
        print(json.dumps(doc))
        if err.is_terminal:  # people watching the terminal still get the table, on stderr
            _print_summary(result, err)
    else:
        out = Console()
        _print_summary(result, out)
        for path in doc.get("plots", []):
            out.print(f"plot: {path}")
    return 0
