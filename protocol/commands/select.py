"""`repo-market select`: run the contract's selection rule on one pair of reports (plain, simulated or real FHE).

Backends: ``plain`` is the plaintext reference (market.selection); ``simulate`` runs the compiled circuit
without encryption; ``fhe`` runs it for real: key generation (custodian), encryption of each report,
encrypted evaluation from public blobs only (evaluator), decryption of the output only (custodian).
Reports are sent as offsets from a base rate: ``--base-rate`` defaults to the lowest rate in the file,
``min(b[0], a[N])`` [decided], so every offset is >= 0. The circuit (FHE, or the simulation's) is compiled once
per market terms and cached where a market's is (``<data-dir>/cache/``, or ``$REPO_MARKET_CIRCUIT_CACHE``); the
custodian's FHE keys go to ``<data-dir>/roles/custodian/select/`` (secret key 0600 in 0700 folders).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from common.vocabulary import Side
from crypto.circuit import peak_rss_bytes
from crypto.encoding import digest
from crypto.fhe_keys import SECRET_KEY_FILE
from market.limits import MAX_MARKET_GRID, MAX_RATE_BITS, MAX_RATE_BP, MIN_MARKET_GRID, MIN_RATE_BITS
from market.selection import select_equilibrium
from market.terms import MarketTerms, ReportError, report_offsets, validate_report
from protocol.backend import (
    CustodianSide,
    DealerSide,
    EvaluatorSide,
    load_circuit,
    load_simulation_circuit,
    report_binding,
)
from protocol.cli import UsageError, check_option, given, load_schedules_option
from protocol.deployment import circuit_cache
from protocol.layout import DataDir

DEFAULT_HURDLE_BITS = 8
HELP = "run the contract's selection rule on one pair of reports (plain, simulated or real FHE)"
DESCRIPTION = __doc__


def configure(parser) -> None:
    parser.add_argument("--schedules", type=Path, required=True, metavar="FILE",
                        help='reported schedules: JSON {"b": [...], "a": [...]} or CSV Q,b,a (bp); grid from the file')
    parser.add_argument("--hurdle-mm", type=int, default=0, metavar="H", help="BDmm's hurdle spread in bp (default 0)")
    parser.add_argument("--hurdle-rm", type=int, default=0, metavar="H", help="BDrm's hurdle spread in bp (default 0)")
    parser.add_argument("--hurdle-mode", choices=("margin", "spread"), default="margin",
                        help="margin: s(Q)/2 >= max(h) (default); spread: s(Q) >= max(h)")
    parser.add_argument("--backend", choices=("plain", "simulate", "fhe"), default="fhe",
                        help="plain reference, circuit simulation, or real TFHE (default)")
    parser.add_argument("--base-rate", type=int, metavar="BP",
                        help="base rate of the offsets (default: the lowest reported rate)")
    parser.add_argument("--rate-bits", type=int, default=10, metavar="BITS", help="offset width (default 10)")
    parser.add_argument("--hurdle-bits", type=int, default=None, metavar="BITS",
                        help=f"hurdle width (default {DEFAULT_HURDLE_BITS}, or --rate-bits if that is smaller)")


def _terms_and_schedules(args):
    schedules = load_schedules_option(args.schedules)
    base = args.base_rate if args.base_rate is not None else int(min(schedules.b[0], schedules.a[-1]))
    try:
        terms = MarketTerms(grid=schedules.grid, base_rate=base, rate_bits=args.rate_bits,
                            hurdle_bits=args.hurdle_bits, hurdle_mode=args.hurdle_mode)
        validate_report(terms, Side.MM, schedules.b, args.hurdle_mm)
        validate_report(terms, Side.RM, schedules.a, args.hurdle_rm)
    except ReportError as exc:
        context = [f"--schedules {args.schedules}"]
        context += [f"{option} {getattr(args, option[2:].replace('-', '_'))}" for option in
                    ("--base-rate", "--rate-bits", "--hurdle-bits", "--hurdle-mm", "--hurdle-rm") if given(args, option)]
        if not given(args, "--base-rate"):
            context.append(f"base rate {base} bp, the lowest reported rate")
        raise UsageError(f"{exc} ({', '.join(context)})") from None
    return terms, schedules


def validate(args) -> None:
    for name, value in (("--hurdle-mm", args.hurdle_mm), ("--hurdle-rm", args.hurdle_rm)):
        if value < 0:
            raise UsageError(f"{name} {value}: must be >= 0 bp")
        check_option(name, value, 0, MAX_RATE_BP)
    if args.base_rate is not None:
        check_option("--base-rate", args.base_rate, 0, MAX_RATE_BP)
    check_option("--rate-bits", args.rate_bits, MIN_RATE_BITS, MAX_RATE_BITS)
    if args.hurdle_bits is None:  # the default shrinks with a narrow --rate-bits [decided]
        args.hurdle_bits = min(DEFAULT_HURDLE_BITS, args.rate_bits)
    elif given(args, "--rate-bits"):
        check_option("--hurdle-bits", args.hurdle_bits, MIN_RATE_BITS, args.rate_bits)
    else:
        check_option("--hurdle-bits", args.hurdle_bits, MIN_RATE_BITS, MAX_RATE_BITS)
        if args.hurdle_bits > args.rate_bits:
            raise UsageError(f"--hurdle-bits {args.hurdle_bits}: must not exceed the offset width (default "
                             f"{args.rate_bits} bits; give --rate-bits {args.hurdle_bits} or more)")
    if args.backend != "plain":
        _, schedules = _terms_and_schedules(args)
        if not MIN_MARKET_GRID <= schedules.grid <= MAX_MARKET_GRID:  # the same market limits as demo's --grid
            raise UsageError(f"--schedules {args.schedules}: volume grid 0..{schedules.grid}; the circuit "
                             f"(--backend {args.backend}) takes grids 0..{MIN_MARKET_GRID} to 0..{MAX_MARKET_GRID}")


def run(args) -> int:
    terms, schedules = _terms_and_schedules(args)
    timings: dict[str, float] = {}
    doc: dict = {"backend": args.backend}
    if args.backend == "plain":
        started = time.perf_counter()
        selected = select_equilibrium(schedules, args.hurdle_mm, args.hurdle_rm, args.hurdle_mode)
        timings["evaluate"] = time.perf_counter() - started
    else:
        selected, cost = _run_circuit(args, terms, schedules, timings)
        if cost is not None:
            doc["cost"] = cost
    doc = {"selected": selected.as_dict(), **doc, "timings": timings,
           "terms": terms.as_dict()}
    if args.json:
        print(json.dumps(doc))
    else:
        _print_table(doc)
    return 0


def _run_circuit(args, terms, schedules, timings):
    """One report per dealer through the roles of protocol.backend: the custodian's keys, each dealer's blob,
    the evaluator's checks and evaluation, the custodian's decryption of the output only."""
    layout = DataDir(Path(args.data_dir))
    cache = circuit_cache(layout)
    reports = {Side.MM: (report_offsets(terms, Side.MM, schedules.b), args.hurdle_mm),
               Side.RM: (report_offsets(terms, Side.RM, schedules.a), args.hurdle_rm)}
    # [decided] a standalone run has no chain: its reports are bound to chain id 1 (a binding's lowest), the zero
    # address as contract and round 1 -- no market's coordinator lives at the zero address, so none accepts them
    bindings = {side: report_binding(1, "0x" + "00" * 20, 1, side) for side in reports}
    simulated = args.backend == "simulate"
    what = f"for simulation (N = {terms.grid}; cache {cache})" if simulated else f"for N = {terms.grid} (cache {cache})"
    _progress(args, f"compiling or loading the circuit {what} …")
    started = time.perf_counter()
    circuit = load_simulation_circuit(terms, cache) if simulated else load_circuit(terms, cache)
    timings["compile_or_load"] = time.perf_counter() - started

    started = time.perf_counter()
    if simulated:  # keys of the simulate backend are labels: nothing is stored
        custodian = CustodianSide.open("simulate", circuit, layout.root, create=True)
    else:
        keys_dir = layout.select_keys_dir(circuit.artifact_digest)
        existing = (keys_dir / SECRET_KEY_FILE).exists()
        _progress(args, "loading the custodian's FHE keys …" if existing else "generating FHE keys (custodian) …")
        custodian = CustodianSide.open("fhe", circuit, keys_dir, create=not existing)
    timings["keygen"] = time.perf_counter() - started
    evaluation_keys, public_key = custodian.evaluation_keys(), custodian.public_key()
    dealer = DealerSide(args.backend, circuit, public_key)
    started = time.perf_counter()
    blobs = {side: dealer.seal_digits(dealer.digits(side, offsets, hurdle), bindings[side])
             for side, (offsets, hurdle) in reports.items()}
    timings["encrypt"] = time.perf_counter() - started
    if not simulated:
        _progress(args, "checking both reports and evaluating the circuit on them (evaluator) …")
    started = time.perf_counter()
    evaluator = EvaluatorSide(args.backend, circuit, public_key)
    inputs = [evaluator.open_report(blobs[side], bindings[side]) for side in reports]
    output = evaluator.evaluate(evaluation_keys, *inputs)
    timings["evaluate"] = time.perf_counter() - started
    started = time.perf_counter()
    out = custodian.decrypt(output)
    timings["decrypt"] = time.perf_counter() - started
    if simulated:  # one figure, as the simulation reports it: everything, the simulator's compile or load included
        total = sum(timings.values())
        timings.clear()
        timings["evaluate"] = total
        return out.instruction(terms), None
    cost = circuit.cost_report().as_dict()
    cost["sizes"] = {"evaluation_keys": len(evaluation_keys), "ciphertext_mm": len(blobs[Side.MM]),
                     "ciphertext_rm": len(blobs[Side.RM]), "ciphertext_out": len(output)}
    cost["timings"] = dict(timings)
    cost["output_digest"] = digest(output).hex()
    cost["peak_rss_bytes"] = peak_rss_bytes()
    return out.instruction(terms), cost


def _progress(args, message: str) -> None:
    Console(stderr=True).print(f"[dim]{message}[/dim]")


def _print_table(doc: dict) -> None:
    table = Table(title=f"selection ({doc['backend']})")
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in doc["selected"].items():
        table.add_row(key, str(value))
    for key, value in doc["timings"].items():
        table.add_row(f"time {key} (s)", f"{value:.3f}")
    if "cost" in doc:
        cost = doc["cost"]
        table.add_row("PBS count", str(cost["pbs_count"]))
        table.add_row("evaluation keys (MB)", f"{cost['sizes']['evaluation_keys'] / 1e6:.1f}")
        table.add_row("peak memory (GB)", f"{cost['peak_rss_bytes'] / 1e9:.2f}")
    Console(stderr=True).print(table)
