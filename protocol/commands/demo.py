"""`repo-market demo`: the main job -- a market with several rounds on the embedded chain (or --rpc) with
real FHE, the equilibrium set next to the selected outcome for every round, then the auditor.

Rounds [decided]: 1 at the unconstrained joint-profit maximum, 2 with hurdles that push the volume below
it, 3 ending in no trade, 4 with a deviating dealer (it offers its client another rate and forfeits its
deposit to the other dealer); more rounds draw theta shocks and hurdles from --seed.
Writes <data-dir>/report.json, <data-dir>/plots/*.png and public transcripts; ends by running
`repo-market verify` as an independent process.  Re-running on an existing data directory reuses the market
and appends rounds (--grid and --backend must match it).
"""
from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from chain.coordinator import MAX_EVALUATORS, MAX_HOLDERS
from crypto.threshold import ThresholdParams, ThresholdSetupError
from market.limits import MAX_DEMO_ROUNDS, MAX_MARKET_GRID, MIN_MARKET_GRID
from protocol.cli import UsageError, check_option, check_rpc, given
from protocol.commands.account_options import add_account_options, signers_from_args
from protocol.demo import DEFAULT_GRID, DemoConflict, run_demo
from protocol.deployment import DeploymentError, key_holder_roles, signing_roles
from protocol.layout import DataDir, read_json

HELP = "run the main job: a market with several rounds on the embedded chain with real FHE, then the auditor"
DESCRIPTION = __doc__


def configure(parser) -> None:
    parser.add_argument("--rounds", type=int, default=4, metavar="N", help="rounds to run (default 4, the four stories; 0: only resume a round left open)")
    parser.add_argument("--grid", type=int, default=DEFAULT_GRID, metavar="N",
                        help=f"volume grid 0..N (default {DEFAULT_GRID}; FHE cost grows with N)")
    parser.add_argument("--backend", choices=("fhe", "simulate"), default="fhe",
                        help="fhe: real TFHE (default); simulate: the circuit's simulation, no confidentiality")
    parser.add_argument("--rpc", metavar="URL", default=None, help="JSON-RPC node (e.g. anvil) instead of the embedded chain")
    parser.add_argument("--evaluators", type=int, default=2, metavar="N", help="number of evaluators (default 2)")
    parser.add_argument("--threshold", type=int, default=None, metavar="K",
                        help="evaluators that must agree (default 2, or --evaluators if that is smaller)")
    parser.add_argument("--holders", type=int, default=None, metavar="N",
                        help="key holders of a new fhe market: the custodian deals them the output key and deletes "
                             "its own (default 3; the simulate backend has none)")
    parser.add_argument("--holder-threshold", type=int, default=None, metavar="K",
                        help="key holders needed to open an output (default 2, or --holders if that is smaller)")
    parser.add_argument("--no-verify", action="store_true", help="skip the auditor at the end")
    parser.add_argument("--input-proofs", action="store_true",
                        help="when the market is created: dealers prove their encrypted reports (a CRS per deployment, "
                             "its digest in the terms on chain; fhe backend only)")

    add_account_options(parser)


class RichUI:
    """Progress and tables on stderr (stdout too when not --json)."""

    def __init__(self, as_json: bool):
        self.err = Console(stderr=True)
        self.out = self.err if as_json else Console()
        self._status = None

    def _show(self, text):
        if self._status is None:
            self._status = self.err.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def close(self):
        if self._status is not None:
            self._status.stop()
            self._status = None

    def stage(self, name):
        self._show(f"[bold]{name}[/bold] …")
        self.err.log(name)

    def event(self, name, **info):
        labels = {"encrypt": "each dealer encrypts its own report under the market's public key",
                  "commit": "deposits, report and ciphertext-blob commitments",
                  "reveal": "both committed: each dealer publishes its ciphertext blob and reveals its digest",
                  "evaluate": f"{info.get('evaluator')} checks both blobs and evaluates the circuit (FHE)",
                  "evaluated": f"{info.get('evaluator')} posted output {str(info.get('digest'))[:16]}…",
                  "fault": f"{info.get('evaluator')} refused {info.get('dealer')}'s blob ({info.get('reason')})",
                  "share_mask": "each key holder posts its mask share of the agreed output",
                  "share_table": "each key holder posts its table share (k mask shares are on chain)",
                  "share_refused": f"{info.get('holder')} gave no {info.get('stage')} share: {info.get('reason')}",
                  "decrypt": "custodian opens the agreed output (holders' shares, or plaintext on simulate), "
                             "attests, seals instructions",
                  "mm_leg": "dealer_mm offers to MM, MM accepts", "rm_leg": "dealer_rm offers to RM, RM accepts",
                  "settle": "challenge window, settlement"}
        text = f"round {info.get('round')}: {labels.get(name, name)}"
        self._show(text)
        self.err.log(text)

    def round_start(self, rid, label):
        self.err.log(f"[bold cyan]round {rid} ({label})[/bold cyan]")

    def round_done(self, rid, phase):
        self.err.log(f"round {rid} closed: {phase}")

    def round_table(self, s):
        self.close()
        t = Table(title=f"round {s['round']} — {s['label']} ({s['phase']})", show_lines=False)
        t.add_column("item")
        t.add_column("value", overflow="fold")
        eq = s["equilibria"]
        t.add_row("equilibria (true schedules)", f"{eq['count']} profiles; volumes {eq['volumes'][0]}..{eq['volumes'][-1]}; "
                  f"JPM Q={eq['jpm']['volume']} J={eq['jpm']['joint_profit']}")
        sel = s["selected"]
        t.add_row("selected (FHE → decrypted)", "no trade" if not sel["trade"] else
                  f"Q={sel['volume']} r_mm={sel['r_mm']} r_rm={sel['r_rm']} r_bd={sel['r_bd']} J={sel['joint_profit']}")
        t.add_row("plaintext reference", "equal" if s["matches_reference"] else f"DIFFERS: {s['reference']}")
        t.add_row("hurdles (mm, rm) / theta (mm, rm)", f"{s['inputs']['hurdle_mm']}, {s['inputs']['hurdle_rm']} / "
                  f"{s['inputs']['theta_mm']}, {s['inputs']['theta_rm']}")
        ex = s["executed"]
        t.add_row("executed legs (rate, volume)", f"mm {ex['mm']}  rm {ex['rm']}")
        if s["payoffs"]:
            t.add_row("dealer payoffs ×2 (bp·units)", f"BDmm {s['payoffs']['payoff_mm_x2']}  BDrm {s['payoffs']['payoff_rm_x2']}")
        if s["ledger"]:
            c = s["ledger"]["cash_change"]
            t.add_row("cash change (half-bp units)", "  ".join(f"{k} {v:+d}" for k, v in c.items()))
        f = s["forfeited"]
        t.add_row("forfeited", "—" if f is None else f"{f['offender']} → {f['beneficiary']}: {f['amount']} wei")
        t.add_row("gas", f"{s['gas_total']:,} ({', '.join(f'{k} {v:,}' for k, v in s['gas'].items())})")
        t.add_row("timings (s)", ", ".join(f"{k} {v:.2f}" for k, v in s["timings"].items()))
        for who, what in s["leakage"].items():
            t.add_row(f"learns: {who}", what)
        self.out.print(t)

    def verify_done(self, result):
        self.close()
        status = "[green]ok[/green]" if result.get("ok") else "[red]FAILED[/red]"
        n = sum(len(r.get("checks", [])) for r in result.get("rounds", []))
        self.out.print(f"auditor: {status} — {n} checks, {len(result.get('failures', []))} failures, "
                       f"{result.get('seconds')} s")
        for f in result.get("failures", [])[:10]:
            self.out.print(f"  round {f['round']} {f['check']}: {f['detail']}")


def validate(args) -> None:
    """Every option against market.limits (and the node, with --rpc) before the data directory is touched."""
    check_option("--rounds", args.rounds, 0, MAX_DEMO_ROUNDS)
    check_option("--grid", args.grid, MIN_MARKET_GRID, MAX_MARKET_GRID)
    args.evaluators, args.threshold = _k_of_n(args, ("--evaluators", "--threshold"), "evaluators", 1, MAX_EVALUATORS)
    _validate_holders(args)
    check_rpc(args.rpc)


def _k_of_n(args, options: tuple[str, str], what: str, low: int, high: int) -> tuple[int, int]:
    """(n, k) of a "N parties, K of them needed" option pair, each in low..high, K <= N; K defaults to 2, or
    to N if that is smaller [decided]."""
    n_option, k_option = options
    n, k = (getattr(args, o[2:].replace("-", "_")) for o in options)
    check_option(n_option, n, low, high)
    k = min(2, n) if k is None else k
    check_option(k_option, k, low, high)
    if k > n:
        shown = f"{n_option} {n}" if given(args, n_option) else f"the {n} {what} (default {n_option})"
        raise UsageError(f"{k_option} {k}: must not exceed {shown}")
    return n, k


def _validate_holders(args) -> None:
    """--holders/--holder-threshold: fhe only, 2 <= K <= N <= MAX_HOLDERS, and a replicated sharing that is not
    too large (crypto.threshold.ThresholdParams says why)."""
    if args.backend != "fhe":
        for option in ("--holders", "--holder-threshold"):
            if given(args, option):
                raise UsageError(f"{option} {getattr(args, option[2:].replace('-', '_'))}: needs --backend fhe "
                                 f"(the {args.backend} backend has no key, hence no key holders)")
        args.holders, args.holder_threshold = 0, 0
        return
    if args.holders is None:
        args.holders = 3
    args.holders, args.holder_threshold = _k_of_n(args, ("--holders", "--holder-threshold"), "key holders", 2,
                                                  MAX_HOLDERS)
    try:
        ThresholdParams(tuple(key_holder_roles(args.holders)), args.holder_threshold)
    except ThresholdSetupError as exc:
        raise UsageError(f"--holder-threshold {args.holder_threshold}: {exc}") from None


def _check_existing_market(args) -> None:
    """On a data directory that holds a market, --evaluators and --threshold (when given) must be the
    market's: they are fixed at deployment, and would otherwise be accepted and ignored."""
    path = DataDir(args.data_dir).market_file
    if not path.is_file():
        return
    market = read_json(path)
    recorded, holders = market["evaluators"], market.get("key_holders", {"roles": [], "threshold": 0})
    for option, requested, existing in (("--evaluators", args.evaluators, len(recorded["roles"])),
                                        ("--threshold", args.threshold, int(recorded["threshold"])),
                                        ("--holders", args.holders, len(holders["roles"])),
                                        ("--holder-threshold", args.holder_threshold, int(holders["threshold"]))):
        if given(args, option) and requested != existing:
            raise UsageError(f"{option} {requested}: the market in --data-dir {args.data_dir} has {existing} "
                             f"(fixed when it was deployed); drop {option} or use another --data-dir")


def run(args) -> int:
    _check_existing_market(args)
    if args.input_proofs and args.backend != "fhe":
        raise UsageError(f"--input-proofs needs --backend fhe, got --backend {args.backend}")
    # every key file and keystore checked before anything starts
    signers = signers_from_args(args, signing_roles(args.evaluators, args.holders))
    ui = RichUI(args.json)
    try:
        report = run_demo(args.data_dir, rounds=args.rounds, grid=args.grid, backend=args.backend, seed=args.seed,
                          rpc_url=args.rpc, evaluators=args.evaluators, threshold=args.threshold,
                          verify=not args.no_verify, ui=ui, signers=signers, input_proofs=args.input_proofs,
                          holders=args.holders, holder_threshold=args.holder_threshold)
    except DemoConflict as exc:
        raise UsageError(str(exc)) from None
    except DeploymentError as exc:
        raise UsageError(f"--data-dir {args.data_dir}: {exc}") from None
    finally:
        ui.close()
    ok = report.get("verify", {}).get("ok", True)
    if not ok:  # the failure document's keys, on top of the report
        failures = report["verify"].get("failures") or [{"detail": "no check ran"}]
        report = {"ok": False, "error": "verification failed",
                  "detail": f"the auditor found {len(failures)} failure(s); first: "
                            f"{' '.join(str(failures[0].get('detail')).split())}", **report}
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(f"report: {DataDir(args.data_dir).report_file}; plots: {', '.join(report['plots'])}; "
              f"total {report['total_seconds']} s", file=sys.stderr)
        if not ok:
            print(f"repo-market demo: error: {report['detail']}", file=sys.stderr)
    return 0 if ok else 1
