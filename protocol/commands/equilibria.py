"""`repo-market equilibria`: enumerate all pure equilibria of the dealer game and the contract's selection.

Input is either the linear family (``--linear R_LO R_HI ALPHA_D ALPHA_S --grid N``) or a schedule file
(``--schedules FILE``: JSON ``{"b": [...], "a": [...]}`` or CSV ``Q,b,a``, integer bp per volume 0..N).
The rate grid covers every schedule breakpoint plus one bp beyond each end; equilibria are found by
exhaustive best responses and cross-checked against the D2 test on the matched locus.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from common.plotting import save_figure
from market import HurdleError, ScheduleError, equilibrium_volumes, linear_schedules, select_equilibrium
from market.equilibria import all_equilibria, linear_closed_form
from market.limits import MAX_ANALYSIS_GRID, MAX_RATE_BP
from market.plots import payoff_map_figure
from market.selection import hurdle_mask
from protocol.cli import UsageError, check_option, check_output_file, load_schedules_option, naming

HELP = "enumerate all pure equilibria of the dealer game and the contract's selection"
MAX_RATE_POINTS = 4000  # 4000² int64 payoff matrices: 128 MB each (16e6 x 8 bytes)
DESCRIPTION = __doc__


def configure(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--linear", nargs=4, metavar=("R_LO", "R_HI", "ALPHA_D", "ALPHA_S"),
        help="linear schedules D(r) = alpha_d (r - r_lo)+, S(r) = alpha_s (r_hi - r)+ (rates in bp; "
             "alphas as 1, 0.5 or 1/3)",
    )
    source.add_argument("--schedules", type=Path, metavar="FILE", help='JSON {"b": [...], "a": [...]} or CSV Q,b,a')
    parser.add_argument("--grid", type=int, metavar="N", help="volume grid 0..N (required with --linear)")
    parser.add_argument("--hurdle-mm", type=int, default=0, metavar="H", help="BDmm's hurdle spread in bp (default 0)")
    parser.add_argument("--hurdle-rm", type=int, default=0, metavar="H", help="BDrm's hurdle spread in bp (default 0)")
    parser.add_argument("--hurdle-mode", choices=("margin", "spread"), default="margin",
                        help="margin: s(Q)/2 >= max(h) (default); spread: s(Q) >= max(h)")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="write the payoff map with equilibria, JPM and selection")


def _schedules(args):
    if args.schedules is not None:
        if args.grid is not None:
            raise UsageError(f"--grid {args.grid}: the grid comes from --schedules {args.schedules}; drop --grid")
        return load_schedules_option(args.schedules)
    if args.grid is None:
        raise UsageError("--linear needs --grid N (the volume grid 0..N)")
    check_option("--grid", args.grid, 1, MAX_ANALYSIS_GRID)
    names = ("R_LO", "R_HI")
    values = []
    for name, text in zip(names, args.linear[:2]):
        try:
            values.append(int(text))
        except ValueError:
            raise UsageError(f"--linear {name} = {text!r}: must be an integer rate in bp") from None
        check_option(f"--linear {name}", values[-1], 0, MAX_RATE_BP)
    for name, text in zip(("ALPHA_D", "ALPHA_S"), args.linear[2:]):
        if len(text) > 40:
            raise UsageError(f"--linear {name} = {text[:40]!r}...: expected a short number such as 1, 0.5 or 1/3")
    try:
        return linear_schedules(values[0], values[1], args.linear[2], args.linear[3], args.grid)
    except ScheduleError as exc:
        raise UsageError(f"--linear {' '.join(args.linear)} --grid {args.grid}: {exc}") from None


def _closed_form(args) -> dict | None:
    if args.linear is None:
        return None

    c = linear_closed_form(int(args.linear[0]), int(args.linear[1]), args.linear[2], args.linear[3])
    return {name: float(getattr(c, name)) for name in ("q_star", "s_star", "j_star", "q_bar", "q_competitive")}


def analyse(schedules, hurdle_mm: int, hurdle_rm: int, mode: str) -> tuple[dict, object, object]:
    """The JSON document of ``equilibria`` (also used by tests and other tools)."""
    eq = all_equilibria(schedules)
    selected = select_equilibrium(schedules, hurdle_mm, hurdle_rm, mode)
    d2 = equilibrium_volumes(schedules).tolist()
    closes = [int(q) for q in range(schedules.grid + 1) if schedules.spread[q] <= 0]
    doc = {
        "grid": schedules.grid,
        "schedules": schedules.as_dict(),
        "strict": schedules.strict,
        "rate_grid": {"min": int(eq.rates[0]), "max": int(eq.rates[-1]), "points": int(eq.rates.size)},
        "equilibrium_volumes": eq.volumes.tolist(),
        "d2_volumes": d2,
        "methods_agree": eq.volumes.tolist() == d2,  # always for strict schedules (tested)
        "unmatched_equilibria": int(len(eq) - int(((eq.lend == eq.volume) & (eq.borrow == eq.volume)).sum())),
        "equilibria": eq.profiles(),
        "no_trade_profiles": eq.no_trade_count,
        "jpm": eq.jpm.as_dict(),
        "largest_volume": eq.largest_volume,
        "competitive_volume": closes[0] if closes else None,
        "pareto_ranking": [{"volume": q, "joint_profit": j} for q, j in eq.pareto_ranking()],
        "hurdles": {"mm": hurdle_mm, "rm": hurdle_rm, "mode": mode},
        "selected": selected.as_dict(),
    }
    return doc, eq, selected


def _half(x2: int) -> str:
    return str(x2 // 2) if x2 % 2 == 0 else f"{x2 / 2:.1f}"


def _print_table(doc: dict, console) -> None:
    table = Table(title=f"Dealer game on volume grid 0..{doc['grid']} — rate grid "
                        f"{doc['rate_grid']['min']}..{doc['rate_grid']['max']} bp")
    for column in ("", "volume", "r_mm", "r_rm", "r_bd", "joint profit J"):
        table.add_column(column, justify="right")
    jpm, sel = doc["jpm"], doc["selected"]
    largest = next(e for e in reversed(doc["equilibria"]) if e["volume"] == doc["largest_volume"])
    table.add_row("JPM (max J)", *(str(jpm[k]) for k in ("volume", "r_mm", "r_rm", "r_bd", "joint_profit")))
    table.add_row("largest equilibrium", str(largest["volume"]), str(largest["r_mm"]), str(largest["r_rm"]),
                  _half(largest["r_mm"] + largest["r_rm"]), str((largest["r_rm"] - largest["r_mm"]) * largest["volume"]))
    if sel["trade"]:
        table.add_row("contract's selection", *(str(sel[k]) for k in ("volume", "r_mm", "r_rm", "r_bd", "joint_profit")))
    else:
        table.add_row("contract's selection", "no trade", "", "", "", "0")
    console.print(table)
    vols = doc["equilibrium_volumes"]
    console.print(f"equilibrium volumes: {vols[0]}..{vols[-1]} ({len(vols)} volumes, "
                  f"{len(doc['equilibria'])} profiles incl. {doc['no_trade_profiles']} no-trade); "
                  f"exhaustive and D2 {'agree' if doc['methods_agree'] else 'differ'}")
    if not doc["strict"]:
        console.print(f"schedules have flat runs: only attainable volumes are on the locus; "
                      f"{doc['unmatched_equilibria']} unmatched tie equilibria")
    h = doc["hurdles"]
    console.print(f"hurdles: mm {h['mm']} bp, rm {h['rm']} bp, mode {h['mode']}")


def run(args) -> int:
    for name, value in (("--hurdle-mm", args.hurdle_mm), ("--hurdle-rm", args.hurdle_rm)):
        if value < 0:
            raise UsageError(f"{name} {value}: hurdle spreads are nonnegative bp")
        check_option(name, value, 0, MAX_RATE_BP)
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UsageError(f"--plot {args.plot}: the payoff map is written as PNG (FILE.png)")
    check_output_file("--plot", args.plot)
    schedules = _schedules(args)
    source = f"--schedules {args.schedules}" if args.schedules is not None else f"--linear {' '.join(args.linear)}"
    lo = int(min(schedules.b.min(), schedules.a.min()))
    hi = int(max(schedules.b.max(), schedules.a.max()))
    if hi - lo + 3 > MAX_RATE_POINTS:
        raise UsageError(f"{source}: rates span {lo}..{hi} bp, {hi - lo + 3} grid points; the exhaustive "
                         f"search is limited to {MAX_RATE_POINTS} (a {MAX_RATE_POINTS}² bimatrix)")
    if schedules.grid > MAX_RATE_POINTS:
        raise UsageError(f"{source}: volume grid 0..{schedules.grid} exceeds {MAX_RATE_POINTS}")
    try:
        hurdle_mask(schedules.spread, args.hurdle_mm, args.hurdle_rm, args.hurdle_mode)
    except HurdleError as exc:
        raise UsageError(str(exc)) from None
    doc, eq, selected = analyse(schedules, args.hurdle_mm, args.hurdle_rm, args.hurdle_mode)
    closed = _closed_form(args)
    if closed is not None:
        doc["closed_form"] = closed
    if args.plot is not None:
        with naming(args.plot):
            doc["plot"] = str(save_figure(payoff_map_figure(schedules, eq, selected), args.plot, dpi=120, tight=True))
    console = Console(stderr=args.json)
    if args.json:
        print(json.dumps(doc))
    else:
        _print_table(doc, console)
        if "plot" in doc:
            console.print(f"payoff map: {doc['plot']}")
    sys.stdout.flush()
    return 0
